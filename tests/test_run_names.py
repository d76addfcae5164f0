"""One rule names a run for every command (``--run``, ``--resume``, ``--init-from``,
``info RUN``, ``export RUN``, ``serve RUN``): a folder, or a run's name under ``--runs-dir``;
a mistyped name gets the same line everywhere, with the run likeliest meant and the runs
there."""

import pytest
from conftest import CORPORA, copy_run, run_cli


@pytest.fixture
def named(workdir, shared_run):
    """A run named ``shakespeare`` in workdir/runs (the newest), and another, ``tang``."""
    copy_run(shared_run("lstm"), workdir / "runs" / "tang")
    copy_run(shared_run("lstm"), workdir / "runs" / "shakespeare")
    (workdir / "runs/latest").symlink_to("shakespeare")
    (workdir / "more.txt").write_text((CORPORA / "tinyshakespeare.txt").read_text()[:3000])
    return workdir


FACES = [
    ("sample", "--run", "{}", "--length", "5", "--seed", "1"),
    ("eval", "--run", "{}", "--batch-size", "8"),
    ("info", "{}"),
    ("info", "--run", "{}"),
    ("export", "--run", "{}", "--out", "out"),  # (RUN alone: tests/test_export.py)
    ("train", "--resume", "{}", "--steps", "1"),
    (
        "train",
        "more.txt",
        "--init-from",
        "{}",
        "--steps",
        "1",
        "--name",
        "grown",
        "--batch-size",
        "4",
        "--seq-len",
        "32",
    ),
]


@pytest.mark.parametrize("face", FACES, ids=[" ".join(f[:2]) for f in FACES])
def test_a_bare_name_is_the_run_of_that_name_under_the_runs_folder(named, face):
    code, _, err = run_cli(*(a.format("shakespeare") for a in face), cwd=named)
    assert code == 0, err


@pytest.mark.parametrize(
    "face", FACES + [("serve", "{}")], ids=[" ".join(f[:2]) for f in FACES] + ["serve"]
)
def test_a_mistyped_name_says_which_run_was_likely_meant_and_lists_them(named, face):
    code, _, err = run_cli(*(a.format("shakespear") for a in face), cwd=named)
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 1 and len(lines) == 1, err
    assert "shakespear: no such run folder, here or under runs/" in lines[0]
    assert "did you mean runs/shakespeare?" in lines[0]
    assert "the runs under runs/: shakespeare, tang" in lines[0] or (
        "the runs under runs/: tang, shakespeare" in lines[0]
    )


def test_run_and_the_argument_together_must_name_one_run(named):
    code, _, err = run_cli("info", "shakespeare", "--run", "tang", cwd=named)
    assert code == 2 and "name the run once" in err
