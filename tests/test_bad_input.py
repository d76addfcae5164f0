"""Bad input: one clear line, a non-zero exit, no traceback, nothing lost.

Every case runs the real ``charlm`` command and checks that the last line of stderr is
``Error: ...`` naming the problem and the way out, and that no file under the working folder
changed (a bad corpus or option creates no run folder at all). Errors found before TensorFlow
loads run in a subprocess where importing TensorFlow fails (cheap: no TensorFlow); the rest run
in this process (``run_cli``), but for one that shows a refusal stays one line in a fresh
process after TensorFlow has loaded.
"""

import gzip
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import CONFIGS, copy_run, run_cli, tree_snapshot

TINY = CONFIGS / "tiny.toml"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
ELF = b"\x7fELF\x02\x01\x01" + bytes(2000)  # the head of a .so
LATIN1_CAFE = "café".encode("latin-1")  # "caf" then the byte 0xE9, invalid as UTF-8
TEXT = "To be, or not to be, that is the question.\n" * 40  # 1,720 characters


def error_line(code, err, *words, usage=False):
    """Assert a clean refusal; return the one-line message (without ``Error: ``)."""
    assert code == (2 if usage else 1), err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), err
    if not usage:  # no TensorFlow start-up chatter or log lines around it either
        assert len(lines) == 1, err
    message = lines[-1][len("Error: ") :]
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    return message


def refuses(charlm, workdir, *args, words=(), usage=False, env=None):
    """Run ``charlm *args`` in workdir (``charlm``: the charlm_cli fixture, a subprocess, or
    run_cli); it must refuse with ``words`` and change no file."""
    before = tree_snapshot(workdir), folders_and_links(workdir)
    code, _, err = charlm(*args, cwd=workdir, env=env)
    message = error_line(code, err, *words, usage=usage)
    assert (tree_snapshot(workdir), folders_and_links(workdir)) == before, f"changed: {message}"
    return message


def refuses_to_train(charlm, workdir, *args, words, corpus=None, env=None):
    """``charlm train CORPUS *args`` in workdir must refuse as :func:`refuses` checks, and make
    no run folder. CORPUS is ``corpus`` (already in workdir) or, by default, corpus.txt
    written here with :data:`TEXT`."""
    if corpus is None:
        corpus = "corpus.txt"
        (workdir / corpus).write_text(TEXT)
    refuses(charlm, workdir, "train", corpus, *args, words=words, env=env)
    assert not (workdir / "runs").exists()


def folders_and_links(path):
    """Every folder, and where each symlink (runs/latest) points."""
    return sorted(
        (str(p), os.readlink(p) if p.is_symlink() else None)
        for p in path.rglob("*")
        if p.is_dir() or p.is_symlink()
    )


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory):
    """An environment in which importing TensorFlow fails: for errors found before it loads."""
    fake = tmp_path_factory.mktemp("no-tf")
    (fake / "tensorflow").mkdir()
    (fake / "tensorflow/__init__.py").write_text(
        "raise ImportError('TensorFlow was imported before the error was found')\n"
    )
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")]))}


# -- options: checked before TensorFlow loads ---------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (["--temperature", "-0.5"], ["--temperature", "0 (greedy) or more", "-0.5"]),
        (["--temperature", "nan"], ["--temperature", "0 (greedy) or more", "nan"]),
        (["--temperature", "inf"], ["--temperature", "0 (greedy) or more", "inf"]),
        (["--top-p", "0"], ["--top-p", "(0, 1]"]),
        (["--top-p", "1.5"], ["--top-p", "(0, 1]"]),
        (["--top-k", "-2"], ["--top-k", "0 or -1 (off) or a whole number up to 2147483647"]),
        (["--top-k", str(2**31)], ["--top-k", "up to 2147483647", str(2**31)]),
        (["--length", "-1"], ["--length", "whole number from 0"]),
        (["--greedy", "--length", "-5"], ["--length", "whole number from 0"]),
        (["--seed", "-1"], ["--seed", "from 0 to 2**63-1", "-1"]),
        (["--seed", str(2**63)], ["--seed", "from 0 to 2**63-1", str(2**63)]),
        (["--stop", ""], ["--stop", "non-empty text"]),
        (["--stop", "END", "--stop", ""], ["--stop", "non-empty text"]),
        (["--num-samples", "0"], ["--num-samples", "at least 1"]),
        (["--min-p", "1"], ["--min-p", "[0, 1)"]),
        (["--repetition-penalty", "0"], ["--repetition-penalty", "more than 0"]),
        (["--presence-penalty", "3"], ["--presence-penalty", "from -2 to 2"]),
    ],
)
def test_bad_sampling_options_are_refused(workdir, charlm_cli, no_tensorflow, args, words):
    refuses(charlm_cli, workdir, "sample", *args, words=words, env=no_tensorflow)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--stop", "a\\q"], ["--stop", "starts no escape", "write \\\\ for a backslash"]),
        (["--prefix", "end\\"], ["--prefix", "starts no escape"]),
    ],
)
def test_a_backslash_that_starts_no_escape_is_a_usage_error(
    workdir, charlm_cli, no_tensorflow, args, words
):
    refuses(charlm_cli, workdir, "sample", *args, words=words, env=no_tensorflow, usage=True)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--seq-len", "0"], ["--seq-len", "at least 1"]),
        (["--batch-size", "-2"], ["--batch-size", "at least 1"]),
        (["--val-fraction", "1"], ["--val-fraction", "[0, 1)"]),
        (["--val-fraction", "-0.1"], ["--val-fraction", "[0, 1)"]),
        (["--time-budget", "ten minutes"], ["--time-budget", "ten minutes", "90s, 10m or 1h30m"]),
        (
            ["--model", "scratch-gru", "--precision", "mixed_bfloat16"],
            ["precision mixed_bfloat16", "keras models", "drop"],
        ),
        (["--sample-temperature", "-1"], ["--sample-temperature", "0 (greedy) or more"]),
        (["--sample-temperature", "nan"], ["--sample-temperature", "0 (greedy) or more", "nan"]),
        (["--sample-temperature", "inf"], ["--sample-temperature", "0 (greedy) or more", "inf"]),
        (["--sample-prefix", "", "--sample-every", "5"], ["--sample-prefix must not be empty"]),
        (["--name", "a\nb"], ["--name must be a plain folder name, not 'a\\nb'", "control"]),
        (["--name", "latest"], ["--name must be a plain folder name", "not latest"]),
        (["--seed", "-1"], ["--seed", "from 0 to 2**63-1"]),
        (["--seed", str(2**63)], ["--seed", "from 0 to 2**63-1", str(2**63)]),
        (["--dropout", "nan"], ["--dropout", "[0, 1)", "nan"]),
        (["--lr", "inf"], ["--lr", "positive number", "inf"]),
        (["--clip-norm", "nan"], ["--clip-norm", "0 (off) or positive", "nan"]),
    ],
)
def test_bad_training_options_are_refused_and_create_no_run(
    workdir, charlm_cli, no_tensorflow, args, words
):
    refuses_to_train(charlm_cli, workdir, "--config", TINY, *args, words=words, env=no_tensorflow)


def test_a_model_too_big_for_the_machine_is_refused_before_it_is_built(workdir):
    refuses_to_train(
        run_cli,
        workdir,
        "--config",
        TINY,
        "--units",
        "1000000000",
        words=["lstm 1x1000000000 model", "needs about", "available", "fewer --units"],
    )


@pytest.mark.parametrize("model", ["lstm", "gpt"])
def test_the_largest_seed_trains(workdir, model):
    (workdir / "corpus.txt").write_text(TEXT)
    code, _, err = run_cli(
        "train",
        "corpus.txt",
        "--config",
        TINY,
        "--model",
        model,
        "--units",
        "8",
        "--steps",
        "1",
        "--seed",
        str(2**63 - 1),
        cwd=workdir,
    )
    assert code == 0, err
    assert "seed = 9223372036854775807" in (workdir / "runs/latest/config.toml").read_text()


def test_a_click_usage_error_exits_2_with_one_error_line(workdir, charlm_cli, no_tensorflow):
    refuses(
        charlm_cli,
        workdir,
        "eval",
        "--seq-len",
        "0",
        words=["--seq-len", "x>=1"],
        usage=True,
        env=no_tensorflow,
    )


# -- configs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "toml, words",
    [
        ("seq_lne = 50\n", ["bad.toml, line 1: unknown key 'seq_lne'", "did you mean 'seq_len'"]),
        ("colour = 1\n", ["bad.toml", "unknown key 'colour'", "--help"]),
        ('units = "many"\n', ["bad.toml, line 1: units must be an integer, not 'many'"]),
        (
            'model = "gru"\nunits = = 3\n',
            ["bad.toml", "TOML syntax error", "line 2, column", "fix it"],
        ),
        ("seq_len = 0\n", ["bad.toml, line 1: seq_len must be at least 1, not 0"]),
        (
            "sample_temperature = nan\n",
            ["bad.toml, line 1: sample_temperature must be 0 (greedy) or more, not nan"],
        ),
        (
            'sample_every = 5\nsample_prefixes = ["ROMEO:", ""]\n',
            ["bad.toml, line 2: sample_prefixes must not be empty"],
        ),
        ("lr = inf\n", ["bad.toml, line 1: lr must be a positive number, not inf"]),
        (
            "min_lr_fraction = -inf\n",
            ["bad.toml, line 1: min_lr_fraction must be in [0, 1], not -inf"],
        ),
        ("seed = 9223372036854775808\n", ["bad.toml, line 1: seed must be a whole number from 0"]),
    ],
)
def test_bad_config_files_are_refused(workdir, charlm_cli, no_tensorflow, toml, words):
    (workdir / "bad.toml").write_text(toml)
    refuses_to_train(charlm_cli, workdir, "--config", "bad.toml", words=words, env=no_tensorflow)


def test_a_missing_config_file_is_named(workdir, charlm_cli, no_tensorflow):
    refuses_to_train(
        charlm_cli,
        workdir,
        "--config",
        "nope.toml",
        words=["nope.toml", "no such config file", "check the path"],
        env=no_tensorflow,
    )


# -- corpora: nothing is written, no run folder is created ----------------------------------------


def make_zip_without_text(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("pics/cat.png", PNG)
        z.writestr("empty/", b"")


CORPUS_CASES = {
    "missing": (lambda w: None, "missing.txt", ["missing.txt", "no such file", "check the path"]),
    "no-text-folder": (
        lambda w: ((w / "texts").mkdir(), (w / "texts/cat.png").write_bytes(PNG)),
        "texts",
        ["texts", "no text files", "put .txt files"],
    ),
    "empty-file": (
        lambda w: (w / "empty.txt").write_text(""),
        "empty.txt",
        ["empty.txt", "empty", "contain some text"],
    ),
    "shorter-than-a-window": (
        lambda w: (w / "short.txt").write_text("To be, or not.\n"),
        "short.txt",
        ["too short", "16 x 32", "--seq-len", "more text"],
    ),
    "invalid-utf8": (
        lambda w: (w / "latin1.txt").write_bytes(TEXT.encode() + LATIN1_CAFE),
        "latin1.txt",
        ["latin1.txt", f"invalid utf-8 at byte {len(TEXT) + 3}", "--encoding", "--errors replace"],
    ),
    "png": (
        lambda w: (w / "photo.png").write_bytes(PNG),
        "photo.png",
        ["photo.png", "binary", "PNG image", "remove it"],
    ),
    "shared-library": (
        lambda w: (w / "libfoo.so").write_bytes(ELF),
        "libfoo.so",
        ["libfoo.so", "binary", "ELF", "remove it"],
    ),
    "zip-without-text": (
        lambda w: make_zip_without_text(w / "pics.zip"),
        "pics.zip",
        ["pics.zip", "no text member", "cat.png", "zip that contains text"],
    ),
}


@pytest.mark.parametrize("name", ["missing.txt", "gone/folder", "missing.zip"])
def test_a_missing_corpus_is_told_before_tensorflow_loads(workdir, charlm_cli, no_tensorflow, name):
    # the first usage error a new user meets: it took 3.6 s, TensorFlow's import, on a Xeon
    refuses(
        charlm_cli,
        workdir,
        "train",
        name,
        "--steps",
        "5",
        words=[name, "no such file", "check the path"],
        env=no_tensorflow,
    )


def make_gz_cut_short(path):
    data = gzip.compress(TEXT.encode() * 20)
    path.write_bytes(data[: len(data) // 2])


def make_zip_with_only_a_folder(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("texts/", b"")


# (make the corpus, the arguments after `train`, words of the one Error line)
READ_CASES = {
    "utf16-without-bom-as-utf-16": (
        lambda w: (w / "notes.txt").write_bytes(TEXT.encode("utf-16-le")),
        ["notes.txt", "--encoding", "utf-16"],
        ["notes.txt", "UTF-16-LE text without a byte-order mark", "--encoding utf-16-le"],
    ),
    "utf8-as-utf-32": (
        lambda w: (w / "plain.txt").write_text(TEXT),
        ["plain.txt", "--encoding", "utf-32"],
        ["plain.txt", "byte-order mark that --encoding utf-32 needs", "utf-32-le or utf-32-be"],
    ),
    "utf32be-with-bom-as-utf-16": (
        lambda w: (w / "wide.txt").write_bytes(("\ufeff" + TEXT).encode("utf-32-be")),
        ["wide.txt", "--encoding", "utf-16"],
        ["wide.txt", "UTF-32-BE text with a byte-order mark", "--encoding utf-32-be"],
    ),
    "utf16-without-bom-as-utf-32-in-a-folder": (
        lambda w: utf16_folder(w),  # defined below
        ["texts", "--encoding", "utf-32"],
        ["texts/a.txt", "--encoding utf-32 needs", "utf-32-le or utf-32-be"],
    ),
    "zip-with-only-a-folder": (
        lambda w: make_zip_with_only_a_folder(w / "empty.zip"),
        ["empty.zip"],
        ["empty.zip", "no text member", "no files", "zip that contains text"],
    ),
    "gz-cut-short": (
        lambda w: make_gz_cut_short(w / "cut.txt.gz"),
        ["cut.txt.gz"],
        ["cut.txt.gz", "corrupt gzip file", "re-create or re-download"],
    ),
    "symlink-loop": (
        lambda w: (w / "loop").symlink_to("loop"),
        ["loop"],
        ["loop", "too many levels of symbolic links", "check the path"],
    ),
    "name-too-long": (
        lambda w: None,
        ["n" * 300 + ".txt"],
        ["file name too long", "check the path"],
    ),
    "runs-dir-is-a-file": (
        lambda w: ((w / "corpus.txt").write_text(TEXT * 3), (w / "notes").write_text("mine\n")),
        ["corpus.txt", "--runs-dir", "notes"],
        ["notes", "a file stands where a folder should be"],
    ),
}


@pytest.mark.parametrize("case", list(READ_CASES))
def test_a_corpus_that_cannot_be_read_as_asked_is_one_line_and_creates_no_run(workdir, case):
    make, args, words = READ_CASES[case]
    make(workdir)
    refuses(run_cli, workdir, "train", *args, "--config", TINY, words=words)
    assert not (workdir / "runs").exists()


def test_an_unreadable_corpus_file_is_refused(workdir):
    (workdir / "secret.txt").write_text(TEXT)
    before = tree_snapshot(workdir)
    cmd = [sys.executable, "-m", "charlm", "train", "secret.txt", "--config", str(TINY)]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    (workdir / "secret.txt").chmod(0)
    try:
        p = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)
    finally:
        (workdir / "secret.txt").chmod(0o644)
    error_line(p.returncode, p.stderr, "secret.txt", "permission denied", "chmod +r")
    assert tree_snapshot(workdir) == before
    assert not (workdir / "runs").exists()


@pytest.fixture(scope="module")
def huge_gz(tmp_path_factory):
    """~60 MB of text as a ~0.3 MB .gz whose end is cut off: only a streamed head reads well."""
    path = tmp_path_factory.mktemp("gz") / "huge.txt.gz"
    data = gzip.compress(TEXT.encode() * 35_000, compresslevel=6)
    path.write_bytes(data[:-4096])
    return path


def test_a_huge_gz_beyond_max_input_bytes_is_refused(workdir, huge_gz):
    shutil.copy(huge_gz, workdir)
    refuses_to_train(
        run_cli,
        workdir,
        "--config",
        TINY,
        "--max-input-bytes",
        "4000000",
        corpus="huge.txt.gz",
        words=["huge.txt.gz", "more than 4,000,000 bytes", "--max-input-bytes"],
    )


def test_a_huge_gz_with_max_chars_is_streamed_not_read_whole(workdir, huge_gz):
    shutil.copy(huge_gz, workdir)
    # read whole, it would trip the 4 MB guard (and then the cut-off end); streamed, it stops early
    code, _, err = run_cli(
        "train",
        "huge.txt.gz",
        "--config",
        TINY,
        "--max-chars",
        "20000",
        "--max-input-bytes",
        "4000000",
        "--steps",
        "1",
        "--name",
        "gz",
        cwd=workdir,
    )
    assert code == 0, err
    info = json.loads((workdir / "runs/gz/corpus.json").read_text())
    assert info["train_chars"] + info["val_chars"] == 20000


# -- runs ------------------------------------------------------------------------------------------


@pytest.fixture
def run_copy(workdir, shared_run):
    """Copy a small real Keras (LSTM) run or scratch-GRU run (the session's shared runs) to
    ``workdir/runs/<kind>``, to break (and point runs/latest at it)."""

    def copy(kind):
        dest = workdir / "runs" / kind
        copy_run(shared_run({"keras": "lstm", "scratch": "scratch-gru"}[kind]), dest)
        (workdir / "runs/latest").symlink_to(kind)
        return dest

    return copy


def test_sample_and_eval_without_a_run_say_to_train_first(workdir, charlm_cli, no_tensorflow):
    for command in ("sample", "eval"):
        refuses(
            charlm_cli,
            workdir,
            command,
            words=["no run found", "charlm train", "--run"],
            env=no_tensorflow,
        )
    refuses(
        charlm_cli,
        workdir,
        "sample",
        "--run",
        "runs/mine",
        words=["runs/mine", "no such run folder", "no run under runs/", "charlm train CORPUS"],
        env=no_tensorflow,
    )


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def flip_bytes(path, start=0.3, end=0.7):
    data = bytearray(path.read_bytes())
    for i in range(int(len(data) * start), int(len(data) * end), 41):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def scratch_data(run):
    return next((run / "best").glob("weights.data-*"))


def edit_vocab(run, change):
    doc = json.loads((run / "vocab.json").read_text(encoding="utf-8"))
    doc = change(doc)
    (run / "vocab.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def add_char(doc):
    doc["chars"].append("\u4e00")
    return doc


def same_size_edit(doc):
    doc["chars"][-1] = "\u4e00"  # still sorted, still unique, same count: only the hash tells
    return doc


def forget_vocab_hash(run, change):
    info = json.loads((run / "corpus.json").read_text())
    del info["vocab_sha256"]
    (run / "corpus.json").write_text(json.dumps(info))
    edit_vocab(run, change)


BROKEN_RUNS = {
    "keras-best-missing": (
        "keras",
        lambda r: (r / "best.keras").unlink(),
        ["runs/keras/best.keras is missing", "--weights last", "retrain"],
    ),
    "keras-best-truncated": (
        "keras",
        lambda r: truncate(r / "best.keras"),
        ["best.keras", "truncated or corrupt", "--weights last", "retrain"],
    ),
    "keras-best-corrupted": (
        "keras",
        lambda r: flip_bytes(r / "best.keras"),
        ["best.keras", "truncated or corrupt", "--weights last", "retrain"],
    ),
    "keras-best-empty": (
        "keras",
        lambda r: (r / "best.keras").write_bytes(b""),
        ["best.keras", "truncated or corrupt", "--weights last"],
    ),
    "scratch-best-missing": (
        "scratch",
        lambda r: shutil.rmtree(r / "best"),
        ["best is missing", "--weights last", "retrain"],
    ),
    "scratch-best-truncated": (
        "scratch",
        lambda r: truncate(scratch_data(r)),
        ["runs/scratch/best:", "truncated or corrupt", "--weights last", "retrain"],
    ),
    "scratch-best-corrupted": (
        "scratch",
        lambda r: flip_bytes(scratch_data(r)),
        ["best", "truncated or corrupt", "--weights last"],
    ),
    "scratch-best-index-truncated": (
        "scratch",
        lambda r: truncate(r / "best/weights.index"),
        ["best", "truncated or corrupt", "--weights last"],
    ),
    "vocab-one-more-char": (
        "keras",
        lambda r: edit_vocab(r, add_char),
        [
            "vocab.json is not the vocabulary this run was trained with",
            "restore the run's own vocab.json",
        ],
    ),
    "vocab-same-size-edit": (
        "scratch",
        lambda r: edit_vocab(r, same_size_edit),
        [
            "vocab.json is not the vocabulary this run was trained with",
            "restore the run's own vocab.json",
        ],
    ),
    # a vocabulary and weights from different runs (no record of the vocabulary to compare)
    "keras-vocab-does-not-match-weights": (
        "keras",
        lambda r: forget_vocab_hash(r, add_char),
        [
            "best.keras",
            "weights are for",
            "characters but vocab.json has",
            "restore the run's own vocab.json",
        ],
    ),
    "scratch-vocab-does-not-match-weights": (
        "scratch",
        lambda r: forget_vocab_hash(r, add_char),
        ["best", "do not match", "vocab.json", "restore the run's own vocab.json"],
    ),
    "vocab-not-json": (
        "keras",
        lambda r: (r / "vocab.json").write_text('{"chars": ["a", '),
        ["vocab.json", "not valid JSON", "restore it or retrain"],
    ),
    "vocab-duplicate-char": (
        "scratch",
        lambda r: edit_vocab(r, lambda d: {**d, "chars": d["chars"][:1] + d["chars"][:-1]}),
        ["vocab.json", "appears twice", "restore it or retrain"],
    ),
    "vocab-missing": (
        "keras",
        lambda r: (r / "vocab.json").unlink(),
        ["vocab.json is missing", "vocabulary"],
    ),
    "config-from-another-version": (
        "keras",
        lambda r: (r / "config.toml").write_text(
            (r / "config.toml").read_text().replace("format_version = 1", "format_version = 99")
        ),
        ["config.toml", "format version 99", "the charlm that wrote it", "retrain"],
    ),
    "config-without-format-version": (
        "scratch",
        lambda r: (r / "config.toml").write_text(
            (r / "config.toml").read_text().replace("format_version = 1\n", "")
        ),
        ["config.toml", "no format_version", "restore the file or retrain"],
    ),
    "config-missing": (
        "scratch",
        lambda r: (r / "config.toml").unlink(),
        ["not a charlm run", "config.toml", "written by `charlm train`"],
    ),
}


# found from config.toml and vocab.json alone, before TensorFlow loads
FOUND_BEFORE_TENSORFLOW = {
    "vocab-not-json",
    "vocab-duplicate-char",
    "vocab-missing",
    "vocab-one-more-char",
    "vocab-same-size-edit",
    "config-from-another-version",
    "config-without-format-version",
    "config-missing",
}


@pytest.mark.parametrize("case", list(BROKEN_RUNS))
def test_a_broken_run_is_refused_with_the_way_out(
    workdir, charlm_cli, run_copy, no_tensorflow, case
):
    kind, breaks, words = BROKEN_RUNS[case]
    run = run_copy(kind)
    breaks(run)
    command = ["eval", "--perplexity"] if "config" in case else ["sample", "--length", "5"]
    if case in FOUND_BEFORE_TENSORFLOW:
        refuses(charlm_cli, workdir, *command, words=words, env=no_tensorflow)
    else:
        refuses(run_cli, workdir, *command, words=words)


def test_a_refusal_after_tensorflow_loaded_is_one_line_in_a_fresh_process(
    workdir, charlm_cli, run_copy
):
    """In this process TensorFlow has started already; a fresh one shows that its start-up
    chatter stays off stderr when a refusal comes after it loaded."""
    _, breaks, words = BROKEN_RUNS["keras-best-truncated"]
    breaks(run_copy("keras"))
    refuses(charlm_cli, workdir, "sample", "--length", "5", words=words)


def test_a_keras_file_with_a_lambda_layer_is_refused_and_its_code_never_runs(
    workdir, run_copy, tmp_path_factory
):
    import keras

    run = run_copy("keras")
    marker = tmp_path_factory.mktemp("lambda") / "the-lambda-ran"

    def touch_marker(x, marker=str(marker)):
        open(marker, "w").close()
        return x

    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    state = keras.Input(shape=(8,), name="state_0_0")
    x = keras.layers.Embedding(59, 8)(ids)
    x = keras.layers.Lambda(touch_marker)(x)
    x, new_state = keras.layers.GRU(8, return_sequences=True, return_state=True)(
        x, initial_state=[state]
    )
    logits = keras.layers.Dense(59)(x)
    keras.Model([ids, state], [logits, new_state]).save(run / "best.keras")
    marker.unlink()  # building the model called the lambda once; loading it must not
    refuses(
        run_cli,
        workdir,
        "sample",
        "--length",
        "5",
        words=["best.keras", "refusing to load", "Lambda", "never runs", "retrain"],
    )
    assert not marker.exists()


def test_resume_without_a_run_says_how_to_start_one(workdir):
    refuses(
        run_cli,
        workdir,
        "train",
        "--resume",
        words=["no run to resume", "charlm train CORPUS", "--resume DIR"],
    )


def test_train_into_an_existing_run_refuses_and_changes_nothing(workdir, run_copy):
    run_copy("keras")
    (workdir / "corpus.txt").write_text(TEXT)
    refuses(
        run_cli,
        workdir,
        "train",
        "corpus.txt",
        "--config",
        TINY,
        "--name",
        "keras",
        words=["runs/keras already holds a run", "--resume", "--force", "--name"],
    )


def test_eval_of_a_missing_file_is_refused(workdir, run_copy):
    run_copy("keras")
    refuses(run_cli, workdir, "eval", "poems.txt", words=["poems.txt", "no such file"])


def test_eval_of_a_file_in_another_encoding_says_how_and_then_scores_it(workdir, run_copy):
    run_copy("keras")
    (workdir / "latin1.txt").write_bytes("café au lait, s'il vous plaît. ".encode("latin-1") * 20)
    refuses(
        run_cli,
        workdir,
        "eval",
        "latin1.txt",
        words=["latin1.txt", "invalid utf-8 at byte 3", "--encoding", "--errors replace"],
    )
    code, out, err = run_cli("eval", "latin1.txt", "--encoding", "latin-1", "--json", cwd=workdir)
    assert code == 0, err
    assert json.loads(out)["chars"] == 31 * 20 - 1


# -- real folders of text (issue 9) -----------------------------------------------------------------


def pyc(source="def add(a, b):\n    return a + b\n"):
    """A compiled module as __pycache__ holds it: magic, flags, mtime, size, marshalled code."""
    import importlib.util
    import marshal

    return (
        importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(compile(source, "mod.py", "exec"))
    )


def python_package(w, bad_source=False):
    """pkg/ with its source, a __pycache__ and (if asked) a .py in Latin-1 among UTF-8 ones."""
    (w / "pkg/__pycache__").mkdir(parents=True)
    (w / "pkg/__init__.py").write_text("")
    (w / "pkg/mod.py").write_text("def add(a, b):\n    return a + b\n" * 40)
    (w / "pkg/__pycache__/mod.cpython-312.pyc").write_bytes(pyc())
    if bad_source:
        (w / "pkg/util.py").write_bytes(b"x = 1\n" + "# café\n".encode("latin-1"))


def utf16_folder(w):
    (w / "texts").mkdir()
    (w / "texts/a.txt").write_text(TEXT)
    (w / "texts/notes.txt").write_bytes(TEXT.encode("utf-16-le"))


WINDOWS_TEXT = TEXT.replace("\n", "\r\n")

FOLDER_CASES = {
    "pyc-named-directly": (
        lambda w: python_package(w),
        "pkg/__pycache__/mod.cpython-312.pyc",
        ["mod.cpython-312.pyc", "binary", "NUL bytes", "remove it"],
    ),
    "latin1-source-in-a-package": (
        lambda w: python_package(w, bad_source=True),
        "pkg",
        ["pkg/util.py", "invalid utf-8 at byte 11", "--encoding", "--errors replace"],
    ),
    "utf16le-without-bom": (
        lambda w: (w / "notes.txt").write_bytes(WINDOWS_TEXT.encode("utf-16-le")),
        "notes.txt",
        ["notes.txt", "UTF-16-LE text without a byte-order mark", "--encoding utf-16-le"],
    ),
    "utf32be-without-bom": (
        lambda w: (w / "notes.txt").write_bytes(TEXT.encode("utf-32-be")),
        "notes.txt",
        ["notes.txt", "UTF-32-BE text without a byte-order mark", "--encoding utf-32-be"],
    ),
    "utf16le-without-bom-in-a-folder": (
        lambda w: utf16_folder(w),  # defined below
        "texts",
        [
            "texts/notes.txt",
            "UTF-16-LE text without a byte-order mark",
            "convert it to UTF-8 (iconv -f UTF-16LE -t UTF-8)",
            "--encoding utf-16-le",
        ],
    ),
}


BAD_CORPORA = {**CORPUS_CASES, **FOLDER_CASES}  # (make it in workdir, the path to train, words)
assert len(BAD_CORPORA) == len(CORPUS_CASES) + len(FOLDER_CASES)  # no case hides another


@pytest.mark.parametrize("case", list(BAD_CORPORA))
def test_a_bad_corpus_or_folder_is_refused_with_one_line_and_creates_no_run(workdir, case):
    make, path, words = BAD_CORPORA[case]
    make(workdir)
    refuses_to_train(run_cli, workdir, "--config", TINY, corpus=path, words=words)


def test_a_python_package_and_a_utf16_file_with_a_bom_train_with_one_warning_each(workdir):
    python_package(workdir)
    (workdir / "notes.txt").write_bytes(("\ufeff" + WINDOWS_TEXT).encode("utf-16-le"))
    before = tree_snapshot(workdir)
    code, _, err = run_cli(
        "train", "pkg", "notes.txt", "--config", TINY, "--steps", "1", "--name", "src", cwd=workdir
    )
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: pkg: skipped 1 binary file (__pycache__/mod.cpython-312.pyc)",
        "warning: notes.txt: starts with a UTF-16-LE byte-order mark; read as UTF-16-LE",
    ], err
    assert {k: v for k, v in tree_snapshot(workdir).items() if not k.startswith("runs")} == before


def test_utf16_without_a_bom_trains_with_the_encoding_its_error_names(workdir):
    (workdir / "notes.txt").write_bytes(WINDOWS_TEXT.encode("utf-16-le"))
    code, _, err = run_cli(
        "train",
        "notes.txt",
        "--config",
        TINY,
        "--encoding",
        "utf-16-le",
        "--steps",
        "1",
        "--name",
        "u16",
        cwd=workdir,
    )
    assert code == 0, err
    info = json.loads((workdir / "runs/u16/corpus.json").read_text())
    assert info["train_chars"] + info["val_chars"] == len(TEXT)


def test_runs_named_by_resume_init_from_and_export_are_checked_before_tensorflow_loads(
    workdir, charlm_cli, no_tensorflow, shared_run
):
    (workdir / "corpus.txt").write_text(TEXT)
    for args, words in [
        (["train", "--resume", "nope"], ["--resume nope", "no such run folder"]),
        (["train", "corpus.txt", "--init-from", "nope"], ["--init-from nope", "no such run"]),
    ]:
        refuses(charlm_cli, workdir, *args, words=words, env=no_tensorflow)
    copy_run(shared_run("lstm"), workdir / "runs" / "mine")
    (workdir / "taken").mkdir()
    refuses(
        charlm_cli,
        workdir,
        "export",
        "mine",
        "--out",
        "taken",
        words=["taken already exists", "--force"],
        env=no_tensorflow,
    )


def every_checkpoint(run, breaks):
    for checkpoint in (run / "checkpoints").iterdir():
        breaks(checkpoint)


# what a command that reads a run meets, and each command that must refuse it: every refusal
# must leave the whole tree as it was, byte for byte (no config rewritten, no corpus
# re-pointed, no folder made, no latest moved)
REFUSALS = {
    "checkpoints-corrupted": (
        "keras",
        lambda r: every_checkpoint(r, lambda c: flip_bytes(next(c.glob("ckpt.data-*")))),
        ["resume"],
    ),
    "checkpoints-truncated": (
        "scratch",
        lambda r: every_checkpoint(r, lambda c: truncate(c / "ckpt.index")),
        ["resume"],
    ),
    "corpus-json-not-object": (
        "keras",
        lambda r: (r / "corpus.json").write_text("[1, 2]\n"),
        ["resume"],
    ),
    "keras-best-truncated": BROKEN_RUNS["keras-best-truncated"][:2] + (["init-from", "export"],),
    "scratch-best-missing": BROKEN_RUNS["scratch-best-missing"][:2] + (["init-from", "export"],),
    "keras-vocab-does-not-match-weights": BROKEN_RUNS["keras-vocab-does-not-match-weights"][:2]
    + (["init-from", "export"],),
    "vocab-one-more-char": BROKEN_RUNS["vocab-one-more-char"][:2]
    + (["resume", "init-from", "export"],),
    "config-from-another-version": BROKEN_RUNS["config-from-another-version"][:2]
    + (["resume", "init-from", "export"],),
    "export-folder-exists": (
        "keras",
        lambda r: (r / "export" / "savedmodel").mkdir(parents=True),
        ["export"],
    ),
}
COMMANDS = {
    "resume": lambda kind: ["train", "--resume", f"runs/{kind}", "--steps", "50"],
    "init-from": lambda kind: ["train", "c.txt", "--init-from", f"runs/{kind}", "--steps", "2"],
    "export": lambda kind: ["export", f"runs/{kind}", "--format", "savedmodel"],
}


@pytest.mark.parametrize(
    "case,command", [(case, c) for case, (_, _, cs) in REFUSALS.items() for c in cs]
)
def test_a_refusal_of_a_command_that_reads_a_run_changes_no_byte(workdir, run_copy, case, command):
    kind, breaks, _ = REFUSALS[case]
    breaks(run_copy(kind))
    (workdir / "c.txt").write_text(TEXT)
    before = tree_snapshot(workdir), folders_and_links(workdir)
    code, _, err = run_cli(*COMMANDS[command](kind))  # a resume tells its progress first
    assert code == 1 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("Error: "), err
    assert (tree_snapshot(workdir), folders_and_links(workdir)) == before


@pytest.mark.parametrize("case", ["keras-best-truncated", "vocab-one-more-char"])
def test_a_server_that_refuses_a_run_changes_no_byte(workdir, charlm_cli, run_copy, case):
    kind, breaks, _ = REFUSALS[case]
    breaks(run_copy(kind))
    refuses(charlm_cli, workdir, "serve", f"runs/{kind}", "--port", "0", "--max-streams", "1")


def test_a_prompt_file_larger_than_any_prompt_is_refused_before_it_is_read(
    workdir, charlm_cli, run_copy, no_tensorflow
):
    from charlm.options.sampling import MAX_PROMPT_CHARS

    run_copy("keras")
    with open(workdir / "big.txt", "wb") as f:
        f.truncate(4 * MAX_PROMPT_CHARS + 1)  # a sparse file: its size, not its bytes
    words = ["--prefix-file", "big.txt", "4,000,001 bytes", "1,000,000 characters"]
    refuses(
        charlm_cli, workdir, "sample", "--prefix-file", "big.txt", words=words, env=no_tensorflow
    )


def test_a_prompt_of_more_characters_than_any_prompt_is_refused_in_one_line(workdir, run_copy):
    from charlm.options.sampling import MAX_PROMPT_CHARS

    run_copy("keras")
    (workdir / "long.txt").write_text("a" * (MAX_PROMPT_CHARS + 1))
    words = ["--prefix-file", "at most 1,000,000 characters", "1,000,001", "last part"]
    refuses(run_cli, workdir, "sample", "--prefix-file", "long.txt", words=words)


def test_a_stack_deeper_than_any_machine_builds_is_refused_at_once(
    workdir, charlm_cli, no_tensorflow
):
    (workdir / "c.txt").write_text(TEXT)
    words = ["--layers", "at most 64", "100000"]
    refuses(
        charlm_cli,
        workdir,
        "train",
        "c.txt",
        "--layers",
        "100000",
        "--units",
        "8",
        words=words,
        env=no_tensorflow,
    )


def test_strict_utf8_streams_carry_a_prefix_that_is_not_utf8_back_as_its_bytes(workdir, run_copy):
    run_copy("keras")
    prefix = os.fsdecode(b"caf\xe9 ")  # as a Latin-1 terminal would pass it
    p = subprocess.run(
        [sys.executable, "-m", "charlm", "sample", "--prefix", prefix, "--length", "5"],
        cwd=workdir,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},  # strict standard streams
        capture_output=True,
        timeout=300,
    )
    assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr.decode(errors="replace")
    assert p.stdout.startswith(b"caf\xe9 ") and len(p.stdout) > len(b"caf\xe9 "), p.stdout
