"""Shared helpers for the benchmark scripts: machine description, medians, tables, results JSON.

Not a benchmark itself. Every script in benchmarks/ imports it as ``_common`` (it is run as
``python benchmarks/NAME.py`` so this folder is on ``sys.path``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout
CORPORA = ROOT / "corpora"
CONFIGS = ROOT / "configs"
RESULTS = Path(__file__).resolve().parent / "results"


def quiet_tensorflow() -> None:
    """Hide TensorFlow's start-up chatter (call before importing it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return [
                    f
                    for f in flags
                    if f
                    in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16")
                ]
    except OSError:
        pass
    return []


KEY_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # what decides the speed of these models


def key_flags() -> dict[str, bool]:
    """Whether the CPU has each of :data:`KEY_FLAGS` (from /proc/cpuinfo)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return {f: f in have for f in KEY_FLAGS}
    except OSError:
        pass
    return {f: False for f in KEY_FLAGS}


def cpu_line() -> str:
    """One line naming the CPU and its key flags, printed on top of every table."""
    flags = ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in key_flags().items())
    return f"CPU: {cpu_model()} ({os.cpu_count()} cores; {flags})"


def git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "charlm"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + (" (+ uncommitted changes in charlm/)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Machine:
    """What the machine is and how busy it was: recorded at the start and the end of a run."""

    def __init__(self):
        self.start_load = loadavg()
        self.t0 = time.monotonic()
        self.cpu0 = os.times()
        self.info = {
            "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "cpu_model": cpu_model(),
            "cpu_flags": cpu_flags(),
            "cpu_key_flags": key_flags(),
            "python": platform.python_version(),
            "git": git_state(),
        }

    def add_versions(self) -> None:
        try:
            import keras
            import tensorflow as tf

            self.info["tensorflow"] = tf.__version__
            self.info["keras"] = keras.__version__
        except ImportError:
            pass

    def finish(self) -> dict:
        wall = time.monotonic() - self.t0
        t = os.times()
        cpu = (t.user - self.cpu0.user) + (t.system - self.cpu0.system)
        cpu += (t.children_user - self.cpu0.children_user) + (
            t.children_system - self.cpu0.children_system
        )
        self.info.update(
            {
                "load_before": self.start_load,
                "load_after": loadavg(),
                "wall_seconds": round(wall, 1),
                # how many cores this benchmark actually got on average (2 = the whole machine)
                "own_cpu_cores_used": round(cpu / wall, 2) if wall > 0 else None,
            }
        )
        return self.info

    def describe(self) -> str:
        """The CPU line, then a line on the software and how busy the machine was."""
        i = self.info
        return (
            cpu_line() + "\n\n" + f"Run: {i['date']} | "
            f"TF {i.get('tensorflow', '?')}, Keras {i.get('keras', '?')}, Python {i['python']} | "
            f"git {i['git']} | load avg before {fmt_load(i.get('load_before'))}, "
            f"after {fmt_load(i.get('load_after'))} | this script used "
            f"{i.get('own_cpu_cores_used', '?')} cores on average over {i.get('wall_seconds', '?')} s"
        )


def fmt_load(load) -> str:
    return " / ".join(f"{x:.2f}" for x in load) if load else "?"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs) -> str:
    """'min–max' of a list of numbers, for the tables."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return ""
    return f"{fmt(min(xs))}–{fmt(max(xs))}"


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}g}" if ax < 1 else f"{x:.2f}"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(c) for c in r) + " |")
    return "\n".join(lines)


def write_results(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps(data, indent=2, ensure_ascii=False, default=_jsonable) + "\n", encoding="utf-8"
    )
    os.replace(tmp, path)
    return path


def _jsonable(x):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
    except ImportError:
        pass
    return str(x)


def say(*args) -> None:
    """Progress to stderr (the table goes to stdout)."""
    print(*args, file=sys.stderr, flush=True)
