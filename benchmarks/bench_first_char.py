"""Seconds from launching ``charlm sample`` to its first characters, XLA's cache off and on.

Runs ``charlm sample --run RUN --prefix A --length 200 --seed 1`` as a user would (a new
process, stdout read through a pipe) and times the first byte (the prefix, printed once it is
fed), the second (the first generated character) and the end; rounds alternate between
``CHARLM_XLA_CACHE=0`` and the default cache (in a temporary ``XDG_CACHE_HOME``, filled by a
first untimed run), medians over ``--repeats``.

    python benchmarks/bench_first_char.py --run runs/shakespeare-2m --repeats 5
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time

import _common as C


def once(run: str, env: dict) -> tuple[float, float, float]:
    """(prefix, first generated character, end) seconds from launch."""
    start = time.perf_counter()
    p = subprocess.Popen(
        ["charlm", "sample", "--run", run, "--prefix", "A", "--length", "200", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert p.stdout is not None
    p.stdout.read(1)
    prefix = time.perf_counter() - start
    p.stdout.read(1)
    first = time.perf_counter() - start
    p.stdout.read()
    p.wait()
    return prefix, first, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}
    with tempfile.TemporaryDirectory() as cache:
        ways = {
            "cache off": {**base, "CHARLM_XLA_CACHE": "0"},
            "cache on": {**base, "XDG_CACHE_HOME": cache},
        }
        once(args.run, ways["cache on"])  # fills the cache
        times: dict[str, list] = {way: [] for way in ways}
        for _ in range(args.repeats):
            for way, env in ways.items():
                times[way].append(once(args.run, env))
    rows = [
        [way, *(C.fmt(C.median([t[i] for t in ts]), 2) for i in range(3))]
        for way, ts in times.items()
    ]
    C.say(C.cpu_line())
    C.say(C.table(["XLA cache", "prefix (s)", "first generated (s)", "200 characters (s)"], rows))
    C.write_results("first_char", {"machine": C.cpu_line(), "run": args.run, "times": times})


if __name__ == "__main__":
    main()
