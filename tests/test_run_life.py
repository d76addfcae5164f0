"""A run folder's life: claimed atomically, locked while it trains, incomplete (and never the
newest run) until its first checkpoint of a trained step, and ``latest`` is only charlm's link.

Each refusal is one ``Error:`` line, exit status 1, no traceback, and no file changed. Most
cases run in this process (``run_cli``) on copies of the session's tiny run; real processes
only where two processes are the point: a trainer paused at a fault point
(``CHARLM_PAUSE_AT``) holds the lock while the other command runs, so no test waits on a clock.
"""

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import forked
import pytest
from conftest import CORPORA, TINY, copy_run, run_cli, tree_snapshot

import charlm
from charlm.errors import CharLMError
from charlm.options.config import Config
from charlm.runs.folders import INCOMPLETE, claim_run_folder
from charlm.runs.lock import LOCK_FILE, RunLock
from charlm.training.trainer import Callback

CORPUS = CORPORA / "timemachine.txt"
FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()] + ["--max-chars=3000"]


def error_line(ran, *words, alone=True) -> str:
    """The one-line refusal of ``ran`` (a run_cli result) naming ``words``: exit status 1, no
    traceback, and (``alone``) no other line; else the last line after what training said."""
    err = ran.stderr
    assert ran.exit_code == 1, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: ") and (len(lines) == 1 or not alone), err
    for word in words:
        assert word in lines[-1], f"{word!r} not in {lines[-1]!r}"
    return lines[-1]


def state(folder):
    """Every file's bytes, every folder, and where every symlink points, under ``folder``."""
    links = sorted(
        (str(p.relative_to(folder)), os.readlink(p) if p.is_symlink() else None)
        for p in folder.rglob("*")
        if p.is_dir() or p.is_symlink()
    )
    return tree_snapshot(folder), links


@pytest.fixture
def good(workdir, shared_run):
    """``runs/good``, a copy of the session's tiny run, with ``runs/latest`` pointing at it."""
    run = copy_run(shared_run("lstm"), workdir / "runs/good")
    os.symlink("good", workdir / "runs/latest")
    return run


def train(*args, name="new", steps=2):
    return run_cli("train", CORPUS, "--name", name, f"--steps={steps}", *FLAGS, *args)


def evaluated_run() -> str:
    """The run plain ``charlm eval`` takes."""
    ran = run_cli("eval", "--json", "--batch-size", "4")
    assert ran.exit_code == 0, ran.output
    return ran.stdout.split('"run": "')[1].split('"')[0]


# -- a start that fails --------------------------------------------------------------------------


class FailsAtItsFirstStep(Callback):
    """An error inside training, after the claim and the step-0 checkpoint, before any
    checkpoint of a trained step (as an error at the first periodic sample once was)."""

    def on_batch_end(self, trainer, loss, grad_norm, state):
        raise RuntimeError("failed at the first step")


def test_a_start_that_fails_in_training_is_never_the_newest_and_a_retry_replaces_it(workdir, good):
    with pytest.raises(RuntimeError, match="failed at the first step"):
        charlm.train(
            [CORPUS], **{**TINY, "steps": 2}, name="new", max_chars=3000,
            callbacks=[FailsAtItsFirstStep()], progress=False, log=lambda _: None,
        )  # fmt: skip
    assert (workdir / "runs/new" / INCOMPLETE).exists()  # kept, but never the newest
    assert os.readlink(workdir / "runs/latest") == "good"
    assert evaluated_run() == "runs/good"
    ran = train()  # the same --name again
    assert ran.exit_code == 0, ran.output
    assert not (workdir / "runs/new" / INCOMPLETE).exists()
    assert os.readlink(workdir / "runs/latest") == "new"


def test_a_model_that_cannot_be_built_leaves_no_folder_and_the_same_latest(workdir, good):
    """A model too big for the machine: the memory estimate refuses it in one line before the
    folder is claimed (a real process under a memory limit, so that a model the estimate let
    through would fail in the build, after the claim, and still leave nothing)."""
    before = state(workdir / "runs")

    limited = ["bash", "-c", 'ulimit -v 8388608 && exec "$@"', "bash", sys.executable]
    done = subprocess.run(
        [*limited, "-m", "charlm", "train", CORPUS, "--name", "big", *FLAGS, "--units=1000000000"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "needs about" in done.stderr and "use fewer --units" in done.stderr
    assert state(workdir / "runs") == before  # not even the encoded corpus is left
    ran = train(name="big")
    assert ran.exit_code == 0, ran.output


# -- latest ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_users_file_named_latest_is_left_as_it_is_and_said_once(workdir, kind):
    mine = workdir / "mine"
    mine.mkdir()
    if kind == "file":
        (mine / "latest").write_text("my notes\n")
    else:
        (mine / "latest").mkdir()
        (mine / "latest/notes.txt").write_text("my notes\n")
    before = state(mine / "latest") if kind == "folder" else (mine / "latest").read_bytes()
    ran = train("--runs-dir", "mine")
    assert ran.exit_code == 0, ran.output
    assert ran.stderr.count("mine/latest was not updated") == 1
    after = state(mine / "latest") if kind == "folder" else (mine / "latest").read_bytes()
    assert after == before and not (mine / "latest").is_symlink()
    ran = run_cli("eval", "--json", "--batch-size", "4", "--runs-dir", "mine")
    assert '"run": "mine/new"' in ran.stdout, ran.output  # the newest run all the same


# -- the lock ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--resume", "runs/good", "--steps", "30"],
        ["train", CORPUS, "--name", "good", "--force", *FLAGS],
        ["train", CORPUS, "--name", "good", *FLAGS],
    ],
    ids=["resume", "force", "same-name"],
)
def test_a_run_being_trained_refuses_a_second_writer_naming_the_first(workdir, good, args):
    lock = RunLock.take(good)  # as a trainer holds it (here: this process)
    try:
        before = state(workdir)
        line = error_line(run_cli(*args), f"runs/good is being trained by process {os.getpid()}")
        assert line.endswith("wait for it or stop it")
        assert state(workdir) == before
    finally:
        lock.release()
    ran = run_cli("train", "--resume", "runs/good", "--steps", "21")
    assert ran.exit_code == 0, ran.output  # released: the next writer goes ahead


def claim_at_once(name: str | None, claimants: int):
    """``claimants`` threads claim ``runs/<name>`` (or, with no name, a folder named by the
    time) at one moment: (the claims, the refusals)."""
    cfg = Config(runs_dir="runs", name=name)
    barrier = threading.Barrier(claimants)
    won, refused = [], []

    def claim():
        barrier.wait()
        try:
            won.append(claim_run_folder(cfg, log=lambda _: None))
        except CharLMError as e:
            refused.append(str(e))

    threads = [threading.Thread(target=claim) for _ in range(claimants)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, refused


@pytest.mark.parametrize("attempt", range(12))
def test_claims_of_one_name_at_the_same_moment_give_it_to_exactly_one(workdir, attempt):
    won, refused = claim_at_once("race", claimants=3)
    assert len(won) == 1 and len(refused) == 2, (won, refused)
    assert all("\n" not in r and "runs/race is being trained by" in r for r in refused), refused
    won[0][1].release()


@pytest.mark.parametrize("attempt", range(3))
def test_unnamed_runs_started_in_one_second_each_get_a_folder_of_their_own(workdir, attempt):
    won, refused = claim_at_once(None, claimants=4)
    try:
        assert refused == [] and len(won) == 4, refused
        names = sorted(path.name for path, _ in won)
        assert len(set(names)) == 4, names
        assert all(re.fullmatch(r"\d{8}-\d{6}-lstm(-\d)?", n) for n in names), names
        assert all(sorted(os.listdir(path)) == [INCOMPLETE, LOCK_FILE] for path, _ in won)
    finally:
        for _, lock in won:
            lock.release()


def test_a_run_being_replaced_with_force_is_not_the_newest_while_it_is_incomplete(workdir):
    from charlm.runs.folders import complete_run, resolve_run

    for name in ("a", "b"):
        path, lock = claim_run_folder(Config(runs_dir="runs", name=name))
        (path / "config.toml").write_text("format_version = 1\n")
        complete_run(path)
        lock.release()
    assert os.readlink("runs/latest") == "b"
    path, lock = claim_run_folder(Config(runs_dir="runs", name="b"), force=True)
    try:
        assert sorted(p.name for p in path.iterdir()) == [INCOMPLETE, LOCK_FILE]
        assert str(resolve_run(None)) == "runs/a"  # latest still names b, which is incomplete
    finally:
        lock.release()


def start(args, workdir, pause_at):
    """``charlm *args`` in a real process that stops (holding its lock) at ``pause_at``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CHARLM_PAUSE_AT": pause_at}
    proc = forked.start(args, cwd=workdir, env=env, stdout=forked.DEVNULL)
    for line in proc.stderr:
        if line.startswith("CHARLM_PAUSED"):
            return proc
    proc.kill()
    raise AssertionError(f"the trainer never paused (exit {proc.wait()})")


def stop(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def test_two_resumes_at_once_one_trains_the_other_says_who_and_touches_nothing(workdir, good):
    first = start(
        ["train", "--resume", "runs/good", "--steps", "30"], workdir, "checkpoint-written:1"
    )
    try:
        before = state(workdir)  # the paused trainer changes nothing meanwhile
        error_line(
            run_cli("train", "--resume", "runs/good", "--steps", "30"),
            f"runs/good is being trained by process {first.pid}",
        )
        assert state(workdir) == before
    finally:
        stop(first)
    ran = run_cli("train", "--resume", "runs/good", "--steps", "30")
    assert ran.exit_code == 0, ran.output
    with open(good / "metrics.csv", newline="") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == sorted(set(steps)) and steps[-1] == 30  # one row a step: one writer


def test_two_trainings_of_one_new_name_one_trains_and_a_killed_one_is_incomplete(workdir, good):
    first = start(
        ["train", CORPUS, "--name", "same", "--steps=5", *FLAGS], workdir, "checkpoint-written:1"
    )
    try:
        before = state(workdir)
        error_line(train(name="same"), f"runs/same is being trained by process {first.pid}")
        assert state(workdir) == before
        listed = run_cli("runs").stdout
        assert f"incomplete: process {first.pid} trains it" in listed
    finally:
        stop(first)
    listed = run_cli("runs").stdout
    assert "incomplete: its training stopped before its first checkpoint" in listed
    assert "good (latest)" in listed
    assert evaluated_run() == "runs/good"  # the incomplete run is never the newest
    error_line(
        run_cli("eval", "--run", "runs/same"), "runs/same is incomplete", "--resume runs/same"
    )
    ran = train(name="same")  # a retry with the same name replaces what the killed one left
    assert ran.exit_code == 0, ran.output
    assert "replacing runs/same: its training stopped before its first checkpoint" in ran.stderr
    assert os.readlink(workdir / "runs/latest") == "same"


# -- resume without checkpoints ------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_resuming_a_run_whose_checkpoints_are_gone_refuses_instead_of_retraining(
    workdir, good, damage
):
    checkpoints = good / "checkpoints"
    for path in checkpoints.iterdir():
        shutil.rmtree(path)
    if damage == "deleted":
        checkpoints.rmdir()
    before = state(workdir)
    line = error_line(
        run_cli("train", "--resume", "runs/good", "--steps", "30"),
        "runs/good has no checkpoint to resume from",
        "best.keras",
        "metrics.csv",
    )
    assert "--force" in line and "--name" in line
    assert state(workdir) == before
    assert (good / LOCK_FILE).read_text() == ""  # released, and no pid left in it


def test_a_run_under_a_folder_whose_name_holds_line_breaks_and_controls_reads_back(workdir):
    # the case: a newline in --runs-dir went raw into config.toml's header comment,
    # which then was no TOML; the run trained and could not be sampled or listed
    runs = "my runs\nété 😀\x07\x7f\ttab\rend"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    code, _, err = run_cli(
        "train", str(CORPORA / "tinyshakespeare.txt"), "--runs-dir", runs, "--name", "r",
        "--steps", "3", "--max-chars", "3000", *flags, cwd=workdir,
    )  # fmt: skip
    assert code == 0, err
    run = workdir / runs / "r"
    assert Config.from_toml_text((run / "config.toml").read_text(encoding="utf-8")).steps == 3
    code, out, err = run_cli("runs", "--runs-dir", runs, cwd=workdir)
    assert code == 0 and "broken" not in out + err, out + err
    code, out, err = run_cli("sample", "--run", str(run), "--length", "5", "--prefix", "a")
    assert code == 0 and out.startswith("a"), err
