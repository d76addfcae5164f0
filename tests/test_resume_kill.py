"""A training process killed at any moment (SIGKILL mid-write and mid-step, a transformer's
too) never loses its run and resumes to the uninterrupted run's weights; Ctrl-C saves a
checkpoint and says how to resume. (Apart from test_resume.py, whose in-process resumes
they build on, so that the suite's two workers share the load.)"""

import os
import signal
import time

import forked
import numpy as np
from conftest import run_cli
from test_resume import CORPUS, assert_same_weights

import charlm

# -- processes that are killed ------------------------------------------------------------------

TRAIN_ARGS = [
    "train",
    str(CORPUS),
    "--name",
    "k",
    "--max-chars",
    "3000",
    "--seed",
    "3",
    "--layers",
    "1",
    "--units",
    "32",
    "--embedding-dim",
    "16",
    "--seq-len",
    "16",
    "--batch-size",
    "8",
    "--lr",
    "0.01",
    "--eval-every",
    "0",
    "--checkpoint-every",
    "4",
    "--steps",
    "200",
    "--lr-schedule",
    "cosine",
    "--warmup-steps",
    "10",
]


def start(args, cwd, pause_at=None):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CHARLM_PAUSE_AT", None)
    if pause_at:
        env["CHARLM_PAUSE_AT"] = pause_at
    return forked.start(args, cwd=cwd, env=env)


def wait_for_pause(proc, timeout=120) -> str:
    """Read stderr until the process says it paused at its fault point."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("CHARLM_PAUSED"):
            return line.split()[1]
    proc.kill()
    raise AssertionError("the process never reached its pause point:\n" + "".join(seen[-20:]))


def newest_checkpoint(run) -> int:
    steps = [int(p.name[5:]) for p in (run / "checkpoints").glob("step-*")]
    return max(steps, default=-1)


def test_sigkill_at_many_moments_never_loses_the_run(workdir):
    """Kill -9 the trainer inside every step of a checkpoint write and at random moments;
    each time the run still loads and resumes, and the end result is the uninterrupted one."""
    kill_points = [
        "checkpoint-written:1",
        "checkpoint-synced:2",
        "checkpoint-renamed:2",
        "weights-written:1",
        "checkpoint-written:3",
        "checkpoint-renamed:1",
    ]
    killed = []
    args = TRAIN_ARGS
    for point in kill_points:
        proc = start(args, workdir, pause_at=point)
        killed.append(wait_for_pause(proc))
        proc.kill()
        proc.wait()
        args = ["train", "--resume", "runs/k"]
    rng = np.random.default_rng(0)
    for delay in rng.uniform(0.0, 0.3, size=3):  # random moments while it trains
        before = newest_checkpoint(workdir / "runs/k")
        proc = start(args, workdir)
        deadline = time.monotonic() + 120
        while newest_checkpoint(workdir / "runs/k") <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL  # it was still running
        killed.append(
            f"{delay:.2f}s after the checkpoint of step {newest_checkpoint(workdir / 'runs/k')}"
        )
    proc = start(args, workdir)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert len(killed) == 9
    resumed = charlm.load("runs/k", weights="last")
    # the uninterrupted run: killing is not the point here, so it runs in this process
    code, _, err = run_cli(*TRAIN_ARGS[:2], *TRAIN_ARGS[4:], "--name", "whole", cwd=workdir)
    assert code == 0, err
    whole = charlm.load("runs/whole", weights="last")
    assert_same_weights(whole, resumed)
    assert not list((workdir / "runs/k/checkpoints").glob(".tmp-*"))


def test_sigkill_of_a_transformer_run_never_loses_it(workdir):
    """As above, fewer times: a transformer's checkpoint (its key/value cache is no part of
    it) survives kill -9 mid-write and mid-step, and the run ends where an uninterrupted one
    does."""
    at = TRAIN_ARGS.index("--embedding-dim")
    args = TRAIN_ARGS[:at] + TRAIN_ARGS[at + 2 :]  # a transformer's embedding is its width
    args += ["--model", "gpt", "--heads", "2", "--context", "16"]
    first = args
    for point in ("checkpoint-written:1", "checkpoint-renamed:2"):
        proc = start(args, workdir, pause_at=point)
        wait_for_pause(proc)
        proc.kill()
        proc.wait()
        args = ["train", "--resume", "runs/k"]
    before = newest_checkpoint(workdir / "runs/k")
    proc = start(args, workdir)
    deadline = time.monotonic() + 120
    while newest_checkpoint(workdir / "runs/k") <= before and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # it was still running
    proc = start(args, workdir)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    resumed = charlm.load("runs/k", weights="last")
    code, _, err = run_cli(*first[:2], *first[4:], "--name", "whole", cwd=workdir)
    assert code == 0, err
    assert resumed.config.model == "gpt"
    assert_same_weights(charlm.load("runs/whole", weights="last"), resumed)


def test_ctrl_c_saves_a_checkpoint_says_how_to_resume_and_exits_non_zero(workdir):
    args = [a if a != "200" else "100000" for a in TRAIN_ARGS]
    proc = start(args, workdir)
    deadline = time.monotonic() + 120
    while not list((workdir / "runs/k/checkpoints").glob("step-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    # it stops at the next step instead of training on (100,000 steps take many minutes); the
    # bound leaves room for a loaded machine: 12-18 s were seen at a load of 9 on 2 cores
    assert time.monotonic() - sent < 30
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "checkpoint saved. Resume with: charlm train --resume runs/k" in err
    steps = sorted(int(p.name[5:]) for p in (workdir / "runs/k/checkpoints").glob("step-*"))
    assert steps[-1] > 0
    # and it resumes from there
    run = charlm.train(resume="runs/k", steps=steps[-1] + 3, progress=False)
    assert int(run.metrics()[-1]["step"]) == steps[-1] + 3
