"""Damaged run files and hostile disks: one ``Error:`` line that names the file and the way
out, exit status 1, no traceback, and no file changed.

Each row of :data:`CASES` damages a copy of one tiny run (trained once per session:
conftest's ``shared_run``), runs one command on it in this process (``run_cli``) and checks
the refusal the way tests/test_bad_input.py does (``refuses``: one line, the words, and every
file and folder under the working folder as it was). The mechanisms behind the rows: each
run file is read by one function that names it when damaged (charlm.runs.rundir
``read_run_file``), and the CLI's boundary (charlm.cli.common ``user_errors``) turns an
OSError or TensorFlow's resource errors into one line (charlm.errors). Read-only folders are
made with chmod (as root, the command runs without root's power to write past a file's mode)
and with a read-only mount, a full disk with a small tmpfs (both need root: skipped without
it).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess

import pytest
from conftest import CORPORA, copy_run, run_cli
from test_bad_input import TEXT, error_line, refuses


def append(name: str, data: bytes):
    def damage(run):
        with open(run / name, "ab") as f:
            f.write(data)

    return damage


def folder_instead(name: str):
    def damage(run):
        path = run / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        path.mkdir()

    return damage


def file_instead(name: str):
    def damage(run):
        shutil.rmtree(run / name)
        (run / name).write_text("not a folder\n")

    return damage


def replace_text(name: str, old: str, new: str):
    def damage(run):
        text = (run / name).read_text(encoding="utf-8")
        assert old in text
        (run / name).write_text(text.replace(old, new, 1), encoding="utf-8")

    return damage


def write(name: str, text: str):
    return lambda run: (run / name).write_text(text)


def first_step(name="metrics.csv"):
    """The first metrics row's step made text (``ten,``)."""

    def damage(run):
        lines = (run / name).read_text().splitlines(keepends=True)
        lines[1] = "ten," + lines[1].split(",", 1)[1]
        (run / name).write_text("".join(lines))

    return damage


RESUME = ["train", "--resume", "runs/r", "--steps", "25"]
INFO = ["info", "runs/r"]
EVAL = ["eval", "--run", "runs/r"]
SAMPLE = ["sample", "--run", "runs/r", "--length", "5"]
METRICS_WAY_OUT = "restore it, or move it aside"

# id: (model, command, damage, words the one line must hold)
CASES = {
    "metrics-not-utf8-info": (
        "lstm",
        INFO,
        append("metrics.csv", b"\xff\xfe\n"),
        ["runs/r/metrics.csv", "not UTF-8", METRICS_WAY_OUT],
    ),
    "metrics-not-utf8-resume": (
        "lstm",
        RESUME,
        append("metrics.csv", b"\xff\xfe\n"),
        ["runs/r/metrics.csv", "not UTF-8", METRICS_WAY_OUT],
    ),
    "metrics-step-not-a-number-info": (
        "lstm",
        INFO,
        first_step(),
        ["runs/r/metrics.csv", "row 2", "'ten' is not a whole number", METRICS_WAY_OUT],
    ),
    "metrics-step-not-a-number-resume": (
        "lstm",
        RESUME,
        first_step(),
        ["runs/r/metrics.csv", "'ten' is not a whole number", METRICS_WAY_OUT],
    ),
    "metrics-a-folder-info": (
        "lstm",
        INFO,
        folder_instead("metrics.csv"),
        ["runs/r/metrics.csv is a folder", METRICS_WAY_OUT],
    ),
    "metrics-a-folder-resume": (
        "lstm",
        RESUME,
        folder_instead("metrics.csv"),
        ["runs/r/metrics.csv is a folder", METRICS_WAY_OUT],
    ),
    "val-not-utf8-eval": (
        "lstm",
        EVAL,
        append("val.txt", b"\xff\xfe"),
        ["runs/r/val.txt", "not UTF-8", "charlm eval FILE"],
    ),
    "val-not-utf8-info": (
        "lstm",
        INFO,
        append("val.txt", b"\xff\xfe"),
        ["runs/r/val.txt", "not UTF-8", "charlm eval FILE"],
    ),
    "val-a-folder-eval": (
        "lstm",
        EVAL,
        folder_instead("val.txt"),
        ["runs/r/val.txt is a folder", "charlm eval FILE"],
    ),
    "val-a-folder-info": (
        "lstm",
        INFO,
        folder_instead("val.txt"),
        ["runs/r/val.txt is a folder", "charlm eval FILE"],
    ),
    "corpus-json-without-its-keys-info": (
        "lstm",
        INFO,
        write("corpus.json", '{"sources": []}\n'),
        ["runs/r/corpus.json", "no train_chars, val_chars, train_sha256, val_sha256"],
    ),
    "corpus-json-without-its-keys-resume": (
        "lstm",
        RESUME,
        write("corpus.json", '{"train_chars": 5}\n'),
        ["runs/r/corpus.json", "missing or corrupt", "no val_chars"],
    ),
    "checkpoints-a-file-resume": (
        "lstm",
        RESUME,
        file_instead("checkpoints"),
        ["runs/r/checkpoints is a file", "restore the folder, or start a new run"],
    ),
    "config-syntax-info": (
        "lstm",
        INFO,
        append("config.toml", b"units = = 3\n"),
        ["runs/r/config.toml", "TOML syntax error", "line"],
    ),
    "config-not-utf8-sample": (
        "lstm",
        SAMPLE,
        append("config.toml", b"# \xff\n"),
        ["runs/r/config.toml", "not UTF-8", "restore the file or retrain"],
    ),
    "config-a-folder-resume": (
        "lstm",
        RESUME,
        folder_instead("config.toml"),
        ["runs/r", "not a charlm run (no config.toml)"],
    ),
    "config-nan-temperature-resume": (
        "lstm",
        RESUME,
        replace_text("config.toml", "sample_temperature = 1.0", "sample_temperature = nan"),
        ["runs/r/config.toml, line ", "sample_temperature must be 0 (greedy) or more, not nan"],
    ),
    "scratch-config-model-too-big-sample": (
        "scratch-gru",
        SAMPLE,
        replace_text("config.toml", "units = 32", "units = 1000000000"),
        ["scratch-gru 1x1000000000 model", "needs about", "available", "retrain the run smaller"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_run_file_is_one_line_that_names_it(workdir, shared_run, case):
    model, command, damage, words = CASES[case]
    run = copy_run(shared_run(model), workdir / "runs" / "r")
    damage(run)
    refuses(run_cli, workdir, *command, words=words)


# -- the runs folder: in the way, unwritable, full ---------------------------------------------


def train_args(*args):
    """``charlm train corpus.txt`` of a tiny model, for a few steps."""
    tiny = ["--units", "32", "--layers", "1", "--seq-len", "16", "--batch-size", "8"]
    return ["train", "corpus.txt", "--steps", "20", "--eval-every", "10", *tiny, *args]


@pytest.mark.parametrize(
    "make, args, words",
    [
        (
            lambda w: (w / "runs").write_text("mine\n"),
            ["--runs-dir", "runs"],
            ["runs: File exists", "a file stands where a folder should be"],
        ),
        (
            lambda w: (w / "notes").write_text("mine\n"),
            ["--runs-dir", "notes/runs"],
            ["notes/runs", "Not a directory", "a part of the path is a file"],
        ),
        (
            lambda w: (w / "runs").mkdir(),
            ["--name", "n" * 300],
            ["File name too long", "use a shorter name"],
        ),
    ],
    ids=["runs-dir-is-a-file", "runs-dir-under-a-file", "name-too-long"],
)
def test_a_runs_folder_in_the_way_is_one_line_and_changes_nothing(workdir, make, args, words):
    (workdir / "corpus.txt").write_text(TEXT)
    make(workdir)
    refuses(run_cli, workdir, *train_args(*args), words=words)


def user_cli(charlm_cli):
    """The real `charlm` in a process without root's power to write past a file's mode."""
    return lambda *args, **kw: charlm_cli(*args, **kw, as_user=True)


def test_a_read_only_runs_folder_is_one_line(workdir, charlm_cli):
    (workdir / "corpus.txt").write_text(TEXT)
    (workdir / "runs").mkdir(mode=0o555)
    try:
        refuses(user_cli(charlm_cli), workdir, *train_args(), words=["runs", "Permission denied"])
    finally:
        (workdir / "runs").chmod(0o755)


def test_resuming_a_read_only_run_is_one_line(workdir, shared_run, charlm_cli):
    run = copy_run(shared_run("lstm"), workdir / "runs" / "r")
    for path in [run, *run.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        refuses(user_cli(charlm_cli), workdir, *RESUME, words=["runs/r", "Permission denied"])
    finally:
        for path in [run, *run.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


@contextlib.contextmanager
def mounted(folder, options: str):
    """A tmpfs at ``folder`` with mount ``options``; the test is skipped where mounting is not
    allowed (not root, or a container without the capability)."""
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_read_only_file_system_is_one_line(workdir):
    (workdir / "corpus.txt").write_text(TEXT)
    with mounted(workdir / "ro", "ro,size=1m"):
        refuses(
            run_cli,
            workdir,
            *train_args("--runs-dir", "ro/runs"),
            words=["ro/runs", "Read-only file system", "choose another folder"],
        )


@pytest.mark.parametrize("size", ["150k", "250k", "600k"])
def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(workdir, size):
    """Sizes at which the disk fills while saving a checkpoint (TensorFlow's SaveV2, which says
    so as a ResourceExhaustedError) or weights (Keras's zip writer): the progress lines of
    the steps trained, then one Error line."""
    shakespeare = (CORPORA / "tinyshakespeare.txt").read_text(encoding="utf-8")[:20_000]
    (workdir / "corpus.txt").write_text(shakespeare, encoding="utf-8")
    with mounted(workdir / "disk", f"size={size}") as disk:
        ran = run_cli(*train_args("--runs-dir", "disk/runs", "--name", "x"), cwd=workdir)
        lines = [line for line in ran.stderr.splitlines() if line.strip()]
        assert ran.exit_code == 1 and "Traceback" not in ran.stderr, ran.stderr
        assert [line for line in lines if line.startswith("Error:")] == lines[-1:], ran.stderr
        message = error_line(1, lines[-1], "No space left on device", "--resume")  # after progress
        assert "disk/runs/x/" in message
        assert [p.name for p in disk.rglob("*") if ".tmp" in p.name] == []
