"""Whatever a path holds, charlm writes files it can read back and says one line about it.

A folder of runs and a run whose names hold every character that breaks a naive file format
(a newline, a tab, quotes, a backslash, TOML's and CSV's own signs, DEL and an escape, an
emoji) are trained, listed, described, sampled, resumed and exported; each file of the run is
read back by its own format's reader. A name with bytes that are not UTF-8 is refused in one
line before anything is written. An error that quotes such a path is still one line.
"""

import csv
import io
import json
import os

import pytest
import tomllib
from conftest import TINY, copy_run, run_cli, tree_snapshot

TEXT = "the quick brown fox jumps over the lazy dog. " * 60
NASTY = "\n\t\"'\\#=,[]{} é😀\x1b\x7f"  # each one broke, or could break, a file charlm writes
TINY_FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]


def train(runs_dir: str, name: str, *more: str):
    return run_cli(
        "train", "c.txt", "--runs-dir", runs_dir, "--name", name, *TINY_FLAGS, "--steps", "3", *more
    )


def test_a_run_named_with_every_nasty_character_writes_files_that_read_back(workdir):
    (workdir / "c.txt").write_text(TEXT)
    runs_dir, name = f"my runs{NASTY}", "run \"'#=,[]{} é😀x"  # a name: no control characters
    ran = train(runs_dir, name)
    assert ran.exit_code == 0, ran.output
    run = workdir / runs_dir / name
    config = tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))
    assert (config["name"], config["runs_dir"]) == (name, runs_dir)
    for line in (run / "config.toml").read_text(encoding="utf-8").splitlines():
        assert line.isprintable(), repr(line)  # the header comment quotes the path escaped
    json.loads((run / "corpus.json").read_text(encoding="utf-8"))
    rows = list(csv.DictReader(io.StringIO((run / "metrics.csv").read_text(encoding="utf-8"))))
    assert [r["step"] for r in rows][-1] == "3"
    listed = run_cli("runs", "--runs-dir", runs_dir, "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert row["name"] == name and row["status"] == "finished", row
    for args in (
        ["info", str(run)],
        ["eval", "--run", str(run), "--perplexity"],
        ["sample", "--run", str(run), "--length", "5", "--prefix", "the"],
        ["train", "--resume", str(run), "--steps", "4"],
        ["export", str(run), "--out", f"{run}/out{NASTY}", "--format", "savedmodel"],
    ):
        ran = run_cli(*args)
        assert ran.exit_code == 0, (args, ran.output)
    assert [r["step"] for r in csv.DictReader((run / "metrics.csv").open())][-1] == "4"
    assert (run / f"out{NASTY}" / "saved_model.pb").is_file()  # where it was asked, whole


@pytest.mark.parametrize("where", ["runs_dir", "name"])
def test_a_name_that_is_not_utf8_is_refused_in_one_line_before_anything_is_written(workdir, where):
    (workdir / "c.txt").write_text(TEXT)
    odd = os.fsdecode(b"caf\xe9")  # Latin-1 bytes: Python's stand-in for \xe9 in a str
    before = tree_snapshot(workdir)
    ran = train(odd, "r") if where == "runs_dir" else train("runs", odd)
    assert ran.exit_code == 1, ran.output
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and "caf\\" in lines[0] and "must be UTF-8" in lines[0], ran.stderr
    assert tree_snapshot(workdir) == before and sorted(os.listdir(workdir)) == ["c.txt"]


def test_an_error_that_quotes_a_path_with_a_newline_is_one_line(workdir):
    for args in (
        ["sample", "--run", "no\nsuch run"],
        ["train", "no\nsuch.txt"],
        ["train", "--resume", "no\nsuch"],
    ):
        ran = run_cli(*args)
        assert ran.exit_code in (1, 2), ran.output
        assert "Traceback" not in ran.stderr
        (line,) = ran.stderr.strip().splitlines()[-1:]
        assert "no\\nsuch" in line and line.startswith("Error: "), ran.stderr
        if ran.exit_code == 1:
            assert len(ran.stderr.strip().splitlines()) == 1, ran.stderr


def test_a_latest_link_that_loops_breaks_no_command(workdir):
    (workdir / "c.txt").write_text(TEXT)
    assert train("runs", "good").exit_code == 0
    os.remove("runs/latest")
    os.symlink("latest", "runs/latest")  # a loop: latest -> latest
    listed = run_cli("runs")
    assert listed.exit_code == 0 and "good" in listed.stdout, listed.output
    for args in (["sample", "--length", "3"], ["train", "--resume", "--steps", "4"], ["info"]):
        ran = run_cli(*args)
        assert "Traceback" not in ran.output and ran.exit_code == 0, (args, ran.output)


# every class of path a user may give; each command either works with it or refuses it in one
# line, with no traceback and nothing half-written
PATH_CLASSES = {
    "empty": "",
    "dot": ".",
    "dotdot": "..",
    "newline": "a\nb",
    "control": "a\x01b",
    "long": "x" * 300,  # one name past the 255 bytes a file system takes
    "file-as-folder": "afile/sub",
    "missing-parents": "no/such/deep/folder",
    "symlink-loop": "loop/x",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny run, trained once for the module."""
    home = tmp_path_factory.mktemp("odd-paths")
    (home / "c.txt").write_text(TEXT)
    ran = run_cli("train", "c.txt", "--name", "r", *TINY_FLAGS, "--steps", "2", cwd=home)
    assert ran.exit_code == 0, ran.output
    return home / "runs" / "r"


@pytest.fixture
def odd_paths(workdir, tiny_run):
    """A working folder ``sub`` (so that ``..`` is this test's own folder) with a corpus, a
    copy of the run, a file named ``afile`` and a link ``loop`` to itself."""
    sub = workdir / "sub"
    sub.mkdir()
    (sub / "c.txt").write_text(TEXT)
    (sub / "afile").write_text("a file\n")
    os.symlink("loop", sub / "loop")
    copy_run(tiny_run, sub / "runs" / "r")
    return sub


def works_or_one_line(ran) -> bool:
    """True if it worked; else it must have refused in one line (False)."""
    assert "Traceback" not in ran.output, ran.output
    if ran.exit_code == 0:
        return True
    assert ran.exit_code in (1, 2), ran.output
    errors = [line for line in ran.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and ran.stderr.rstrip().endswith(errors[0]), ran.stderr
    return False


@pytest.mark.parametrize("case", list(PATH_CLASSES))
def test_every_class_of_path_works_or_is_one_line_in_every_command(odd_paths, case):
    path = PATH_CLASSES[case]
    run = str(odd_paths / "runs" / "r")
    train = ["train", "c.txt", *TINY_FLAGS, "--steps", "1", "--runs-dir", path]
    if works_or_one_line(run_cli(*train, cwd=odd_paths)):
        listed = run_cli("runs", "--runs-dir", path or ".", "--json", cwd=odd_paths)
        assert listed.exit_code == 0 and json.loads(listed.stdout), listed.output
    out = ["export", run, "--format", "savedmodel", "--out", path]
    if works_or_one_line(run_cli(*out, cwd=odd_paths)):
        assert (odd_paths / path / "saved_model.pb").is_file()
    works_or_one_line(run_cli("sample", "--run", run, "--prefix-file", path, cwd=odd_paths))
    works_or_one_line(run_cli("train", path, *TINY_FLAGS, "--steps", "1", cwd=odd_paths))
    works_or_one_line(run_cli("info", path, cwd=odd_paths))
    leftovers = [p for p in odd_paths.rglob("*") if ".tmp-" in p.name]
    assert not leftovers, leftovers
