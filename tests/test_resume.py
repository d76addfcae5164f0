"""Never lose a run: exact resume, crash-safe checkpoints, Ctrl-C, the NaN guard."""

import os

import numpy as np
import pytest
from conftest import CORPORA, TINY, copy_run

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


def test_resuming_a_finished_run_says_how_to_train_further_and_changes_nothing(workdir):
    from conftest import tree_snapshot

    charlm.train([CORPUS], name="done", steps=6, progress=False, **SMALL)
    before = tree_snapshot(workdir / "runs/done")
    log = []
    run = charlm.train(resume="runs/done", progress=False, log=log.append)
    assert any("already reached its limit at step 6" in m and "--steps" in m for m in log)
    assert tree_snapshot(workdir / "runs/done") == before
    assert [r["step"] for r in run.metrics()] == ["6"]
