"""The run folder and its crash-safe writes: checkpoint rotation, atomic files, the `latest`
pointer, finding runs, and loading weights safely (no code from the folder, clear messages for
damaged files, the old copy found after a crash in the middle of a save)."""

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import copy_run, error

import charlm
from charlm.errors import CharLMError
from charlm.fsio import atomic_write, readable_path, replace_path
from charlm.models.lm import build_model
from charlm.options.config import Config
from charlm.runs.checkpoints import KEEP_CHECKPOINTS
from charlm.runs.folders import resolve_run
from charlm.runs.rundir import RunDir


def hidden_entries(folder: Path) -> list[str]:
    """Temporary or old copies left beside the files (their names start with a dot)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def weights(model) -> list[np.ndarray]:
    return [v.numpy() for v in model.trainable_variables]


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)


# -- checkpoints ----------------------------------------------------------------------------------


@pytest.fixture
def counter():
    """A tf.train.Checkpoint of one variable, to save as the trainer saves its state."""
    value = tf.Variable(0)
    return value, tf.train.Checkpoint(value=value)


def test_checkpoint_rotation_keeps_the_last_keep_checkpoints(tmp_path, counter):
    value, checkpoint = counter
    rundir = RunDir(tmp_path)
    for step in range(1, 6):
        value.assign(step)
        rundir.save_checkpoint(checkpoint, step)
    kept = list(range(6 - KEEP_CHECKPOINTS, 6))
    assert [step for step, _ in rundir.checkpoints()] == kept
    assert sorted(p.name for p in rundir.checkpoint_dir.iterdir()) == [
        f"step-{step:09d}" for step in kept
    ]


def test_the_newest_checkpoint_is_the_one_restored(tmp_path, counter):
    value, checkpoint = counter
    rundir = RunDir(tmp_path)
    for step in (3, 7):
        value.assign(step * 10)
        rundir.save_checkpoint(checkpoint, step)
    value.assign(0)
    assert rundir.restore_checkpoint(checkpoint) == 7
    assert int(value.numpy()) == 70


def test_a_checkpoint_save_removes_stale_temp_folders_and_never_lists_them(tmp_path, counter):
    _, checkpoint = counter
    rundir = RunDir(tmp_path)
    stale = rundir.checkpoint_dir / ".tmp-step-000000003-4242"  # a save killed half-way
    stale.mkdir(parents=True)
    (stale / "ckpt.index").write_bytes(b"half")
    assert rundir.checkpoints() == []
    rundir.save_checkpoint(checkpoint, 4)
    assert not stale.exists()
    assert [p.name for p in rundir.checkpoint_dir.iterdir()] == ["step-000000004"]


def test_no_checkpoint_restores_nothing(tmp_path, counter):
    assert RunDir(tmp_path).restore_checkpoint(counter[1]) == -1


def truncate(path: Path, keep: int = 10) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_an_unreadable_newest_checkpoint_warns_and_the_one_before_is_restored(tmp_path, counter):
    value, checkpoint = counter
    rundir = RunDir(tmp_path)
    for step in (1, 2):
        value.assign(step)
        rundir.save_checkpoint(checkpoint, step)
    truncate(next(rundir.checkpoints()[-1][1].glob("ckpt.data-*")))
    warnings = []
    assert rundir.restore_checkpoint(checkpoint, warn=warnings.append) == 1
    assert int(value.numpy()) == 1
    assert len(warnings) == 1 and "step-000000002 is unreadable" in warnings[0]


def test_a_run_whose_checkpoints_are_all_truncated_is_a_clear_error(tmp_path, counter):
    _, checkpoint = counter
    rundir = RunDir(tmp_path)
    rundir.save_checkpoint(checkpoint, 1)
    truncate(rundir.checkpoint_dir / "step-000000001" / "ckpt.index")
    message = error(rundir.restore_checkpoint, checkpoint, warn=lambda _: None)
    assert "no readable checkpoint" in message and "step-000000001" in message
    assert "start a new run" in message


# -- atomic writes --------------------------------------------------------------------------------


class FailingText(str):
    """Text whose encoding fails: atomic_write has opened its temporary file by then."""

    def __new__(cls, text, exception):
        self = super().__new__(cls, text)
        self.exception = exception
        return self

    def encode(self, *args, **kwargs):
        raise self.exception


def test_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "config.toml"
    atomic_write(path, "old\n")
    atomic_write(path, "new ✓\n")
    assert path.read_text(encoding="utf-8") == "new ✓\n"
    atomic_write(path, b"\x00bytes")
    assert path.read_bytes() == b"\x00bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


@pytest.mark.parametrize(
    "exception",
    [OSError(28, "No space left on device"), KeyboardInterrupt()],
    ids=["disk-full", "ctrl-c"],
)
def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temp_file(tmp_path, exception):
    path = tmp_path / "metrics.csv"
    atomic_write(path, "old\n")
    with pytest.raises(type(exception)):
        atomic_write(path, FailingText("new\n", exception))
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_a_first_write_that_fails_leaves_no_file_at_all(tmp_path):
    with pytest.raises(OSError):
        atomic_write(tmp_path / "vocab.json", FailingText("{}", OSError(5, "I/O error")))
    assert list(tmp_path.iterdir()) == []


def test_replace_path_swaps_a_folder_for_its_new_version_and_leaves_no_old_copy(tmp_path):
    final, tmp = tmp_path / "best", tmp_path / ".best.tmp-1"
    for folder, text in ((final, "old"), (tmp, "new")):
        folder.mkdir()
        (folder / "weights").write_text(text)
    replace_path(tmp, final)
    assert (final / "weights").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["best"]


def test_replace_path_renames_a_file_over_the_old_one(tmp_path):
    (tmp_path / "best.keras").write_text("old")
    (tmp_path / ".best.keras.tmp-1.keras").write_text("new")
    replace_path(tmp_path / ".best.keras.tmp-1.keras", tmp_path / "best.keras")
    assert (tmp_path / "best.keras").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["best.keras"]


def test_readable_path_is_the_final_path_whenever_it_exists(tmp_path):
    (tmp_path / "best").mkdir()
    (tmp_path / ".best.old-99").mkdir()
    assert readable_path(tmp_path / "best") == tmp_path / "best"
    assert readable_path(tmp_path / "last") == tmp_path / "last"  # missing, no old copy


def test_a_crash_between_the_two_renames_leaves_the_old_folder_readable(tmp_path):
    final, tmp, old = tmp_path / "best", tmp_path / ".best.tmp-7", tmp_path / ".best.old-7"
    for folder, text in ((final, "old"), (tmp, "new")):
        folder.mkdir()
        (folder / "weights").write_text(text)
    # replace_path first renames the old version aside as .NAME.old-PID, then the new one into
    # place: this is what a crash between the two leaves
    os.rename(final, old)
    assert readable_path(final) == old
    replace_path(tmp, final)  # the next save completes
    assert readable_path(final) == final and (final / "weights").read_text() == "new"


# -- finding runs ---------------------------------------------------------------------------------


def new_run(name: str, runs_dir: str = "runs") -> RunDir:
    cfg = Config(runs_dir=runs_dir, name=name)
    rundir = RunDir.create(cfg)
    rundir.write_config(cfg, charlm.__version__)
    rundir.complete()  # as its first checkpoint of a trained step does: latest -> it
    rundir.release()
    return rundir


def test_latest_points_at_the_newest_run_and_resolve_run_follows_it(workdir):
    new_run("first")
    assert resolve_run(None) == Path("runs/first")
    new_run("second")
    assert os.readlink("runs/latest") == "second"  # relative: the folder of runs can move
    assert resolve_run(None) == Path("runs/second")


def test_resolve_run_given_a_folder_of_runs_uses_its_newest(workdir):
    new_run("a", runs_dir="elsewhere")
    new_run("b", runs_dir="elsewhere")
    assert resolve_run("elsewhere") == Path("elsewhere/b")
    assert resolve_run(None, runs_dir="elsewhere") == Path("elsewhere/b")


def test_resolve_run_given_a_run_folder_returns_that_run(workdir):
    new_run("a")
    new_run("b")
    assert resolve_run("runs/a") == Path("runs/a")


def test_a_moved_folder_of_runs_still_finds_its_newest(workdir):
    new_run("a")
    new_run("b")
    os.rename("runs", "archive")
    assert resolve_run("archive") == Path("archive/b")


def test_no_run_yet_is_a_clear_error(workdir):
    message = error(resolve_run, None)
    assert "no run found in runs/" in message and "charlm train CORPUS" in message


def test_a_folder_that_is_not_a_run_is_a_clear_error(workdir):
    Path("notes").mkdir()
    assert "not a charlm run" in error(resolve_run, "notes")
    assert "no such run folder" in error(resolve_run, "missing")


# -- weights: saved atomically, loaded safely -----------------------------------------------------


@pytest.fixture
def run_copy(shared_run, tmp_path):
    """A fresh copy of a tiny trained run of each model family (the session's shared runs),
    to damage."""

    def copy(kind: str) -> Path:
        return copy_run(
            shared_run({"keras": "lstm", "scratch": "scratch-gru"}[kind]), tmp_path / kind
        )

    return copy


def test_a_keras_file_holding_a_lambda_layer_is_refused_and_its_code_never_runs(run_copy, tmp_path):
    import keras

    run = run_copy("keras")
    marker = tmp_path / "the-lambda-ran"

    def touch_marker(x, marker=str(marker)):
        open(marker, "w").close()
        return x

    vocab_size = len(RunDir(run).read_vocab())
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    state = keras.Input(shape=(8,), name="state_0_0")
    x = keras.layers.Lambda(touch_marker)(keras.layers.Embedding(vocab_size, 8)(ids))
    x, new_state = keras.layers.GRU(8, return_sequences=True, return_state=True)(
        x, initial_state=[state]
    )
    keras.Model([ids, state], [keras.layers.Dense(vocab_size)(x), new_state]).save(
        run / "best.keras"
    )
    marker.unlink()  # building the model called the lambda once; loading it must not
    message = error(charlm.load, run)
    assert "best.keras" in message and "refusing to load" in message
    assert not marker.exists()


def test_a_truncated_keras_weights_file_is_a_clear_error_naming_the_way_out(run_copy):
    run = run_copy("keras")
    truncate(run / "best.keras", keep=1000)
    message = error(charlm.load, run)
    assert "best.keras" in message and "truncated or corrupt" in message
    assert "--weights last" in message
    charlm.load(run, weights="last")  # the way out works


def test_a_truncated_scratch_weights_checkpoint_is_a_clear_error_naming_the_way_out(run_copy):
    run = run_copy("scratch")
    truncate(next((run / "best").glob("weights.data-*")))
    message = error(charlm.load, run)
    assert "best" in message and "truncated or corrupt" in message
    assert "--weights last" in message
    charlm.load(run, weights="last")


@pytest.mark.parametrize("kind", ["keras", "scratch"])
def test_save_weights_replaces_the_old_weights_and_leaves_nothing_beside_them(run_copy, kind):
    run = run_copy(kind)
    rundir = RunDir(run)
    cfg = rundir.read_config()
    other = build_model(cfg.replace(seed=cfg.seed + 1), len(rundir.read_vocab()))
    assert not np.array_equal(weights(other)[0], weights(charlm.load(run).model)[0])
    rundir.save_weights(other, "best")
    assert_same_weights(charlm.load(run).model, other)
    assert hidden_entries(run) == []


def test_a_save_interrupted_between_its_two_renames_loads_the_old_weights(run_copy):
    """A scratch run's weights are a folder: replace_path renames the old one aside, then the
    new one into place. A crash between the two leaves only ``.best.old-PID``, and that copy is
    what the run loads."""
    run = run_copy("scratch")
    before = charlm.load(run).model
    rundir = RunDir(run)
    new = build_model(rundir.read_config().replace(seed=9), len(rundir.read_vocab()))
    new.save(run / ".best.tmp-12345")  # written and synced, not yet renamed
    os.rename(run / "best", run / ".best.old-12345")  # replace_path's first rename
    path, _ = rundir.find_weights("best", "")
    assert path == run / ".best.old-12345"
    assert_same_weights(charlm.load(run).model, before)


def test_when_the_newest_run_is_deleted_the_most_recent_survivor_is_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    for name in ("old", "new"):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.toml").write_text("format_version = 1\n")
        time.sleep(0.01)
    (runs / "latest").symlink_to("new")
    shutil.rmtree(runs / "new")
    assert resolve_run(None, "runs") == Path("runs/old")
    assert resolve_run("runs") == Path("runs/old")
    shutil.rmtree(runs / "old")
    with pytest.raises(CharLMError, match="no run found in runs/"):
        resolve_run(None, "runs")
