"""The corpus encoded once, streaming, into a compact file of ids that training reads memory-mapped.

A corpus larger than memory never becomes one ``str``: :func:`encode` reads it twice as a
stream of chunks (:func:`charlm.text.corpus.read_chunks`).

- pass 1 counts the characters and notes where each code point first appears; the
  vocabulary is then the characters that appear before the train/val cut
  (:func:`charlm.text.corpus.split_point`), i.e. exactly ``Vocab.from_text(train_text)``;
- pass 2 writes the ids (uint8, uint16 or uint32 by vocabulary size, :func:`id_dtype`) to a
  ``.npy`` file, the held-out text to a text file, and hashes the UTF-8 bytes of the train and
  val parts (the same values as :func:`charlm.fsio.text_sha256` of the two texts).

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
them into the run folder. Pure numpy: no TensorFlow.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CharLMError
from ..fsio import replace_path
from ..text.codepoints import code_points
from ..text.corpus import split_point
from ..text.vocab import CHUNK_CHARS, Vocab

IDS_FILE = "ids.npy"
VAL_FILE = "val.txt"
_MAX_CODE_POINT = 0x10FFFF
_UNSEEN = np.iinfo(np.int64).max

Source = Callable[[], Iterator[str]]  # each call streams the text again, chunk by chunk


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds ids ``0 .. vocab_size - 1``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise ValueError(f"vocabulary of {vocab_size} ids")  # pragma: no cover - Unicode has fewer


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
        """What ``corpus.json`` records: sizes, the sha256 of the UTF-8 train and val text, and
        the files it was read from."""
        return {
            "train_chars": self.train_chars,
            "val_chars": self.val_chars,
            "train_sha256": self.train_sha256,
            "val_sha256": self.val_sha256,
            "sources": self.sources,
        }

    def place(self, folder) -> None:
        """Move the id file and the held-out text into ``folder`` as ids.npy and val.txt."""
        for path, name in ((self.ids_path, IDS_FILE), (self.val_path, VAL_FILE)):
            replace_path(path, Path(folder) / name)
        self.ids_path, self.val_path = Path(folder) / IDS_FILE, Path(folder) / VAL_FILE

    def discard(self) -> None:
        """Remove the files (a run that will not use them), and their folder if made for them and empty."""
        for path in (self.ids_path, self.val_path):
            Path(path).unlink(missing_ok=True)
        if self.made_folder and not any(self.ids_path.parent.iterdir()):
            self.ids_path.parent.rmdir()


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
    instead of the last ``val_fraction``) into temporary files in ``folder``. ``base``: the
    vocabulary of the run a fine-tuning starts from, and that run's name: the text's
    vocabulary is then that one, grown by the characters it lacks (:meth:`Vocab.grown`)."""
    folder = Path(folder)
    n, first = _scan(source(), _bar("reading", None, progress))
    cut = n if val_source is not None else split_point(n, val_fraction)
    vocab = _vocab_before(first, cut)
    if base is None:
        log(f"vocabulary: {len(vocab)} ids, <unk> and {_shown(vocab.chars[1:])}")
    else:
        vocab = _grown(*base, vocab, log)
    ids_path = folder / f".{IDS_FILE}.tmp-{os.getpid()}"
    val_path = folder / f".{VAL_FILE}.tmp-{os.getpid()}"
    made_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        texts = source() if val_source is None else _chain(source(), val_source())
        with open(ids_path, "wb") as ids, open(val_path, "w", encoding="utf-8", newline="") as val:
            written = _write(
                texts,
                vocab,
                cut,
                ids,
                val,
                _bar("encoding", n if val_source is None else None, progress),
            )
    except BaseException:
        EncodedCorpus(ids_path, val_path, vocab, 0, 0, "", "", made_folder).discard()
        raise
    total, train_sha256, val_sha256 = written
    return EncodedCorpus(
        ids_path, val_path, vocab, cut, total - cut, train_sha256, val_sha256, made_folder
    )


def _bar(what: str, total: int | None, progress: bool | None):
    from tqdm import tqdm

    return tqdm(
        desc=what,
        total=total,
        unit="char",
        unit_scale=True,
        dynamic_ncols=True,
        file=sys.stderr,
        disable=None if progress is None else not progress,
    )


def _chain(*iterators):
    for it in iterators:
        yield from it


def _pieces(chunks: Iterator[str]) -> Iterator[str]:
    """``chunks`` cut to at most ``CHUNK_CHARS`` characters each."""
    for chunk in chunks:
        for start in range(0, len(chunk), CHUNK_CHARS):
            yield chunk[start : start + CHUNK_CHARS]


def _scan(chunks: Iterator[str], bar) -> tuple[int, np.ndarray]:
    """Pass 1: the number of characters, and each code point's first position (``_UNSEEN``)."""
    first = np.full(_MAX_CODE_POINT + 1, _UNSEEN, dtype=np.int64)
    mark = np.zeros(_MAX_CODE_POINT + 1, dtype=bool)
    n, seen = 0, b""  # seen: the Latin-1 characters already found, as bytes
    with bar:
        for text in _pieces(chunks):
            latin = _latin1(text)
            if latin is not None:  # fast path: bytes.translate drops the characters already seen
                for byte in sorted(set(latin.translate(None, seen))):
                    first[byte] = n + latin.find(byte)
            else:
                cps = code_points(text)  # a piece: already cut small
                mark[cps] = True
                present = np.flatnonzero(mark)
                mark[present] = False
                new = present[first[present] == _UNSEEN]
                if len(new):  # rare after the first chunks
                    first[new] = n + _first_positions(cps, new, mark)
            seen = np.flatnonzero(first[:256] != _UNSEEN).astype(np.uint8).tobytes()
            n += len(text)
            bar.update(len(text))
    return n, first


def _latin1(text: str) -> bytes | None:
    """``text`` as Latin-1 bytes (one per character), or None if it has other characters."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _first_positions(cps: np.ndarray, new: np.ndarray, mark: np.ndarray) -> np.ndarray:
    """Where each code point of ``new`` (sorted, all present) first appears in ``cps``.

    A few: one scan each. Many (a first chunk of Chinese): sort the positions where they occur.
    ``mark`` is an all-False scratch table, left so.
    """
    if len(new) <= 128:
        return np.array([np.argmax(cps == cp) for cp in new], dtype=np.int64)
    mark[new] = True
    where = np.flatnonzero(mark[cps])
    mark[new] = False
    values, at = np.unique(cps[where], return_index=True)  # values == new
    return where[at]


def _vocab_before(first: np.ndarray, cut: int) -> Vocab:
    """The vocabulary of the first ``cut`` characters: those whose first position is before it."""
    seen = first < cut
    if seen[0xD800:0xE000].any():
        cp = 0xD800 + int(np.argmax(seen[0xD800:0xE000]))
        raise CharLMError(
            f"text has a lone surrogate U+{cp:04X} at character {int(first[cp])}, which is not valid Unicode;"
            " read the corpus with read_corpus (or decode it with errors='replace')"
        )
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


def _write(chunks: Iterator[str], vocab: Vocab, cut: int, ids, val, bar) -> tuple[int, str, str]:
    """Pass 2: write the ids after an ``.npy`` header and the text from ``cut`` on to ``val``;
    return the number of characters and the sha256 of the UTF-8 text before and after ``cut``."""
    dtype = id_dtype(len(vocab))
    ids.write(_npy_header(dtype, 10**15))  # a placeholder of the final header's size
    hashes, n = (hashlib.sha256(), hashlib.sha256()), 0
    # ids of the 256 Latin-1 characters, as Vocab.encode gives them: a bytes.translate table
    table = (
        vocab.encode("".join(map(chr, range(256)))).astype(np.uint8).tobytes()
        if dtype == np.uint8
        else None
    )
    with bar:
        for text in _pieces(chunks):
            latin = _latin1(text) if table is not None else None
            if latin is not None:
                ids.write(latin.translate(table))
            else:
                ids.write(vocab.encode(text).astype(dtype, copy=False).tobytes())
            at = min(max(cut - n, 0), len(text))
            for h, part in zip(hashes, (text[:at], text[at:]), strict=True):
                h.update(part.encode("utf-8", "surrogatepass"))
            val.write(text[at:])
            n += len(text)
            bar.update(len(text))
    header = _npy_header(dtype, n)
    assert len(header) == len(_npy_header(dtype, 10**15))
    ids.seek(0)
    ids.write(header)
    for f in (ids, val):
        f.flush()
        os.fsync(f.fileno())
    return n, hashes[0].hexdigest(), hashes[1].hexdigest()


def _npy_header(dtype: np.dtype, n: int) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
    )
    return buf.getvalue()


def _shown(chars: list[str]) -> str:
    """``"3 characters: 'abc'"``: how many, and :func:`_listed`."""
    return f"{len(chars)} characters: {_listed(chars)}"


def _listed(chars: list[str], limit: int = 60) -> str:
    """The characters as the user reads them: escapes for the invisible ones, cut after ``limit``."""
    more = f" ... ({len(chars) - limit} more)" if len(chars) > limit else ""
    return repr("".join(chars[:limit])) + more
