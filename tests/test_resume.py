"""Never lose a run: exact resume, crash-safe checkpoints, Ctrl-C, the NaN guard."""

import os
import signal
import time

import forked
import numpy as np
import pytest
from conftest import CORPORA, TINY, copy_run, run_cli

import charlm
import charlm.training.trainer
from charlm.errors import CharLMError

CORPUS = CORPORA / "timemachine.txt"
# ~3,000 characters: an epoch is ~23 random batches, so runs cross epoch boundaries
SMALL = dict(TINY, max_chars=3000, val_fraction=0.1, seed=3)


def weights(run) -> list[np.ndarray]:
    return [v.numpy() for v in run.model.trainable_variables]


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)  # bitwise: every op here is deterministic on CPU


@pytest.mark.parametrize(
    "model, sampler, extra",
    [
        ("lstm", "random", {}),
        ("gru", "consecutive", {"dropout": 0.2, "layers": 2}),
        ("scratch-rnn", "consecutive", {"optimizer": "sgd", "lr": 1.0, "clip_norm": 0.1}),
        ("scratch-lstm", "random", {"dropout": 0.2}),
        ("gpt", "consecutive", {"dropout": 0.2, "context": 8, "units": 16}),
    ],
)
def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(
    workdir, model, sampler, extra
):
    # (a cosine schedule depends on the planned length; the kill test below covers it)
    settings = dict(SMALL, model=model, sampler=sampler, eval_every=7, warmup_steps=5, **extra)
    whole = charlm.train([CORPUS], name="whole", steps=40, progress=False, **settings)
    charlm.train([CORPUS], name="parts", steps=17, progress=False, **settings)
    resumed = charlm.train(resume="runs/parts", steps=40, progress=False)
    assert_same_weights(whole, resumed)
    val_whole = {r["step"]: r["val_loss"] for r in whole.metrics()}
    val_resumed = {r["step"]: r["val_loss"] for r in resumed.metrics()}
    assert set(val_resumed) == set(val_whole) | {"17"}  # + the row written when it stopped
    assert all(val_resumed[step] == val for step, val in val_whole.items())


@pytest.fixture(scope="module")
def five_steps(tmp_path_factory):
    """A run ``runs/r`` of 5 steps of SMALL, trained once for the tests that resume it or train
    over it: each changes its own copy (``copy_run``)."""
    home, back = tmp_path_factory.mktemp("five-steps"), os.getcwd()
    os.chdir(home)  # the run records runs_dir = "runs": a copy in another folder is whole
    try:
        charlm.train([CORPUS], name="r", steps=5, progress=False, **SMALL)
    finally:
        os.chdir(back)
    return home / "runs/r"


def test_resume_refuses_to_change_the_model_or_the_corpus(workdir, five_steps):
    copy_run(five_steps, workdir / "runs/r")
    with pytest.raises(CharLMError, match="cannot change units when resuming"):
        charlm.train(resume="runs/r", units=64, steps=10, progress=False)
    other = workdir / "other.txt"
    other.write_text(CORPUS.read_text()[5000:9000])
    with pytest.raises(CharLMError, match="not the one .* was trained on"):
        charlm.train([other], resume="runs/r", steps=10, progress=False)


def test_a_resumed_run_trains_on_the_launchs_clock_with_the_budget_it_resumes_with(
    workdir, five_steps
):
    from charlm.api import prepare_launch
    from charlm.api.launch import Launch

    copy_run(five_steps, workdir / "runs/r")
    launch = Launch(
        resume="runs/r", overrides={"time_budget": "1h"}, log=lambda line: None, progress=False
    )
    trainer = prepare_launch(launch)
    trainer.rundir.release()
    assert trainer.clock is launch.clock and launch.clock.budget == 3600.0


def test_resume_reuses_the_runs_id_file_while_the_corpus_files_are_unchanged(workdir):
    corpus = workdir / "c.txt"
    corpus.write_text(CORPUS.read_text()[:3000])
    charlm.train([corpus], name="r", steps=5, progress=False, **SMALL)
    ids = workdir / "runs/r/ids.npy"
    written = ids.stat().st_mtime_ns
    said = []
    charlm.train(resume="runs/r", steps=8, progress=False, log=said.append)
    assert any("unchanged since r encoded it" in line for line in said)
    assert ids.stat().st_mtime_ns == written  # not encoded again
    # the same text with a new modification time: encoded again, checked, and noted anew
    os.utime(corpus, ns=(written + 10**9, written + 10**9))
    said.clear()
    run = charlm.train(resume="runs/r", steps=11, progress=False, log=said.append)
    assert not any("unchanged since" in line for line in said)
    assert ids.stat().st_mtime_ns != written and run.metrics()[-1]["step"] == "11"
    said.clear()
    charlm.train(resume="runs/r", steps=13, progress=False, log=said.append)
    assert any("unchanged since r encoded it" in line for line in said)


def test_resume_refuses_a_corpus_file_changed_in_place(workdir):
    corpus = workdir / "c.txt"
    corpus.write_text(CORPUS.read_text()[:3000])
    charlm.train([corpus], name="r", steps=5, progress=False, **SMALL)
    corpus.write_text(CORPUS.read_text()[3000:6000])  # same size, other text
    with pytest.raises(CharLMError, match="not the one .* was trained on"):
        charlm.train(resume="runs/r", steps=10, progress=False)


def test_resume_with_a_corpus_json_that_is_not_an_object_is_one_clear_error(workdir, five_steps):
    copy_run(five_steps, workdir / "runs/r")
    (workdir / "runs/r/corpus.json").write_text("[1, 2]\n")
    with pytest.raises(CharLMError, match="corpus.json is missing or corrupt"):
        charlm.train(resume="runs/r", steps=10, progress=False)


def test_training_into_an_existing_run_without_resume_or_force_refuses_and_changes_nothing(
    workdir, five_steps
):
    from conftest import tree_snapshot

    copy_run(five_steps, workdir / "runs/r")
    before = tree_snapshot(workdir)
    with pytest.raises(CharLMError, match="already holds a run; pass --resume .* --force"):
        charlm.train([CORPUS], name="r", steps=5, progress=False, **SMALL)
    assert tree_snapshot(workdir) == before
    run = charlm.train([CORPUS], name="r", steps=3, force=True, progress=False, **SMALL)
    assert run.metrics()[-1]["step"] == "3"


def test_an_unreadable_newest_checkpoint_falls_back_to_the_one_before(workdir):
    settings = dict(SMALL, eval_every=5)
    whole = charlm.train([CORPUS], name="whole", steps=20, progress=False, **settings)
    charlm.train([CORPUS], name="parts", steps=10, progress=False, **settings)
    checkpoints = sorted((workdir / "runs/parts/checkpoints").iterdir())
    assert [p.name for p in checkpoints] == ["step-000000005", "step-000000010"]
    data = next(checkpoints[-1].glob("ckpt.data-*"))
    data.write_bytes(data.read_bytes()[:100])  # truncated, as by a disk fault
    warnings = []
    resumed = charlm.train(resume="runs/parts", steps=20, progress=False, log=warnings.append)
    assert any("step-000000010 is unreadable" in w for w in warnings)
    assert any("resuming" in w and "at step 5" in w for w in warnings)
    assert_same_weights(whole, resumed)


class PoisonWeightsOnce(charlm.training.trainer.Callback):
    """Before step ``at_step`` (once), set a weight to NaN: the step's loss is NaN."""

    def __init__(self, at_step: int):
        self.at_step, self.done = at_step, False

    def on_batch_begin(self, trainer, x, y, state):
        if trainer.step + 1 == self.at_step and not self.done:
            trainer.variables[0].assign(np.full(trainer.variables[0].shape, np.nan, np.float32))
            self.done = True


@pytest.mark.parametrize("model", ["lstm", "gpt"])
def test_a_nan_loss_rolls_back_to_the_last_checkpoint_and_halves_the_learning_rate(workdir, model):
    poison = PoisonWeightsOnce(at_step=13)
    log = []
    run = charlm.train(
        [CORPUS],
        name="nan",
        progress=False,
        log=log.append,
        callbacks=[poison],
        **dict(SMALL, model=model, steps=30, eval_every=10),
    )
    assert poison.done
    assert any(
        "the loss was nan at step 13; rolled back to the checkpoint at step 10 and "
        "halved the learning rate (base lr now 0.005)" in m
        for m in log
    )
    rows = run.metrics()
    assert [r["step"] for r in rows] == ["10", "20", "30"]
    assert float(rows[-1]["lr"]) == pytest.approx(0.005)
    assert all(np.isfinite(w).all() for w in weights(run))


def test_a_diverging_run_stops_with_a_clear_message_and_keeps_its_good_checkpoint(workdir):
    with pytest.raises(
        CharLMError,
        match="training diverged: the loss was (nan|inf) .* 3 "
        "roll-backs .* lower --lr or --clip-norm",
    ):
        charlm.train(
            [CORPUS],
            name="boom",
            progress=False,
            **dict(
                SMALL,
                steps=50,
                eval_every=5,
                model="scratch-rnn",
                optimizer="sgd",
                lr=1e38,
                clip_norm=0.0,
            ),
        )
    good = charlm.load("runs/boom", weights="last")
    assert all(np.isfinite(w).all() for w in weights(good))


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


def test_resuming_a_finished_run_says_how_to_train_further_and_changes_nothing(workdir):
    from conftest import tree_snapshot

    charlm.train([CORPUS], name="done", steps=6, progress=False, **SMALL)
    before = tree_snapshot(workdir / "runs/done")
    log = []
    run = charlm.train(resume="runs/done", progress=False, log=log.append)
    assert any("already reached its limit at step 6" in m and "--steps" in m for m in log)
    assert tree_snapshot(workdir / "runs/done") == before
    assert [r["step"] for r in run.metrics()] == ["6"]
