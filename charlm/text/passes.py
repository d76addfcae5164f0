"""The two readings of the corpus that :func:`charlm.text.idfile.encode` makes, and the check
that they saw the same text.

Pass 1 (:func:`first_reading`) counts the characters, notes where each code point first
appears and hashes the UTF-8 text; a source that cannot be read twice (a pipe, a FIFO,
standard input) is copied to a spool file as it goes. Pass 2 (:func:`write_ids`) writes the
ids and the held-out text, over a second reading that :func:`agreeing` checks against the
first, so a corpus that changed in between is refused instead of giving a run whose sizes,
vocabulary and ids disagree::

    >>> seen = first_reading(iter(["ab", "c"]))
    >>> seen.chars, "".join(agreeing(iter(["abc"]), seen, "t.txt"))
    (3, 'abc')
    >>> list(agreeing(iter(["abd"]), seen, "t.txt"))
    Traceback (most recent call last):
    charlm.errors.CharLMError: t.txt changed while it was read (3 characters both times, but \
not the same text); nothing was written; train again once it stops changing

Pure numpy: no TensorFlow.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import CharLMError
from ..fsio import fault_point, progress_bar
from .codepoints import code_points
from .vocab import CHUNK_CHARS, Vocab

_MAX_CODE_POINT = 0x10FFFF
_UNSEEN = np.iinfo(np.int64).max
_SPOOL_BYTES = 1 << 22  # bytes read back from the spool at a time


@dataclass
class Seen:
    """What pass 1 saw: the number of characters, the sha256 of their UTF-8, and each code
    point's first position (``_UNSEEN`` if absent)."""

    chars: int
    sha256: str
    first: np.ndarray


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, lone surrogates passed through (as :func:`charlm.fsio.text_sha256`)."""
    return text.encode("utf-8", "surrogatepass")


def pieces(chunks: Iterator[str]) -> Iterator[str]:
    """``chunks`` cut to at most ``CHUNK_CHARS`` characters each."""
    for chunk in chunks:
        for start in range(0, len(chunk), CHUNK_CHARS):
            yield chunk[start : start + CHUNK_CHARS]


def first_reading(chunks: Iterator[str], spool=None, bar=None) -> Seen:
    """Pass 1 over ``chunks``; each piece's UTF-8 is also written to ``spool`` (a binary file)
    if given. ``bar``: a tqdm progress bar (default: none)."""
    bar = bar if bar is not None else _no_bar()
    first = np.full(_MAX_CODE_POINT + 1, _UNSEEN, dtype=np.int64)
    mark = np.zeros(_MAX_CODE_POINT + 1, dtype=bool)
    n, seen, digest = 0, b"", hashlib.sha256()  # seen: the Latin-1 characters found, as bytes
    with bar:
        for text in pieces(chunks):
            data = utf8(text)
            digest.update(data)
            if spool is not None:
                spool.write(data)
            latin = latin1(text)
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
    return Seen(n, digest.hexdigest(), first)


def latin1(text: str) -> bytes | None:
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


def spooled(path) -> Iterator[str]:
    """The text pass 1 copied to the spool file ``path``, read back chunk by chunk."""
    decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
    with open(path, "rb") as f:
        while data := f.read(_SPOOL_BYTES):
            yield decoder.decode(data)
    yield decoder.decode(b"", True)


def agreeing(chunks: Iterator[str], seen: Seen, name: str) -> Iterator[str]:
    """``chunks`` (pass 2's reading), checked against pass 1's: the same number of characters
    and the same sha256, else one line naming ``name``. Stops as soon as it reads more."""
    n, digest = 0, hashlib.sha256()
    try:
        for text in chunks:
            n += len(text)
            if n > seen.chars:
                raise CharLMError(_changed(name, f"{seen.chars:,} characters at first, more"))
            digest.update(utf8(text))
            yield text
    finally:
        getattr(chunks, "close", lambda: None)()
    if n != seen.chars:
        raise CharLMError(_changed(name, f"{seen.chars:,} characters at first, {n:,}"))
    if digest.hexdigest() != seen.sha256:
        raise CharLMError(_changed(name, f"{n:,} characters both times, but not the same text"))


def _changed(name: str, counts: str) -> str:
    again = "" if "both times" in counts else " when read again"
    return (
        f"{name} changed while it was read ({counts}{again}); nothing was written;"
        f" train again once it stops changing"
    )


def write_ids(chunks: Iterator[str], vocab: Vocab, cut: int, ids, val, bar) -> dict:
    """Pass 2: write the ids after an ``.npy`` header and the text from ``cut`` on to ``val``.

    Returns the number of characters (``chars``), the sha256 of the UTF-8 text before and
    after ``cut`` (``train_sha256``, ``val_sha256``) and of the ids' bytes after the header
    (``ids_sha256``: checked before the file is used again, charlm.text.idfile.ids_match).
    """
    dtype = id_dtype(len(vocab))
    ids.write(npy_header(dtype, 10**15))  # a placeholder of the final header's size
    train, held_out, written, n = hashlib.sha256(), hashlib.sha256(), hashlib.sha256(), 0
    table = _latin1_ids(vocab) if dtype == np.uint8 else None
    with bar:
        for text in pieces(chunks):
            latin = latin1(text) if table is not None else None
            out = (
                latin.translate(table)
                if latin is not None
                else vocab.encode(text).astype(dtype, copy=False).tobytes()
            )
            ids.write(out)
            written.update(out)
            fault_point("ids-encoding")  # a test stops here to signal a process mid-encoding
            at = min(max(cut - n, 0), len(text))
            train.update(utf8(text[:at]))
            held_out.update(utf8(text[at:]))
            val.write(text[at:])
            n += len(text)
            bar.update(len(text))
    _finish(ids, val, dtype, n)
    return {
        "chars": n,
        "train_sha256": train.hexdigest(),
        "val_sha256": held_out.hexdigest(),
        "ids_sha256": written.hexdigest(),
    }


def _latin1_ids(vocab: Vocab) -> bytes:
    """The ids of the 256 Latin-1 characters, as Vocab.encode gives them: a bytes.translate table."""
    return vocab.encode("".join(map(chr, range(256)))).astype(np.uint8).tobytes()


def _finish(ids, val, dtype: np.dtype, n: int) -> None:
    """Write the final ``.npy`` header (``n`` ids) over the placeholder, and fsync both files."""
    header = npy_header(dtype, n)
    assert len(header) == len(npy_header(dtype, 10**15))
    ids.seek(0)
    ids.write(header)
    for f in (ids, val):
        f.flush()
        os.fsync(f.fileno())


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds ids ``0 .. vocab_size - 1``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise ValueError(f"vocabulary of {vocab_size} ids")  # pragma: no cover - Unicode has fewer


def npy_header(dtype: np.dtype, n: int) -> bytes:
    """The ``.npy`` (version 1.0) header of a 1-D array of ``n`` values of ``dtype``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
    )
    return buf.getvalue()


def _no_bar():
    return progress_bar(False)
