"""The streamed, memory-mapped corpus (charlm/text/idfile.py) gives exactly what the in-memory path gives."""

import json
import signal

import forked
import numpy as np
import pytest
from conftest import CONFIGS, CORPORA, TINY, error

import charlm.text.corpus
from charlm.api.inputs import encode_corpus
from charlm.fsio import text_sha256
from charlm.options.config import Config
from charlm.text.idfile import encode, id_dtype
from charlm.text.samplers import dataset, make_sampler
from charlm.text.texts import read_texts
from charlm.text.vocab import Vocab

MIXED = (
    "Ἐν ἀρχῇ ἦν ὁ λόγος.\r\n床前明月光，疑是地上霜。\n" * 40
    + "naïve café 🙂\n" * 30
    + "zebra Ω ق\n"
)


def in_memory(cfg):
    train, val = read_texts(cfg, warn=lambda line: None)
    vocab = Vocab.from_text(train)
    return train, val, vocab


@pytest.fixture
def small_chunks(monkeypatch):
    """Read 7 bytes at a time, so chunks cut through characters, CRLFs and the val cut."""
    monkeypatch.setattr(charlm.text.corpus, "CHUNK_BYTES", 7)


@pytest.mark.parametrize("val_fraction", [0.0, 0.1, 0.37])
def test_streamed_ids_vocabulary_split_and_hashes_equal_the_in_memory_path(
    tmp_path, small_chunks, val_fraction
):
    path = tmp_path / "mixed.txt"
    path.write_bytes(MIXED.encode())
    cfg = Config(paths=[str(path)], val_fraction=val_fraction)
    train, val, vocab = in_memory(cfg)
    corpus = encode_corpus(cfg, tmp_path / "out", log=lambda line: None, progress=False)
    assert corpus.vocab.chars == vocab.chars
    assert (corpus.train_chars, corpus.val_chars) == (len(train), len(val))
    assert np.array_equal(corpus.train_ids, vocab.encode(train))
    assert np.array_equal(
        corpus.val_ids, vocab.encode(val)
    )  # val characters unseen in train are <unk>
    assert (corpus.train_sha256, corpus.val_sha256) == (text_sha256(train), text_sha256(val))
    assert corpus.val_path.read_text(encoding="utf-8") == val


def test_a_val_file_is_held_out_whole_and_encoded_with_the_training_vocabulary(tmp_path):
    (tmp_path / "train.txt").write_text("abcabc\n")
    (tmp_path / "val.txt").write_text("abxy\n")
    cfg = Config(paths=[str(tmp_path / "train.txt")], val_file=str(tmp_path / "val.txt"))
    corpus = encode_corpus(cfg, tmp_path / "out", log=lambda line: None, progress=False)
    assert corpus.vocab.chars[1:] == ["\n", "a", "b", "c"]
    assert corpus.vocab.decode(corpus.val_ids) == "ab\ufffd\ufffd\n"
    assert corpus.val_path.read_text() == "abxy\n"
    assert corpus.val_sha256 == text_sha256("abxy\n")


def test_max_chars_and_normalisation_apply_as_in_memory(tmp_path, small_chunks):
    (tmp_path / "a.txt").write_bytes("ΑΣ Hello\r\nWorld\r\n".encode() * 20)
    cfg = Config(paths=[str(tmp_path)], lowercase=True, newlines="space", max_chars=150)
    train, val, vocab = in_memory(cfg)
    corpus = encode_corpus(cfg, tmp_path / "out", log=lambda line: None, progress=False)
    assert corpus.vocab == vocab
    assert vocab.decode(np.asarray(corpus.ids)) == train + val


def test_the_id_file_is_uint8_for_small_vocabularies_and_wider_for_larger_ones():
    assert id_dtype(256) == np.uint8 and id_dtype(257) == np.uint16
    assert id_dtype(65536) == np.uint16 and id_dtype(65537) == np.uint32


def test_a_large_vocabulary_gets_a_uint16_file(tmp_path):
    text = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 600)) * 2
    corpus = encode(
        lambda: iter([text]), None, 0.0, tmp_path, log=lambda line: None, progress=False
    )
    assert corpus.ids.dtype == np.uint16
    assert corpus.vocab.decode(corpus.ids) == text


def test_the_vocabulary_is_shown_to_the_user(tmp_path):
    said = []
    encode(lambda: iter(["ba\n"]), None, 0.0, tmp_path, log=said.append, progress=False)
    assert said == ["vocabulary: 4 ids, <unk> and 3 characters: '\\nab'"]


def test_both_passes_show_progress_on_stderr_unless_told_not_to(tmp_path, capsys):
    encode(lambda: iter(["hello"]), None, 0.0, tmp_path, log=lambda line: None, progress=True)
    err = capsys.readouterr().err
    assert "reading" in err and "encoding" in err
    encode(lambda: iter(["hello"]), None, 0.0, tmp_path, log=lambda line: None, progress=False)
    assert capsys.readouterr().err == ""


def test_a_reading_error_in_the_stream_leaves_no_file_behind(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"good text " * 10 + b"\xff")
    cfg = Config(paths=[str(tmp_path / "bad.txt")])
    assert "invalid utf-8 at byte 100" in error(
        encode_corpus, cfg, tmp_path / "out", log=lambda line: None, progress=False
    )
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("kind", ["random", "consecutive"])
@pytest.mark.parametrize("cut", ["random-offset", "fixed"])
def test_memory_mapped_batches_equal_the_in_memory_batches(tmp_path, kind, cut):
    import tensorflow as tf

    path = CORPORA / "tinyshakespeare.txt"
    cfg = Config(paths=[str(path)], max_chars=20_000)
    train, _, vocab = in_memory(cfg)
    corpus = encode_corpus(cfg, tmp_path, log=lambda line: None, progress=False)
    mapped = make_sampler(kind, corpus.train_ids, 16, 8, cut)
    memory = make_sampler(kind, vocab.encode(train), 16, 8, cut)
    assert isinstance(corpus.train_ids, np.memmap)
    for epoch in (0, 1):
        plan = mapped.plan(epoch, seed=3)
        assert np.array_equal(plan, memory.plan(epoch, seed=3))
        for (x, y), (x0, y0) in zip(
            dataset(mapped.ids, plan, 16, skip=2),
            dataset(tf.constant(memory.ids), plan, 16, skip=2),
            strict=True,
        ):
            assert x.dtype == tf.int32 and x.shape == (8, 16)
            assert np.array_equal(x, x0) and np.array_equal(y, y0)


def test_a_run_keeps_its_id_file_and_records_the_same_hashes_as_the_texts(workdir):
    import charlm

    cfg = Config(paths=[str(CORPORA / "tinyshakespeare.txt")], max_chars=30_000)
    train, val, _ = in_memory(cfg)
    run = charlm.train(
        [CORPORA / "tinyshakespeare.txt"],
        name="r",
        steps=2,
        max_chars=30_000,
        progress=False,
        log=lambda line: None,
        **TINY,
    )
    info = json.loads((run.path / "corpus.json").read_text())
    assert (info["train_sha256"], info["val_sha256"]) == (text_sha256(train), text_sha256(val))
    assert (run.path / "val.txt").read_text() == val
    assert len(np.load(run.path / "ids.npy", mmap_mode="r")) == len(train) + len(val)
    assert not [p.name for p in (workdir / "runs").iterdir() if p.name.startswith(".")]


def test_a_corpus_too_short_for_one_batch_is_refused_and_leaves_no_runs_folder(workdir):
    import charlm

    (workdir / "short.txt").write_text("just a few characters\n")
    message = error(
        charlm.train, [workdir / "short.txt"], progress=False, log=lambda line: None, **TINY
    )
    assert "too short for one batch" in message
    assert not (workdir / "runs").exists()


def test_a_run_from_before_the_id_file_resumes(workdir):
    import charlm

    settings = dict(max_chars=30_000, progress=False, log=lambda line: None, **TINY)
    charlm.train([CORPORA / "tinyshakespeare.txt"], name="old", steps=2, **settings)
    (workdir / "runs" / "old" / "ids.npy").unlink()  # as a run written before ids.npy existed
    run = charlm.train(resume="runs/old", steps=4, progress=False, log=lambda line: None)
    assert int(run.metrics()[-1]["step"]) == 4
    assert (workdir / "runs" / "old" / "ids.npy").exists()


# -- one reading of the corpus, or two that agree ------------------------------------------------

CHANGES = {
    "truncated": lambda path: path.write_text(path.read_text()[:1000]),
    "appended": lambda path: path.write_text(path.read_text() * 2),
    "same-length-edit": lambda path: path.write_text(path.read_text().upper()),
}
SAID = {
    "truncated": "(30,000 characters at first, 1,000 when read again)",
    "appended": "(30,000 characters at first, more when read again)",
    "same-length-edit": "(30,000 characters both times, but not the same text)",
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_corpus_that_changes_between_the_passes_is_refused_and_nothing_is_written(
    tmp_path, change
):
    path = tmp_path / "corpus.txt"
    path.write_text((CORPORA / "tinyshakespeare.txt").read_text()[:30_000])
    cfg = Config(paths=[str(path)])
    # the vocabulary line is logged between the two passes: change the file there
    message = error(
        encode_corpus, cfg, tmp_path / "out", log=lambda line: CHANGES[change](path), progress=False
    )
    assert message == (
        f"{path} changed while it was read {SAID[change]}; nothing was written;"
        " train again once it stops changing"
    )
    assert not (tmp_path / "out").exists()


def test_a_pipe_is_read_once_through_a_spool_that_is_removed(tmp_path):
    from charlm.text.corpus import Chunks

    reads = []

    def source():  # a stream that gives its text only the first time, like a pipe
        reads.append(None)
        return Chunks(iter(["ab", "ca\nb"] if len(reads) == 1 else []), "<pipe>", once=True)

    corpus = encode(source, None, 0.2, tmp_path, log=lambda line: None, progress=False)
    assert len(reads) == 1
    assert corpus.vocab.decode(corpus.ids) == "abca\nb"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [corpus.ids_path.name, corpus.val_path.name]
    )


def write_later(path, data: bytes):
    """Write ``data`` into the FIFO ``path`` from a thread; if nobody opened it for reading
    after 60 s, open it once more so that a reader stuck on it sees the end instead of hanging."""
    import os
    import threading

    def write():
        fd = os.open(path, os.O_WRONLY)  # blocks until the reader opens it
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def unblock():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # fails unless a reader waits
            os.close(fd)
        except OSError:
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    watchdog = threading.Timer(60, unblock)
    watchdog.daemon = True
    watchdog.start()
    return writer, watchdog


def test_a_fifo_corpus_trains(workdir):
    import os

    from conftest import run_cli

    text = (CORPORA / "tinyshakespeare.txt").read_text()[:20_000]
    os.mkfifo(workdir / "fifo")
    writer, watchdog = write_later(workdir / "fifo", text.encode())
    try:
        code, _, err = run_cli(
            "train", "fifo", "--config", CONFIGS / "tiny.toml", "--steps", "1", "--name", "f"
        )
    finally:
        watchdog.cancel()
    writer.join(5)
    assert code == 0, err
    info = json.loads((workdir / "runs/f/corpus.json").read_text())
    assert (info["train_chars"], info["val_chars"]) == (18_000, 2_000)
    assert info["train_sha256"] == text_sha256(text[:18_000]) and info["sources"] is None
    assert sorted(p.name for p in (workdir / "runs").iterdir()) == ["f", "latest"]


def test_dev_stdin_fed_by_a_pipe_trains(workdir):
    text = (CORPORA / "tinyshakespeare.txt").read_text()[:20_000]
    code, _, err = forked.run(
        ["train", "/dev/stdin", "--config", CONFIGS / "tiny.toml", "--steps", "1", "--name", "s"],
        cwd=workdir,
        input=text,
        timeout=240,
    )
    assert code == 0, err
    info = json.loads((workdir / "runs/s/corpus.json").read_text())
    assert info["train_chars"] + info["val_chars"] == len(text)
    assert info["val_sha256"] == text_sha256(text[18_000:])


# -- temporary files are removed on every exit path, signals included ------------------------------


def signalled_while_encoding(workdir, signum, corpus: str, ready=None, env=None):
    """Start ``charlm train corpus`` in ``workdir`` and send it ``signum`` once it is encoding:
    when its stderr says CHARLM_PAUSED (``env`` sets CHARLM_PAUSE_AT), or ``ready()`` is true.
    Return its exit status and stderr; it is killed if it lasts over 4 minutes."""
    import os
    import threading
    import time

    process = forked.start(
        ["train", corpus, "--config", CONFIGS / "tiny.toml"],
        cwd=workdir,
        stdout=forked.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    killer = threading.Timer(240, process.kill)
    killer.start()
    try:
        seen = []
        if ready is None:
            for line in process.stderr:
                seen.append(line)
                if line.startswith("CHARLM_PAUSED"):
                    break
        else:
            while not ready() and process.poll() is None:
                time.sleep(0.05)
        process.send_signal(signum)
        seen.append(process.stderr.read())
        process.wait()
    finally:
        killer.cancel()
    return process.returncode, "".join(seen)


@pytest.mark.parametrize(
    "signum, status", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)]
)
def test_a_signal_while_encoding_leaves_no_temporary_file(workdir, signum, status):
    big = (CORPORA / "tinyshakespeare.txt").read_text() * 6  # 6.7 MB: pass 2 pauses after 4 MB
    (workdir / "big.txt").write_text(big)
    code, err = signalled_while_encoding(
        workdir, signum, "big.txt", env={"CHARLM_PAUSE_AT": "ids-encoding"}
    )
    assert "CHARLM_PAUSED ids-encoding" in err, err
    assert code == status, err
    assert "Traceback" not in err, err
    assert not (workdir / "runs").exists()  # the temporaries and the folder made for them
    assert (workdir / "big.txt").read_text() == big


def test_sigterm_while_waiting_for_a_fifo_writer_removes_the_spool(workdir):
    import os

    os.mkfifo(workdir / "fifo")

    def spooling():
        return any(p.name.startswith(".corpus.spool") for p in (workdir / "runs").glob(".*"))

    code, err = signalled_while_encoding(workdir, signal.SIGTERM, "fifo", ready=spooling)
    assert code == -signal.SIGTERM, err
    assert "Traceback" not in err, err
    assert not (workdir / "runs").exists()


# -- verify before reuse: a run's ids.npy and val.txt are checked before a resume trains on them ---


@pytest.fixture(scope="module")
def two_steps(tmp_path_factory):
    """A tiny run of two steps on 20,000 characters, trained once for the module: copy it."""
    import os

    import charlm

    home, back = tmp_path_factory.mktemp("two-steps"), os.getcwd()
    os.chdir(home)  # the run records runs_dir = "runs": a copy in another folder is whole
    try:
        charlm.train(
            [CORPORA / "tinyshakespeare.txt"],
            name="r",
            steps=2,
            max_chars=20_000,
            progress=False,
            log=lambda line: None,
            **TINY,
        )
    finally:
        os.chdir(back)
    return home / "runs/r"


def overwrite_every_7th_id(run):
    """Every 7th id of ids.npy replaced by another id of the vocabulary (in range)."""
    ids = np.load(run / "ids.npy", mmap_mode="r+")
    ids[::7] = (ids[::7] + 1) % len(Vocab.load(run / "vocab.json"))
    ids.flush()


def set_ids(run, value):
    ids = np.load(run / "ids.npy", mmap_mode="r+")
    ids[100:110] = value
    ids.flush()


def cut_file(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


def forget_ids_hash(run):
    info = json.loads((run / "corpus.json").read_text())
    del info["ids_sha256"]  # as a run from before the hash was recorded
    (run / "corpus.json").write_text(json.dumps(info))


DAMAGED_IDS = {
    "every-7th-id-in-range": (overwrite_every_7th_id, "is not the file that was written"),
    "out-of-range-ids": (lambda r: set_ids(r, 255), "has id 255, beyond the"),
    "truncated": (lambda r: cut_file(r / "ids.npy", 5000), "is damaged (mmap length"),
    "emptied": (lambda r: cut_file(r / "ids.npy", 0), "is damaged (No data left in file)"),
    "header-only": (lambda r: cut_file(r / "ids.npy", 40), "is damaged (EOF: reading"),
    "val-missing": (lambda r: (r / "val.txt").unlink(), "val.txt is missing"),
    "val-garbled": (lambda r: (r / "val.txt").write_bytes(b"\xff\xfe" * 1000), "is unreadable"),
    "val-edited": (
        lambda r: (r / "val.txt").write_text((r / "val.txt").read_text().swapcase()),
        "val.txt is not the held-out text that corpus.json records",
    ),
    "no-recorded-hash": (forget_ids_hash, "corpus.json records no ids_sha256"),
}


@pytest.mark.parametrize("case", list(DAMAGED_IDS))
def test_a_damaged_id_file_is_encoded_again_on_resume_in_one_line(workdir, two_steps, case):
    from conftest import copy_run, run_cli

    run = copy_run(two_steps, workdir / "runs/r")
    original = {name: (run / name).read_bytes() for name in ("ids.npy", "val.txt", "corpus.json")}
    damage, words = DAMAGED_IDS[case]
    damage(run)
    code, _, err = run_cli("train", "--resume", "runs/r", "--steps", "3")
    assert code == 0, err
    assert "Traceback" not in err and "Aborted!" not in err, err
    said = [line for line in err.splitlines() if line.startswith("corpus: ")]
    assert len(said) == 1 and said[0].endswith("; encoding the corpus again"), err
    assert words in said[0], said
    # encoded again from the corpus: the run validates on the held-out text it was made with
    assert (run / "ids.npy").read_bytes() == original["ids.npy"]
    assert (run / "val.txt").read_bytes() == original["val.txt"]
    assert (
        json.loads((run / "corpus.json").read_text())["ids_sha256"]
        == (json.loads(original["corpus.json"])["ids_sha256"])
    )
    assert int(json.loads((run / "run.json").read_text())["step"]) == 3


def test_an_intact_id_file_is_reused_without_encoding_again(workdir, two_steps):
    from conftest import copy_run

    from charlm.text.idfile import ids_match

    run = copy_run(two_steps, workdir / "runs/r")
    said = []
    info = json.loads((run / "corpus.json").read_text())
    assert ids_match(run, Vocab.load(run / "vocab.json"), info, said.append)
    assert said == []


def test_a_damaged_id_file_whose_corpus_is_gone_is_refused_in_one_line(workdir):
    from conftest import run_cli, tree_snapshot

    import charlm

    corpus = workdir / "c.txt"
    corpus.write_text((CORPORA / "tinyshakespeare.txt").read_text()[:20_000])
    charlm.train([corpus], name="r", steps=1, progress=False, log=lambda line: None, **TINY)
    set_ids(workdir / "runs/r", 255)
    corpus.unlink()
    before = tree_snapshot(workdir)
    code, _, err = run_cli("train", "--resume", "runs/r", "--steps", "3")
    assert code == 1 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"Error: {corpus}: no such file or folder; check the path"], err
    assert tree_snapshot(workdir) == before
