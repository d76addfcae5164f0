"""`charlm runs`, `charlm info`, `charlm sample --novelty` and shell completion.

Three tiny runs are trained once (two finished, one stopped by a crash after its checkpoints);
the commands run in-process through click's test runner (conftest's run_cli), completion too,
with click's environment variable.
"""

import json
import math

import pytest
from conftest import CORPORA, TINY, run_cli, tree_snapshot

import charlm
from charlm.novelty.file import INDEX_FILE
from charlm.training.trainer import Callback

CORPUS_CHARS = 20_000


class Crash(Exception):
    pass


class CrashAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer, loss, grad_norm, state):
        if trainer.step == self.step:
            raise Crash


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{name: run folder} of three runs under one runs folder, trained in the order a, b, c."""
    work = tmp_path_factory.mktemp("runs-cli")
    corpus = work / "corpus.txt"
    corpus.write_text((CORPORA / "tinyshakespeare.txt").read_text()[:CORPUS_CHARS])
    common = dict(
        TINY,
        runs_dir=str(work / "runs"),
        progress=False,
        log=lambda m: None,
        eval_every=10,
        eval_chars=1000,
    )
    charlm.train([corpus], name="a", steps=20, **common)
    charlm.train(
        [corpus], **{**common, "name": "b", "model": "gru", "layers": 2, "units": 24, "steps": 10}
    )
    with pytest.raises(Crash):
        charlm.train([corpus], name="c", steps=100, callbacks=[CrashAt(15)], **common)
    return {
        "work": work,
        "corpus": corpus,
        "runs": work / "runs",
        **{n: work / "runs" / n for n in "abc"},
    }


def cli(*args):
    result = run_cli(*args)
    assert "Traceback" not in result.output
    return result


def refused(result, *words, code=1):
    """The one-line message of a clean refusal."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: ")
    for word in words:
        assert word in lines[-1]
    return lines[-1]


# -- charlm runs -----------------------------------------------------------------------------------


def test_runs_lists_one_row_per_run_newest_first(runs):
    result = cli("runs", "--runs-dir", runs["runs"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "MODEL", "PARAMS", "STEPS"]
    assert [row.split()[0] for row in rows] == ["c", "b", "a"]
    assert rows[0].split()[1] == "(latest)"


def test_a_run_row_shows_model_size_parameters_steps_time_best_loss_and_status(runs):
    row = next(
        r
        for r in json.loads(cli("runs", "--runs-dir", runs["runs"], "--json").stdout)
        if r["name"] == "a"
    )
    metrics = charlm.load(runs["a"]).metrics()
    best = min(float(m["val_loss"]) for m in metrics)
    assert row["size"] == f"lstm 1x{TINY['units']}"
    assert row["parameters"] == charlm.load(runs["a"]).model.count_params()
    assert row["steps"] == 20 and row["status"] == "finished"
    assert row["seconds_trained"] == pytest.approx(float(metrics[-1]["wall_time"]))
    assert row["best_val_loss"] == pytest.approx(best)
    assert row["best_bits_per_char"] == pytest.approx(best / math.log(2))
    table = cli("runs", "--runs-dir", runs["runs"]).stdout
    line = next(t for t in table.splitlines() if t.startswith("a "))
    assert f"{row['parameters']:,}" in line and f"{best:.4f}" in line and "finished" in line


def test_a_run_that_stopped_before_its_limit_is_resumable(runs):
    rows = {
        r["name"]: r for r in json.loads(cli("runs", "--runs-dir", runs["runs"], "--json").stdout)
    }
    assert rows["c"]["status"] == "resumable" and rows["c"]["steps"] == 10
    assert rows["b"]["status"] == "finished" and rows["b"]["size"] == "gru 2x24"


def test_runs_json_is_a_list_of_plain_objects_for_scripts(runs):
    rows = json.loads(cli("runs", "--runs-dir", runs["runs"], "--json").stdout)
    assert isinstance(rows, list) and len(rows) == 3
    assert {
        "name",
        "path",
        "model",
        "size",
        "parameters",
        "steps",
        "seconds_trained",
        "best_val_loss",
        "best_bits_per_char",
        "status",
        "started",
        "latest",
    } <= set(rows[0])


def test_broken_run_folders_are_listed_with_a_note_instead_of_a_crash(runs, tmp_path):
    import shutil

    shutil.copytree(runs["runs"] / "a", tmp_path / "good")
    (tmp_path / "stray").mkdir()
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "config.toml").write_text("format_version = 1\nunits = [\n")
    result = cli("runs", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "finished" in lines["good"]
    assert "broken: not a charlm run (no config.toml)" in lines["stray"]
    assert "broken:" in lines["garbled"] and "TOML syntax error" in lines["garbled"]


def test_runs_in_an_empty_folder_says_so_and_json_is_an_empty_list(tmp_path):
    result = cli("runs", "--runs-dir", tmp_path)
    assert result.exit_code == 0 and result.stdout == ""
    assert "no runs in" in result.stderr
    assert json.loads(cli("runs", "--runs-dir", tmp_path, "--json").stdout) == []


def test_runs_of_a_missing_folder_is_one_error_line(tmp_path):
    refused(cli("runs", "--runs-dir", tmp_path / "nope"), "no such folder of runs")


# -- charlm info -----------------------------------------------------------------------------------


def test_info_shows_settings_vocabulary_corpus_and_the_last_metrics(runs):
    result = cli("info", runs["a"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    corpus = json.loads((runs["a"] / "corpus.json").read_text())
    vocab = charlm.load(runs["a"]).vocab
    assert "status:       finished" in out
    assert f"  units = {TINY['units']}" in out and '  model = "lstm"' in out
    assert f"{corpus['train_chars']:,} training characters, sha256 {corpus['train_sha256']}" in out
    assert f"vocabulary:   {len(vocab) - 1} characters + <unk>" in out
    assert "most frequent in the held-out text (val.txt" in out and '" " ' in out
    assert "the last 2 of 2 rows of metrics.csv" in out


def test_info_json_counts_the_most_frequent_held_out_characters(runs):
    from collections import Counter

    info = json.loads(cli("info", runs["b"], "--json").stdout)
    val = (runs["b"] / "val.txt").read_text()
    char, share = info["vocabulary"]["most_frequent"][0]
    assert (char, share) == (
        Counter(val).most_common(1)[0][0],
        pytest.approx(Counter(val).most_common(1)[0][1] / len(val)),
    )
    assert info["settings"]["model"] == "gru" and info["corpus"]["val_chars"] == len(val)
    assert [int(r["step"]) for r in info["metrics"]["last"]] == [10]


def test_info_without_a_run_describes_the_newest(runs, monkeypatch):
    monkeypatch.chdir(runs["work"])
    result = cli("info")
    assert result.exit_code == 0 and "run:          runs/c" in result.stdout


def test_a_folder_of_runs_given_as_the_run_means_its_newest_run(runs):
    """`train --runs-dir X` then `sample --run X`: X holds runs, so its newest is used."""
    result = cli("info", runs["runs"])
    assert result.exit_code == 0 and f"run:          {runs['c']}" in result.stdout
    result = cli("sample", "--run", runs["runs"], "--length", "5", "--seed", "1")
    assert result.exit_code == 0 and len(result.stdout) > 5


def test_info_of_a_missing_or_broken_run_is_one_error_line(runs, tmp_path):
    refused(cli("info", tmp_path / "nope"), "no such run folder")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.toml").write_text("units = 3\n")
    refused(cli("info", tmp_path / "bad"), "no format_version line")


# -- charlm sample --novelty -----------------------------------------------------------------------


def test_novelty_reports_the_longest_copy_and_the_copied_20_gram_share(runs, monkeypatch):
    monkeypatch.chdir(runs["work"])
    result = cli(
        "sample",
        "--run",
        runs["a"],
        "--prefix",
        "ROMEO:",
        "--length",
        "120",
        "--seed",
        "1",
        "--novelty",
    )
    assert result.exit_code == 0, result.output
    sample = result.stdout.rstrip("\n")
    assert sample.startswith("ROMEO:") and len(sample) == 126
    line = next(t for t in result.stderr.splitlines() if t.startswith("novelty"))
    assert "(the 120 characters after the prefix): longest copy" in line
    assert "of 101 20-grams copied" in line
    from charlm.novelty.index import NoveltyIndex

    expected = NoveltyIndex(runs["corpus"].read_text()[:18_000]).report(sample[6:])
    assert f"longest copy {expected['longest_match']} chars" in line
    assert (runs["a"] / INDEX_FILE).exists()  # cached for the next time


def copy_run(source, dest, corpus_path: str, keep_index: bool = False):
    """A copy of run folder ``source`` at ``dest`` whose settings name ``corpus_path``."""
    import re
    import shutil

    ignore = None if keep_index else shutil.ignore_patterns(INDEX_FILE)
    shutil.copytree(source, dest, ignore=ignore)
    config = dest / "config.toml"
    config.write_text(
        re.sub(r"(?m)^paths = .*$", f"paths = {json.dumps([corpus_path])}", config.read_text())
    )


def test_novelty_uses_the_cached_index_even_when_the_corpus_has_moved(runs, monkeypatch, tmp_path):
    monkeypatch.chdir(runs["work"])
    assert cli("sample", "--run", runs["b"], "--length", "5", "--novelty").exit_code == 0
    copy_run(runs["b"], tmp_path / "b", "moved-away.txt", keep_index=True)
    monkeypatch.chdir(tmp_path)
    result = cli("sample", "--run", "b", "--length", "30", "--novelty", "--seed", "2")
    assert result.exit_code == 0, result.output
    assert "longest copy" in result.stderr


def test_novelty_refuses_a_corpus_that_changed_and_writes_nothing(runs, tmp_path, monkeypatch):
    copy_run(runs["a"], tmp_path / "a", "corpus.txt")
    (tmp_path / "corpus.txt").write_text(runs["corpus"].read_text().replace("e", "E"))
    monkeypatch.chdir(tmp_path)
    before = tree_snapshot(tmp_path)
    message = refused(cli("sample", "--run", "a", "--novelty"), "sha256 differs")
    assert "corpus.txt" in message
    assert tree_snapshot(tmp_path) == before


def test_novelty_without_the_corpus_is_one_error_line(runs, tmp_path, monkeypatch):
    copy_run(runs["a"], tmp_path / "a", "corpus.txt")
    monkeypatch.chdir(tmp_path)
    before = tree_snapshot(tmp_path)
    refused(cli("sample", "--run", "a", "--novelty"), "needs the training text", "corpus.txt")
    assert tree_snapshot(tmp_path) == before


def test_novelty_refuses_a_corpus_too_big_for_the_memory_before_reading_it(
    runs, tmp_path, monkeypatch
):
    copy_run(runs["a"], tmp_path / "a", "corpus.txt")  # no corpus.txt here: never read
    info = json.loads((tmp_path / "a" / "corpus.json").read_text())
    (tmp_path / "a" / "corpus.json").write_text(json.dumps({**info, "train_chars": 10**13}))
    monkeypatch.chdir(tmp_path)
    before = tree_snapshot(tmp_path)
    refused(
        cli("sample", "--run", "a", "--novelty"),
        "10,000,000,000,000 characters",
        "needs about",
        "GiB is available",
    )
    assert tree_snapshot(tmp_path) == before


def test_novelty_of_a_run_trained_on_stdin_is_one_error_line(runs, tmp_path, monkeypatch):
    copy_run(runs["a"], tmp_path / "a", "-")
    monkeypatch.chdir(tmp_path)
    refused(cli("sample", "--run", "a", "--novelty"), "trained on standard input")


# -- shell completion ------------------------------------------------------------------------------


def test_bash_completion_script_comes_from_clicks_environment_variable(tmp_path):
    code, out, err = run_cli(cwd=tmp_path, env={"_CHARLM_COMPLETE": "bash_source"})
    assert code == 0, err
    assert (
        "_charlm_completion()" in out and "complete -o nosort -F _charlm_completion charlm" in out
    )


def test_completion_offers_subcommands_and_run_folders(runs):
    def complete(*words):
        env = {
            "_CHARLM_COMPLETE": "bash_complete",
            "COMP_WORDS": " ".join(("charlm",) + words),
            "COMP_CWORD": str(len(words)),
        }
        code, out, err = run_cli(cwd=runs["work"], env=env)
        assert code == 0, err
        return out.split()

    assert "plain,runs" in complete("ru")
    assert complete("sample", "--run", "") == ["plain,runs/a", "plain,runs/b", "plain,runs/c"]
    assert complete("info", "runs/b") == ["plain,runs/b"]
    assert complete("sample", "--run", "elsewhere/") == ["dir,elsewhere/"]
