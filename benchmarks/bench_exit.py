"""Where a ``charlm train --time-budget B`` run's seconds go, launch to exit.

The budget counts from the launch of the command to its exit. This script launches
``charlm train CORPUS --time-budget B`` in a subprocess (clocked from here, like race.py),
with timestamps around every job after the last training step: the final validation, the
metrics row, TensorBoard and the loss plot, the best and last weights, the checkpoint, the
end-of-training callbacks, loading the Run, the last line, and the process teardown (the
time from the interpreter's ``atexit`` to the exit the parent sees). The child wraps charlm's
methods with timers only; it changes nothing they do.

    python benchmarks/bench_exit.py                      # 60 s and 90 s, tiny Shakespeare
    python benchmarks/bench_exit.py --budgets 20 --check # exit within budget + 2 s, or fail

``--check`` is the launch-to-exit check that is too timing-sensitive for the test suite on a
shared machine: it fails when a run ends later than its budget plus ``--margin`` seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

C.quiet_tensorflow()

CHILD = r"""
import atexit, functools, json, os, sys, time
T0 = float(os.environ["BENCH_EXIT_T0"])  # the parent's time.time() just before launch
out = open(os.environ["BENCH_EXIT_LOG"], "a")
def stamp(what):
    out.write(json.dumps({"what": what, "t": time.time() - T0}) + "\n"); out.flush()
stamp("interpreter up")
import charlm.cli
stamp("charlm.cli imported (LAUNCHED)")
from charlm.training import trainer as T
def timed(owner, name, label=None):
    fn = getattr(owner, name)
    @functools.wraps(fn)
    def wrapper(*a, **k):
        stamp(f"{label or name} begin")
        try:
            return fn(*a, **k)
        finally:
            stamp(f"{label or name} end")
    setattr(owner, name, wrapper)
for name in ("fit", "_evaluate", "_keep_best", "_save"):
    timed(T.Trainer, name)
def notify(self, hook, *args, _orig=T.Trainer._notify):
    if hook in ("on_train_begin", "on_train_end", "on_evaluate"):
        for cb in self.callbacks:
            t = time.time()
            getattr(cb, hook)(self, *args)
            stamp(f"{hook} {type(cb).__name__} {time.time() - t:.3f}")
    else:
        _orig(self, hook, *args)
T.Trainer._notify = notify
_batch = T.Trainer._train_batch
def train_batch(self, *a, **k):
    r = _batch(self, *a, **k)
    self._last_step_end = time.time() - T0
    return r
T.Trainer._train_batch = train_batch
_fin = T.Trainer.finished
def finished(self):
    done = _fin(self)
    if done and not getattr(self, "_stamped", False):
        self._stamped = True
        out.write(json.dumps({"what": "last step end", "t": getattr(self, "_last_step_end", 0.0)}) + "\n")
        out.write(json.dumps({"what": "reserve", "t": self.clock.reserve(self._first_validation()),
                              "took": {**self.clock.took, "step": getattr(self, "step_seconds", lambda: None)()}}) + "\n")
        out.flush()
    return done
T.Trainer.finished = finished
import charlm.api.run as R
timed(R.Run, "__init__", "Run()")
import charlm.cli.train as CT
timed(CT, "say_done")
atexit.register(stamp, "atexit")
sys.argv = ["charlm"] + sys.argv[1:]
charlm.cli.main(prog_name="charlm")
"""


def run_once(corpus: Path, budget: float, work: Path, extra: list[str]) -> dict:
    log = work / "stamps.jsonl"
    cmd = [sys.executable, "-c", CHILD, "train", str(corpus), "--time-budget", f"{budget:g}s"]
    cmd += ["--runs-dir", str(work / "runs"), "--name", "exit", *extra]
    load = C.loadavg()
    t0 = time.time()
    env = {**__import__("os").environ, "BENCH_EXIT_T0": repr(t0), "BENCH_EXIT_LOG": str(log)}
    proc = subprocess.run(cmd, cwd=C.ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    stamps = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return {
        "budget": budget,
        "returncode": proc.returncode,
        "wall_seconds": wall,
        "over_budget": wall - budget,
        "load_at_launch": load,
        "load_at_exit": C.loadavg(),
        "stamps": stamps,
        "stderr_tail": proc.stderr[-3000:],
    }


def parts(r: dict) -> list[list]:
    """The stamps as rows: what, seconds since launch, seconds since the previous stamp."""
    rows, prev = [], 0.0
    for s in r["stamps"]:
        if s["what"] == "reserve":
            rows.append(["(reserve kept at the stop)", f"{s['t']:.2f}", json.dumps(s["took"])])
            continue
        rows.append([s["what"], f"{s['t']:.2f}", f"{s['t'] - prev:+.2f}"])
        prev = s["t"]
    rows.append(
        [
            "exit (seen by the parent)",
            f"{r['wall_seconds']:.2f}",
            f"{r['wall_seconds'] - prev:+.2f}",
        ]
    )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budgets", default="60,90", help="seconds, comma-separated (default 60,90)")
    p.add_argument("--corpus", default=str(C.CORPORA / "tinyshakespeare.txt"))
    p.add_argument("--check", action="store_true", help="fail when a run overruns budget + margin")
    p.add_argument("--margin", type=float, default=2.0, help="seconds allowed over (--check)")
    p.add_argument("extra", nargs="*", help="more charlm train flags (after --)")
    args = p.parse_args(argv)
    C.say(C.cpu_line())
    results, late = [], []
    for budget in [float(b) for b in args.budgets.split(",")]:
        with tempfile.TemporaryDirectory(prefix="charlm-exit-") as tmp:
            r = run_once(Path(args.corpus), budget, Path(tmp), args.extra)
        results.append(r)
        if r["returncode"] != 0:
            C.say(r["stderr_tail"])
            return 1
        C.say(
            f"\n{budget:g} s budget: exit at {r['wall_seconds']:.2f} s "
            f"({r['over_budget']:+.2f} s), load {C.fmt_load(r['load_at_launch'])} -> "
            f"{C.fmt_load(r['load_at_exit'])}"
        )
        print(C.table(["stamp", "s since launch", "s since previous"], parts(r)))
        if r["over_budget"] > args.margin:
            late.append(budget)
    C.write_results("exit", {"benchmark": "exit", "runs": results})
    if args.check and late:
        C.say(f"over budget + {args.margin:g} s: {late}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
