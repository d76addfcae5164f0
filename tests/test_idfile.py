"""The streamed, memory-mapped corpus (charlm/text/idfile.py) gives exactly what the in-memory path gives."""

import json

import numpy as np
import pytest
from conftest import CORPORA, TINY, error

import charlm.text.corpus
from charlm.api.inputs import encode_corpus
from charlm.config import Config
from charlm.fsio import text_sha256
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
