"""The real nanoGPT as a contender in benchmarks/race.py (not a benchmark by itself).

karpathy/nanoGPT's own ``train.py`` and ``model.py`` run from a checkout the race is pointed at
(``--nanogpt DIR``), with torch from that checkout's own Python (``--nanogpt-python``): nothing
of nanoGPT is copied into this repository and torch is never a charlm dependency. Each run
works in a fresh folder that links the checkout's files and holds the corpus as nanoGPT's
``data/shakespeare_char/prepare.py`` writes it (uint16 ids in ``train.bin``/``val.bin``, the
vocabulary in ``meta.pkl``), split where charlm splits it (``split_corpus(text, 0.1)``) so
both train on the same characters and are scored on the same held-out ones.

The recipe is nanoGPT README's CPU "baby GPT" (``config/train_shakespeare_char.py`` with
``--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64
--batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --dropout=0.0``), stretched to the
budget: a calibration of ``CALIBRATION_ITERS`` iterations with no evaluation in between gives
the median ms per iteration of iterations 100-600 and the start-up and evaluation costs;
``max_iters`` (= ``lr_decay_iters``) is then set so that the run, with its evaluations every
``max_iters / 10`` iterations, ends within ``budget / SAFETY``. ``always_save_checkpoint`` is on,
so ``ckpt.pt`` holds the last weights (charlm is scored from its last weights too).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CALIBRATION_ITERS = 600
SAFETY = 1.05  # the stretched run aims to end by budget / SAFETY
EVALS = 10
BABY_GPT = [
    "config/train_shakespeare_char.py",
    "--device=cpu",
    "--compile=False",
    "--dtype=float32",
    "--eval_iters=20",
    "--log_interval=1",
    "--block_size=64",
    "--batch_size=12",
    "--n_layer=4",
    "--n_head=4",
    "--n_embd=128",
    "--dropout=0.0",
    "--always_save_checkpoint=True",
]
ITER_LINE = re.compile(r"^iter (\d+): loss ([0-9.]+), time ([0-9.]+)ms")
LINKED = ("train.py", "model.py", "configurator.py", "config")


def workdir(checkout: Path, work: Path, train_text: str, val_text: str) -> Path:
    """A folder nanoGPT's train.py runs in: the checkout's files linked, the corpus prepared."""
    work.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = work / name
        if not link.exists():
            link.symlink_to(checkout / name)
    data = work / "data" / "shakespeare_char"
    data.mkdir(parents=True, exist_ok=True)
    chars = sorted(set(train_text + val_text))
    if len(chars) > 65535:
        raise ValueError("nanoGPT stores ids as uint16")
    stoi = {c: i for i, c in enumerate(chars)}
    for name, text in (("train", train_text), ("val", val_text)):
        np.array([stoi[c] for c in text], np.uint16).tofile(data / f"{name}.bin")
    itos = dict(enumerate(chars))
    with open(data / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": itos, "stoi": stoi}, f)
    return work


def _run(python: str, work: Path, args: list[str], prefix: list[str], env, log: Path):
    cmd = prefix + [python, "train.py", *BABY_GPT, *args]
    t0 = time.time()
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT, env=env)
    return proc.returncode, time.time() - t0, " ".join(cmd)


def iterations(log: Path) -> list[tuple[int, float, float]]:
    """(iteration, train loss, seconds) of every ``iter`` line nanoGPT printed."""
    rows = []
    for line in log.read_text(errors="replace").splitlines():
        m = ITER_LINE.match(line)
        if m:
            rows.append((int(m[1]), float(m[2]), float(m[3]) / 1000))
    return rows


def calibrate(
    python: str, work: Path, prefix: list[str], env=None, iters: int = CALIBRATION_ITERS
) -> dict:
    """ms/iteration (the median of iterations iters/6..iters), start-up and evaluation
    seconds of the baby GPT on this machine."""
    rc, wall, cmd = _run(
        python,
        work,
        [f"--max_iters={iters}", "--eval_interval=100000", "--out_dir=calibration"],
        prefix,
        env,
        work / "calibration.log",
    )
    if rc != 0:
        raise RuntimeError(f"nanoGPT calibration failed: see {work / 'calibration.log'}")
    rows = iterations(work / "calibration.log")
    step = statistics.median(s for i, _, s in rows if iters // 6 <= i <= iters)
    evaluation = max(0.0, rows[0][2] - step)  # iteration 0 includes the first evaluation
    # the evaluation after the last iteration, then exit: the rest of the wall time is start-up
    startup = max(0.0, wall - sum(s for _, _, s in rows) - evaluation)
    return {
        "command": cmd,
        "seconds_per_iteration": step,
        "evaluation_seconds": evaluation,
        "startup_seconds": startup,
        "wall_seconds": wall,
    }


def stretched_iters(cal: dict, budget: float) -> int:
    """max_iters whose run, with EVALS + 1 evaluations, ends by budget / SAFETY."""
    left = budget / SAFETY - cal["startup_seconds"] - (EVALS + 1) * cal["evaluation_seconds"]
    return max(EVALS, int(left / cal["seconds_per_iteration"]) // EVALS * EVALS)


def run(python: str, work: Path, budget: float, cal: dict, prefix: list[str], env=None) -> dict:
    """One stretched run, launch to exit; the result in race.py's shape."""
    n = stretched_iters(cal, budget)
    load = os.getloadavg()
    rc, wall, cmd = _run(
        python,
        work,
        [
            f"--max_iters={n}",
            f"--lr_decay_iters={n}",
            f"--eval_interval={n // EVALS}",
            "--out_dir=out",
        ],
        prefix,
        env,
        work / "nanogpt.out",
    )
    r = {
        "returncode": rc,
        "wall_seconds": wall,
        "load_at_launch": [round(x, 2) for x in load],
        "load_at_exit": [round(x, 2) for x in os.getloadavg()],
        "folder": str(work / "out"),
        "command": cmd,
        "max_iters": n,
    }
    rows = iterations(work / "nanogpt.out")
    if rc == 0 and rows:
        r.update(
            steps=rows[-1][0],
            chars_per_step=12 * 64,
            last_train_loss=rows[-1][1],
            loop_chars_per_sec=len(rows) * 12 * 64 / sum(s for _, _, s in rows),
        )
    return r


def score(python: str, checkout: Path, r: dict, val_text: str, meta: Path) -> None:
    """Add the 64-character-window val loss of the run's checkpoint to ``r`` (scored with torch
    in nanoGPT's own Python by benchmarks/nanogpt_score.py)."""
    out = subprocess.run(
        [python, str(HERE / "nanogpt_score.py"), str(checkout), r["folder"], str(meta)],
        input=val_text,
        capture_output=True,
        text=True,
        check=True,
    )
    windows = json.loads(out.stdout.splitlines()[-1])  # model.py prints its size first
    r["val_unknown_chars"] = windows.pop("unknown")
    r["val"] = {"windows64": windows, "carried": None}
