"""Corpora larger than memory (issue 10, item 3): encoding speed, peak memory, time to first step.

    python benchmarks/bench_corpus.py                 # 1 MB, 100 MB and 1 GB of each text
    python benchmarks/bench_corpus.py --sizes 100     # 100 MB only (MB = 10**6 bytes)
    python benchmarks/bench_corpus.py --texts tang    # the Tang poems only

For each text (tiny Shakespeare: ASCII, one byte a character; the Tang poems: Chinese, about
three bytes a character) and size, a corpus of that text repeated is written to a temporary
folder (deleted afterwards). A fresh child process trains a tiny model on it for a few steps,
so that its peak resident memory (VmHWM) and its time from launch (the interpreter starting)
to the end of the first training step are its own; the 1 MB case gives the part of that time
that does not depend on the corpus (importing TensorFlow, building and tracing the model).
Another child times :func:`charlm.api.inputs.encode_corpus` alone (both streamed passes):
encoding speed is the corpus bytes over that time. Targets: peak RSS <= 2 GB on
1 GB, encoding >= 50 MB/s, first step <= 10 s on 100 MB. The machine is described beside the
figures (CPU model, load average: the machine may be shared).

Results: printed, and saved to benchmarks/results/bench_corpus.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "bench_corpus.json"
TEXTS = {
    "shakespeare": ROOT / "corpora" / "tinyshakespeare.txt",
    "tang": ROOT / "corpora" / "tang_poems.txt",
}
TARGETS = {"peak_rss_gb_1gb": 2.0, "encode_mb_s": 50.0, "first_step_s_100mb": 10.0}
SETTINGS = dict(
    layers=1,
    units=64,
    embedding_dim=16,
    seq_len=64,
    batch_size=32,
    steps=3,
    eval_every=0,
    sample_every=0,
    eval_chars=20_000,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1, 100, 1000],
        help="corpus sizes in MB (1 MB: the fixed start-up cost, TensorFlow and tracing)",
    )
    parser.add_argument(
        "--texts",
        nargs="+",
        choices=list(TEXTS),
        default=list(TEXTS),
        help="which bundled text to repeat",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("WHAT", "CORPUS", "LAUNCHED"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        what, corpus, launched = args.child
        return (train_child if what == "train" else encode_child)(Path(corpus), float(launched))
    rows = [measure(text, mb) for text in args.texts for mb in args.sizes]
    report = {
        "benchmark": "bench_corpus",
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": SETTINGS,
        "targets": TARGETS,
        "cases": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(f"CPU: {report['cpu_model']}, {report['cores']} cores")
    print(
        f"{'text':>12} {'corpus':>8} {'encode s':>9} {'MB/s':>6} {'first step s':>13} {'peak RSS GB':>12} {'load avg':>16}"
    )
    for r in rows:
        print(
            f"{r['text']:>12} {r['mb']:>6}MB {r['encode_s']:>9.1f} {r['encode_mb_s']:>6.1f} {r['first_step_s']:>13.1f}"
            f" {r['peak_rss_gb']:>12.2f} {' '.join(f'{x:.1f}' for x in r['loadavg']):>16}"
        )
    print(f"saved {RESULTS.relative_to(ROOT)}")


def measure(text: str, mb: int) -> dict:
    """Write a corpus of ``mb`` MB of ``text``, encode it and train on it, each in a child
    process, and delete it."""
    folder = Path(tempfile.mkdtemp(prefix="charlm-bench-corpus-"))
    try:
        corpus = folder / "corpus.txt"
        write_corpus(TEXTS[text], corpus, mb * 10**6)
        before = loadavg()
        row = {}
        for what in ("encode", "train"):
            launched = time.time()
            out = subprocess.run(
                [sys.executable, __file__, "--child", what, str(corpus), str(launched)],
                cwd=folder,
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                raise SystemExit(f"the {mb} MB {what} child failed:\n{out.stderr[-3000:]}")
            row.update(json.loads(out.stdout.strip().splitlines()[-1]))
        return {
            "text": text,
            "mb": mb,
            "bytes": corpus.stat().st_size,
            **row,
            "encode_mb_s": corpus.stat().st_size / 1e6 / row["encode_s"],
            "loadavg_before": before,
            "loadavg": loadavg(),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_corpus(source: Path, path: Path, size: int) -> None:
    """``source`` repeated up to ``size`` bytes (cut at a line end)."""
    block = source.read_bytes()
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        rest = block[: size % len(block)]
        f.write(rest[: rest.rfind(b"\n") + 1])


def encode_child(corpus: Path, launched: float) -> None:
    """Encode the corpus as ``charlm train`` does; print one JSON line: the seconds it took."""
    from charlm.api.inputs import encode_corpus
    from charlm.options.config import Config

    cfg = Config(paths=[str(corpus)], **SETTINGS)
    start = time.perf_counter()
    encoded = encode_corpus(cfg, corpus.parent / "encoded", log=lambda line: None, progress=False)
    seconds = time.perf_counter() - start
    encoded.discard()
    print(json.dumps({"encode_s": seconds}))


def train_child(corpus: Path, launched: float) -> None:
    """Train for a few steps; print one JSON line: time to first step, peak RSS."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from charlm import api
    from charlm.training.trainer import Callback

    timing = {}

    class FirstStep(Callback):
        def on_batch_end(self, trainer, loss, grad_norm, state):
            timing.setdefault("first_step_s", time.time() - launched)

    trainer = api.prepare(
        [str(corpus)],
        runs_dir=str(corpus.parent / "runs"),
        progress=False,
        log=lambda line: None,
        callbacks=[FirstStep()],
        **SETTINGS,
    )
    trainer.fit()
    print(
        json.dumps(
            {
                **timing,
                "peak_rss_gb": peak_rss_bytes() / 1e9,
                "train_chars": trainer.sampler.ids.shape[0],
            }
        )
    )


def peak_rss_bytes() -> int:
    """This process's peak resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


if __name__ == "__main__":
    main()
