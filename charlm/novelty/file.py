"""The memorisation index on disk: one file that loads in no time whatever its size.

A JSON header (format, version, the sha256 of the indexed text, its characters) padded to 64
bytes, then the suffix array and the text's ids as ``.npy`` records one after the other. The
arrays are memory-mapped when loaded, so only the pages a query touches are read; nothing is
ever unpickled. Written atomically (:func:`charlm.fsio.atomic_file`)::

    write_index(run_dir / INDEX_FILE, sha256, vocab, sa, ids)
    vocab, ids, sa, sha256 = read_index(run_dir / INDEX_FILE)

No TensorFlow.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..errors import CharLMError
from ..fsio import atomic_file
from ..text.vocab import Vocab
from .build import symbol_dtype

FORMAT = "charlm-novelty-index"
VERSION = 2  # 1 was a .npz of a shallow sort
INDEX_FILE = "novelty-index.bin"  # the index's name in a run directory


def write_index(path, sha256: str, vocab: Vocab, sa: np.ndarray, ids: np.ndarray) -> None:
    """Write the index of a text to ``path`` atomically; one ``CharLMError`` line if it cannot."""
    meta = json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "sha256": sha256,
            "chars": [ord(c) for c in vocab.chars[1:]],
        }
    )
    meta += " " * (-len(meta) % 64)  # the arrays after it start aligned
    try:
        with atomic_file(path) as f:
            for array in (np.frombuffer(meta.encode("ascii"), np.uint8), sa, ids):
                np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)
    except OSError as e:
        raise CharLMError(
            f"{path}: cannot write the novelty index ({e.strerror}); check the disk and the folder"
        ) from None


def read_index(path) -> tuple[Vocab, np.ndarray, np.ndarray, str]:
    """``(vocab, ids, sa, sha256)`` from an index file, the arrays memory-mapped. Their values
    are not read through (that would read the whole file): a damaged file gives wrong
    answers (queries clip every position), never an error past this check."""
    way_out = "delete it and it is built again"
    try:
        meta, sa, ids = _read_records(path)
        problem = _index_problem(meta, sa, ids)
        vocab = None if problem else Vocab([chr(c) for c in meta["chars"]])
    except FileNotFoundError:
        raise CharLMError(f"{path}: no such novelty index") from None
    except (OSError, ValueError, EOFError) as e:
        raise CharLMError(f"{path}: not a readable novelty index ({e}); {way_out}") from None
    if problem:
        raise CharLMError(f"{path}: {problem}; {way_out}")
    assert vocab is not None  # made whenever there is no problem
    return vocab, ids, sa, meta["sha256"]


def _read_records(path):
    """The header (a dict) and the memory-mapped suffix array and ids of an index file."""
    with open(path, "rb") as f:
        meta = np.lib.format.read_array(f, allow_pickle=False)
        places = [_next_record(f), _next_record(f)]
        size = f.seek(0, os.SEEK_END)
    if places[-1][0] + places[-1][1] * places[-1][2].itemsize != size:
        raise ValueError("the file is cut short or has more after its arrays")
    if meta.dtype != np.uint8 or meta.ndim != 1:
        raise ValueError("no header")
    arrays = [
        np.memmap(path, dtype, mode="r", offset=offset, shape=(count,))
        if count
        else np.zeros(0, dtype)
        for offset, count, dtype in places
    ]
    return json.loads(meta.tobytes().decode("ascii")), *arrays


def _next_record(f):
    """``(offset, count, dtype)`` of the 1-D ``.npy`` record at ``f``'s position; skips it."""
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy version {version}")
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, dtype = read(f)
    if len(shape) != 1 or dtype.hasobject:
        raise ValueError("unexpected arrays")
    offset = f.tell()
    f.seek(offset + shape[0] * dtype.itemsize)
    return offset, shape[0], dtype


def _index_problem(meta, sa, symbols) -> str | None:
    """Why the header and arrays read from a file are not a novelty index, or None."""
    want = {"format", "version", "sha256", "chars"}
    if not isinstance(meta, dict) or set(meta) != want:
        return f"expected a header with {sorted(want)}"
    if meta["format"] != FORMAT:
        return f"not a {FORMAT} file"
    if meta["version"] != VERSION:
        return f"unsupported version {meta['version']!r} (this charlm reads {VERSION})"
    chars = meta["chars"]
    if (
        not isinstance(meta["sha256"], str)
        or not isinstance(chars, list)
        or not all(type(c) is int and 0 <= c <= 0x10FFFF for c in chars)
    ):
        return "unexpected header values"
    if sa.dtype not in (np.int32, np.int64) or symbols.dtype != symbol_dtype(len(chars) + 1):
        return "unexpected array types"
    if len(sa) != len(symbols):
        return "the suffix array and the text differ in length"
    return None
