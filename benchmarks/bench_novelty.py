"""The memorisation check's index (charlm.novelty.index) on 10 MB and 100 MB of text.

The text is tiny Shakespeare repeated to size (90 copies for 100 MB: every 20-gram occurs
at least 90 times, and suffixes share prefixes a copy long: a hard case for a suffix sort).
Each size runs in a fresh child process, which reports:

* build: wall and CPU seconds (user + system) of ``NoveltyIndex(text)``;
* memory: the process's peak RSS, its RSS before the build (the text itself, Python), and
  the build's own estimate (``memory_needed``, what ``check_memory`` compares with the
  machine's available memory), to compare with the growth of the peak over the RSS before;
* save / load: seconds to write the index next to a run and to load it (memory-mapped), and
  the file's size;
* query: median seconds of ``report(sample)`` for three samples of 1,000 characters, one
  copied from the text, one from an order-4 character Markov chain fitted to tiny
  Shakespeare (what a small model writes: short copies), one of random characters.

    python benchmarks/bench_novelty.py                 # 10 and 100 MB: a few minutes
    python benchmarks/bench_novelty.py --sizes 10      # 10 MB only
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import _common as C

SAMPLE_CHARS = 1000
QUERY_REPEATS = 5


def markov_sample(text: str, length: int, order: int = 4, seed: int = 0) -> str:
    """``length`` characters from an order-``order`` character Markov chain fitted to ``text``."""
    follow = defaultdict(list)
    for i in range(len(text) - order):
        follow[text[i : i + order]].append(text[i + order])
    rng = random.Random(seed)
    out = text[:order]
    while len(out) < length:
        nxt = follow.get(out[-order:])
        out += rng.choice(nxt) if nxt else rng.choice(text)
    return out[:length]


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(megabytes: int) -> dict:
    """Build, save, load and query the index of ``megabytes`` MB of text (in this process)."""
    from charlm.novelty.build import memory_needed, symbol_dtype
    from charlm.novelty.file import INDEX_FILE
    from charlm.novelty.index import NoveltyIndex

    base = (C.CORPORA / "tinyshakespeare.txt").read_text(encoding="utf-8")
    size = megabytes * 1_000_000
    text = (base * (size // len(base) + 1))[:size]
    samples = {
        "copied": text[size // 2 : size // 2 + SAMPLE_CHARS],
        "markov-4": markov_sample(base, SAMPLE_CHARS),
        "random": "".join(random.Random(1).choice(sorted(set(base))) for _ in range(SAMPLE_CHARS)),
    }
    before = rss_mb()
    t, cpu = time.perf_counter(), time.process_time()
    index = NoveltyIndex(text)
    out = {
        "megabytes": megabytes,
        "chars": len(text),
        "build_wall_s": time.perf_counter() - t,
        "build_cpu_s": time.process_time() - cpu,
        "rss_before_build_mb": before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "estimate_mb": memory_needed(len(text), symbol_dtype(len(index.vocab)).itemsize) / 2**20,
    }
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, INDEX_FILE)
        t = time.perf_counter()
        index.save(path)
        out["save_s"], out["file_mb"] = time.perf_counter() - t, os.path.getsize(path) / 1e6
        del index
        t = time.perf_counter()
        index = NoveltyIndex.load(path)
        out["load_s"] = time.perf_counter() - t
    out["queries"] = {}
    for name, sample in samples.items():
        times = []
        for _ in range(QUERY_REPEATS):
            t = time.perf_counter()
            report = index.report(sample)
            times.append(time.perf_counter() - t)
        out["queries"][name] = {
            "median_s": C.median(times),
            "longest_match": report["longest_match"],
            "copied_ngram_share": report["copied_ngram_share"],
        }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10,100", help="megabytes of text, comma-separated")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return 0
    machine = C.Machine()
    import numpy as np

    machine.info["numpy"] = np.__version__
    results = []
    for mb in [int(s) for s in args.sizes.split(",")]:
        C.say(f"{mb} MB ...")
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(mb)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(child.stdout))
    info = machine.finish()
    print(report_table(results))
    print(f"\nMachine: {machine.describe()}")
    path = C.write_results(
        "bench_novelty", {"machine": info, "sample_chars": SAMPLE_CHARS, "results": results}
    )
    C.say(f"wrote {path}")
    return 0


def report_table(results: list[dict]) -> str:
    rows = []
    for r in results:
        q = r["queries"]
        rows.append(
            [
                f"{r['megabytes']} MB",
                r["build_wall_s"],
                r["build_cpu_s"],
                r["peak_rss_mb"] / 1024,
                r["rss_before_build_mb"] / 1024,
                r["estimate_mb"] / 1024,
                r["save_s"],
                r["load_s"],
                r["file_mb"],
                *(1000 * q[k]["median_s"] for k in ("copied", "markov-4", "random")),
            ]
        )
    return C.table(
        [
            "text",
            "build s (wall)",
            "build s (CPU)",
            "peak RSS GB",
            "RSS before GB",
            "estimate GB",
            "save s",
            "load s",
            "file MB",
            "query ms copied",
            "query ms markov-4",
            "query ms random",
        ],
        rows,
    )


if __name__ == "__main__":
    sys.exit(main())
