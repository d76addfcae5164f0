"""The corpus encoded once, streaming, into a compact file of ids that training reads memory-mapped.

A corpus larger than memory never becomes one ``str``: :func:`encode` reads it as a stream of
chunks (:func:`charlm.text.corpus.read_chunks`), in two passes (:mod:`charlm.text.passes`).

- pass 1 counts the characters and notes where each code point first appears; the
  vocabulary is then the characters that appear before the train/val cut
  (:func:`charlm.text.corpus.split_point`), i.e. exactly ``Vocab.from_text(train_text)``;
- pass 2 writes the ids (uint8, uint16 or uint32 by vocabulary size, :func:`id_dtype`) to a
  ``.npy`` file, the held-out text to a text file, and hashes the UTF-8 bytes of the train and
  val parts (the same values as :func:`charlm.fsio.text_sha256` of the two texts) and the ids.

Pass 2 must see exactly pass 1's text (the same count and sha256), or nothing is written: a
file that changed in between is refused in one line. A source that cannot be read twice (a
pipe, a FIFO, standard input: its chunks say ``once``) is read once: pass 1 copies it to a
spool file beside the outputs, which pass 2 reads. The temporary files are removed on every
exit path, SIGTERM and SIGHUP included (the process then ends by that signal, as it would have).

The train ids are ``ids[:train_chars]``, the held-out ids ``ids[train_chars:]``::

    >>> folder = getfixture("tmp_path")
    >>> corpus = encode(lambda: iter(["hello ", "world"]), None, 0.3, folder, progress=False)
    vocabulary: 7 ids, <unk> and 6 characters: ' ehlow'
    >>> corpus.train_chars, corpus.val_chars, corpus.ids.dtype
    (8, 3, dtype('uint8'))
    >>> corpus.val_ids.tolist(), corpus.vocab.encode("rld").tolist()
    ([0, 4, 0], [0, 4, 0])

(``r`` and ``d`` appear only after the cut, so they are ``<unk>``, id 0, as in the in-memory path.)
The files are written under temporary names in ``folder``; :meth:`EncodedCorpus.place` moves
them into the run folder. Before a run's files are used again, :func:`ids_match` checks them
against what corpus.json recorded. Pure numpy: no TensorFlow.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import first_line
from ..fsio import ended_cleanly, progress_bar, replace_path
from .baselines import count_baselines, unigram_probabilities
from .codepoints import SURROGATES, lone_surrogate
from .corpus import split_point
from .passes import agreeing, first_reading, id_dtype, spooled, write_ids
from .vocab import Vocab

__all__ = ["IDS_FILE", "VAL_FILE", "EncodedCorpus", "encode", "id_dtype", "ids_match"]

IDS_FILE = "ids.npy"
VAL_FILE = "val.txt"
SPOOL_FILE = "corpus.spool"  # a one-time source's text, kept for pass 2 while encoding
_HASHED_BYTES = 1 << 22  # bytes of a run's ids.npy or val.txt hashed at a time by ids_match

# Each call streams the text again, chunk by chunk. An iterator whose ``once`` is true (the
# chunks of a pipe or standard input, charlm.text.corpus.Chunks) is read only once; its
# ``name`` names the corpus in messages.
Source = Callable[[], Iterator[str]]


@dataclass
class EncodedCorpus:
    """The encoded corpus: its id file (read memory-mapped), vocabulary, sizes and hashes."""

    ids_path: Path
    val_path: Path
    vocab: Vocab
    train_chars: int
    val_chars: int
    train_sha256: str
    val_sha256: str
    made_folder: bool = False  # the folder was created for these files
    sources: list | None = None  # the files it was read from (charlm.text.corpus.source_signature)
    ids_sha256: str | None = None  # of the ids' bytes after the .npy header; None: not recorded
    baselines: dict | None = None  # the count models' val nats/char (charlm.text.baselines)
    # [V] add-one frequencies of the training ids, once counted (not recorded, not compared)
    unigram: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def placed(cls, folder, vocab: Vocab, info: dict) -> EncodedCorpus:
        """The corpus already encoded in ``folder`` (a run's ids.npy and val.txt), as
        :meth:`info` described it."""
        folder = Path(folder)
        return cls(
            folder / IDS_FILE,
            folder / VAL_FILE,
            vocab,
            info["train_chars"],
            info["val_chars"],
            info["train_sha256"],
            info["val_sha256"],
            sources=info.get("sources"),
            ids_sha256=info.get("ids_sha256"),
            baselines=info.get("baselines"),
        )

    @property
    def ids(self) -> np.ndarray:
        """Every id, train then held-out, memory-mapped (read-only)."""
        return np.load(self.ids_path, mmap_mode="r")

    @property
    def train_ids(self) -> np.ndarray:
        return self.ids[: self.train_chars]

    @property
    def val_ids(self) -> np.ndarray:
        return self.ids[self.train_chars :]

    def info(self) -> dict:
        """What ``corpus.json`` records: sizes, the sha256 of the UTF-8 train and val text and
        of the ids, the files it was read from and what counting scores on its held-out text
        (``baselines``: ``unigram`` and ``bigram`` nats/char, :mod:`charlm.text.baselines`)."""
        return {
            "train_chars": self.train_chars,
            "val_chars": self.val_chars,
            "train_sha256": self.train_sha256,
            "val_sha256": self.val_sha256,
            "ids_sha256": self.ids_sha256,
            "sources": self.sources,
            "baselines": self.baselines,
        }

    def place(self, folder) -> None:
        """Move the id file and the held-out text into ``folder`` as ids.npy and val.txt."""
        for path, name in ((self.ids_path, IDS_FILE), (self.val_path, VAL_FILE)):
            replace_path(path, Path(folder) / name)
        self.ids_path, self.val_path = Path(folder) / IDS_FILE, Path(folder) / VAL_FILE

    def unigram_probabilities(self) -> np.ndarray:
        """Each id's add-one frequency in the training ids (:mod:`charlm.text.baselines`),
        counted once: by the encoding, which scores the baselines with it, or here."""
        if self.unigram is None:
            self.unigram = unigram_probabilities(self.train_ids, len(self.vocab))
        return self.unigram

    def is_placed_in(self, folder) -> bool:
        """Its files are ``folder``'s ids.npy and val.txt (:meth:`place`), not temporary ones."""
        return self.ids_path == Path(folder) / IDS_FILE

    def discard(self) -> None:
        """Remove the files (a run that will not use them), and their folder if made for them and empty."""
        for path in (self.ids_path, self.val_path):
            _remove(path)
        folder = self.ids_path.parent
        if self.made_folder and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def encode(
    source: Source,
    val_source: Source | None,
    val_fraction: float,
    folder,
    *,
    base: tuple[Vocab, str] | None = None,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
) -> EncodedCorpus:
    """Encode the text ``source`` streams (and the held-out text of ``val_source``, if given,
    instead of the last ``val_fraction``) into temporary files in ``folder``. ``log`` is told
    the vocabulary between the two passes. ``base``: the vocabulary of the run a fine-tuning
    starts from, and that run's name: the text's vocabulary is then that one, grown by the
    characters it lacks (:meth:`Vocab.grown`)."""
    folder = Path(folder)
    temporary = {name: folder / f".{name}.tmp-{os.getpid()}" for name in (IDS_FILE, VAL_FILE)}
    spool = folder / f".{SPOOL_FILE}.tmp-{os.getpid()}"
    corpus = EncodedCorpus(temporary[IDS_FILE], temporary[VAL_FILE], Vocab([]), 0, 0, "", "")
    corpus.made_folder = not folder.exists()
    with ended_cleanly():
        try:
            _encode_into(corpus, source, val_source, val_fraction, spool, log, progress, base)
        except BaseException:  # an OSError here is a write: the CLI says it in one line
            _remove(spool)
            corpus.discard()
            raise
        _remove(spool)
    return corpus


def _remove(path) -> None:
    """Remove the file ``path`` if it is there (its folder may not be one)."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        Path(path).unlink()


def _encode_into(
    corpus,
    source,
    val_source,
    val_fraction,
    spool: Path,
    log,
    progress,
    base: tuple[Vocab, str] | None = None,
) -> None:
    """Both passes of :func:`encode`, into ``corpus``'s temporary files; a one-time source
    is copied to ``spool`` by pass 1 and read from there by pass 2."""
    folder = corpus.ids_path.parent
    chunks = source()
    name = getattr(chunks, "name", "the corpus")
    once = bool(getattr(chunks, "once", False))
    if once:
        folder.mkdir(parents=True, exist_ok=True)
    with open(spool, "wb") if once else contextlib.nullcontext() as copy:
        seen = first_reading(chunks, copy, _bar("reading", None, progress))
    cut = seen.chars if val_source is not None else split_point(seen.chars, val_fraction)
    vocab = corpus.vocab = _vocab_before(seen.first, cut)
    if base is None:
        log(f"vocabulary: {len(vocab)} ids, <unk> and {_shown(vocab.chars[1:])}")
    else:
        vocab = corpus.vocab = _grown(*base, vocab, log)
    folder.mkdir(parents=True, exist_ok=True)
    texts = agreeing(spooled(spool) if once else source(), seen, name)
    if val_source is not None:
        texts = _chain(texts, val_source())
    with (
        open(corpus.ids_path, "wb") as ids,
        open(corpus.val_path, "w", encoding="utf-8", newline="") as val,
    ):
        bar = _bar("encoding", seen.chars if val_source is None else None, progress)
        written = write_ids(texts, vocab, cut, ids, val, bar)
    corpus.train_chars, corpus.val_chars = cut, written["chars"] - cut
    corpus.train_sha256, corpus.val_sha256 = written["train_sha256"], written["val_sha256"]
    corpus.ids_sha256 = written["ids_sha256"]
    ids = np.load(corpus.ids_path, mmap_mode="r")
    corpus.baselines = count_baselines(ids, cut, len(vocab), corpus.unigram_probabilities())


def _bar(what: str, total: int | None, progress: bool | None):
    return progress_bar(progress, desc=what, total=total, unit="char", unit_scale=True)


def _chain(*iterators):
    for it in iterators:
        yield from it


def _vocab_before(first: np.ndarray, cut: int) -> Vocab:
    """The vocabulary of the first ``cut`` characters: those whose first position is before it."""
    seen = first < cut
    if seen[SURROGATES].any():
        cp = SURROGATES.start + int(np.argmax(seen[SURROGATES]))
        raise lone_surrogate(cp, int(first[cp]))
    return Vocab(chr(c) for c in np.flatnonzero(seen))


def _grown(base: Vocab, name: str, text_vocab: Vocab, log) -> Vocab:
    """``base`` grown by the characters of ``text_vocab`` it lacks, told in one line."""
    vocab = base.grown(text_vocab.chars[1:])
    added = vocab.chars[len(base) :]
    if added:
        log(
            f"vocabulary: {len(added)} characters added to {name}'s {len(base) - 1} "
            f"({_listed(added)}), {len(vocab)} ids in all"
        )
    else:
        log(
            f"vocabulary: no new characters (the text's {len(text_vocab) - 1} are all among "
            f"{name}'s {len(base) - 1})"
        )
    return vocab


def _shown(chars: list[str]) -> str:
    """``"3 characters: 'abc'"``: how many, and :func:`_listed`."""
    return f"{len(chars)} characters: {_listed(chars)}"


def _listed(chars: list[str], limit: int = 60) -> str:
    """The characters as the user reads them: escapes for the invisible ones, cut after ``limit``."""
    more = f" ... ({len(chars) - limit} more)" if len(chars) > limit else ""
    return repr("".join(chars[:limit])) + more


# ----------------------------------------------------------------------------- reuse


def ids_match(folder, vocab: Vocab, info: dict, log: Callable[[str], None] = print) -> bool:
    """Whether the ids.npy and val.txt in the run folder ``folder`` are those that corpus.json
    (``info``) records: the ids' count, dtype, range and sha256, the held-out text's length and
    sha256. If not, ``log`` is told why in one line, and the caller encodes the corpus again.

    Hashing the ids' bytes costs 0.3 s on a 100 MB corpus; decoding them to compare with the
    text's hash cost 2.7-3.0 s (measured on a 2-core Xeon): corpus.json records both hashes.
    """
    folder = Path(folder)
    problem = (
        _recorded_problem(info)
        or _id_file_problem(folder / IDS_FILE, vocab, info)
        or _val_problem(folder / VAL_FILE, info)
    )
    if problem:
        log(f"corpus: {problem}; encoding the corpus again")
    return problem is None


def _recorded_problem(info: dict) -> str | None:
    """What corpus.json lacks to check the files against, as one phrase; None if nothing."""
    for key in ("train_chars", "val_chars"):
        value = info.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"corpus.json records no {key} to check {IDS_FILE} against"
    if not isinstance(info.get("val_sha256"), str):
        return f"corpus.json records no val_sha256 to check {VAL_FILE} against"
    if not isinstance(info.get("ids_sha256"), str):
        return f"corpus.json records no ids_sha256 to check {IDS_FILE} against (an older charlm made the run)"
    return None


def _id_file_problem(path: Path, vocab: Vocab, info: dict) -> str | None:
    """What is wrong with the id file ``path``, as one phrase; None if nothing."""
    total = info["train_chars"] + info["val_chars"]
    try:
        ids = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        return f"{path} is missing"
    except (OSError, ValueError, EOFError) as e:
        return f"{path} is damaged ({first_line(e)})"
    if ids.ndim != 1 or ids.dtype != id_dtype(len(vocab)):
        return f"{path} holds {ids.dtype} ids of shape {ids.shape}, not a list of {id_dtype(len(vocab))}"
    if len(ids) != total:
        return f"{path} holds {len(ids):,} ids, not the {total:,} that corpus.json records"
    digest, top = hashlib.sha256(), 0
    step = _HASHED_BYTES // ids.itemsize
    for start in range(0, len(ids), step):
        part = np.ascontiguousarray(ids[start : start + step])
        top = max(top, int(part.max()))
        digest.update(part.data)
    if top >= len(vocab):
        return f"{path} has id {top}, beyond the {len(vocab)} ids of the vocabulary"
    if digest.hexdigest() != info["ids_sha256"]:
        return f"{path} is not the file that was written (its ids differ from corpus.json's hash)"
    return None


def _val_problem(path: Path, info: dict) -> str | None:
    """What is wrong with the held-out text ``path``, as one phrase; None if nothing."""
    digest, chars = hashlib.sha256(), 0
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        with open(path, "rb") as f:
            while data := f.read(_HASHED_BYTES):
                digest.update(data)
                chars += len(decoder.decode(data))
            chars += len(decoder.decode(b"", True))
    except FileNotFoundError:
        return f"{path} is missing"
    except (OSError, UnicodeDecodeError) as e:
        return f"{path} is unreadable ({e})"
    if chars != info["val_chars"] or digest.hexdigest() != info["val_sha256"]:
        return f"{path} is not the held-out text that corpus.json records"
    return None
