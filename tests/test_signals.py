"""SIGINT and SIGTERM stop ``sample`` and ``export`` within 2 s at any moment, leaving nothing.

Each command is signalled at several moments: while it loads the run, and in its longest part
(generating a huge length; writing the export, paused there by the ``export-written`` hook).
It must end within 2 s (SIGINT with status 130, SIGTERM by the signal itself, as a process
that had not caught it), print no traceback and leave no temporary file or half export.
``train`` is swept with SIGKILL and SIGINT in test_resume_kill.py, encoding in test_idfile.py,
``serve`` in test_serve_signals.py.
"""

import os
import signal
import time

import forked
import pytest
from conftest import copy_run

STATUS = {signal.SIGINT: 130, signal.SIGTERM: -signal.SIGTERM}
SIGNALS = [signal.SIGINT, signal.SIGTERM]


@pytest.fixture
def run(workdir, shared_run):
    return copy_run(shared_run("lstm"), workdir / "runs" / "r")


def signalled(args, workdir, signum, moment, env=None):
    """Start ``charlm *args``; send ``signum`` after ``moment`` seconds, or when its stdout
    gives a first line (``"output"``), or its stderr says CHARLM_PAUSED (``"paused"``); the
    seconds from the signal to its end, its exit status and its stderr."""
    process = forked.start(args, cwd=workdir, env={**os.environ, **(env or {})})
    try:
        if moment == "output":
            process.stdout.read(1)
        elif moment == "paused":
            for line in process.stderr:
                if line.startswith("CHARLM_PAUSED"):
                    break
        else:
            time.sleep(moment)
        assert process.poll() is None, process.stderr.read()
        sent = time.monotonic()
        process.send_signal(signum)
        process.wait(timeout=30)
        took = time.monotonic() - sent
        return took, process.returncode, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    "signum, moment",
    [(signal.SIGINT, 0.3), (signal.SIGINT, "output"), (signal.SIGTERM, "output")],
)
def test_a_signal_stops_sample_of_a_huge_length_within_2_s(workdir, run, signum, moment):
    args = ["sample", "--run", str(run), "--length", "100000000", "--seed", "1"]
    took, code, err = signalled(args, workdir, signum, moment)
    assert code == STATUS[signum] and "Traceback" not in err, (code, err)
    assert took < 2.0, took


@pytest.mark.parametrize(
    "signum, moment",
    [(signal.SIGTERM, 0.3), (signal.SIGINT, "paused"), (signal.SIGTERM, "paused")],
)
def test_a_signal_stops_export_within_2_s_and_leaves_no_part_of_it(workdir, run, signum, moment):
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    args = ["export", str(run), "--format", "savedmodel"]
    env = {"CHARLM_PAUSE_AT": "export-written"}
    took, code, err = signalled(args, workdir, signum, moment, env=env)
    assert code == STATUS[signum] and "Traceback" not in err, (code, err)
    assert took < 2.0, took
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # no export, no temp


@pytest.mark.parametrize("signum, moment", [(signal.SIGTERM, 0.3), (signal.SIGINT, 1.0)])
def test_a_signal_stops_eval_within_2_s(workdir, run, signum, moment):
    text = "To be, or not to be, that is the question.\n" * 200_000  # seconds to score
    (workdir / "big.txt").write_text(text)
    args = ["eval", "--run", str(run), "--perplexity", "big.txt"]
    took, code, err = signalled(args, workdir, signum, moment)
    assert code == STATUS[signum] and "Traceback" not in err, (code, err)
    assert took < 2.0, took


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_while_the_recipe_measures_leaves_no_run_and_no_temporary_file(workdir, signum):
    (workdir / "c.txt").write_text("To be, or not to be, that is the question.\n" * 2_000)
    args = ["train", "c.txt", "--time-budget", "30s"]
    took, code, err = signalled(args, workdir, signum, 0.8)  # encoded; measuring speeds
    assert code == STATUS[signum] and "Traceback" not in err, (code, err)
    assert took < 2.0, took
    assert not (workdir / "runs").exists() or not os.listdir(workdir / "runs"), os.listdir(
        workdir / "runs"
    )
