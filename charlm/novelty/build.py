"""Building the memorisation index (:mod:`charlm.novelty.index`): the suffix array of a text,
sorted by libdivsufsort (pydivsufsort), and the memory that takes, checked before building.

libdivsufsort sorts bytes, so a text's characters become their ids in its vocabulary in the
narrowest dtype that holds them: one byte for up to 255 distinct characters (English, code),
else two or four bytes, big-endian, whose byte order is the ids' order; for those, only the
suffixes that start on a character are kept::

    >>> ids = np.array([2, 1, 2, 1], dtype=np.uint8)          # "baba"
    >>> suffix_array(ids).tolist(), suffix_array(ids.astype(">u2")).tolist()
    ([3, 1, 2, 0], [3, 1, 2, 0])

With int32 positions that is 5 bytes a character (100 MB of English: 0.57 GB besides the
text); past 2**31 bytes positions are int64. No TensorFlow.
"""

from __future__ import annotations

import os

import numpy as np
from pydivsufsort import divsufsort

from ..errors import CharLMError

CHUNK = 1 << 22  # suffix-array entries handled at a time
OVERHEAD = 64 << 20  # bytes a build takes whatever the size: tables, chunks, numpy


def symbol_dtype(ids: int) -> np.dtype:
    """The dtype of a text's ids (``ids`` of them, 0 unused): a byte when they fit, else
    big-endian, whose bytes sort as the ids do (libdivsufsort sorts bytes).

    >>> symbol_dtype(100), symbol_dtype(1000)
    (dtype('uint8'), dtype('>u2'))
    """
    for dtype in ("u1", ">u2", ">u4"):
        if ids - 1 <= np.iinfo(np.dtype(dtype)).max:
            return np.dtype(dtype)
    raise ValueError(f"{ids} ids")


def suffix_array(symbols: np.ndarray) -> np.ndarray:
    """The start positions of the suffixes of ``symbols`` (uint8, or big-endian uint16 or
    uint32), in sorted order, a suffix before its extensions; int32, or int64 past 2**31
    bytes. libdivsufsort sorts the bytes; for wider symbols only the suffixes that start a
    symbol are kept.

    >>> suffix_array(np.array([2, 1, 2, 1], dtype=np.uint8)).tolist()  # "a" "aba" "ba" "baba"
    [3, 1, 2, 0]
    """
    width = symbols.dtype.itemsize
    if width > 1 and symbols.dtype.byteorder != ">":
        raise ValueError("symbols wider than a byte must be big-endian")
    if len(symbols) == 0:
        return np.zeros(0, dtype=np.int32)
    sa = divsufsort(np.ascontiguousarray(symbols).view(np.uint8))
    return sa if width == 1 else _symbol_starts(sa, width)


def _symbol_starts(sa: np.ndarray, width: int) -> np.ndarray:
    """The entries of the byte suffix array ``sa`` that start a symbol, as symbol positions:
    compacted in place a chunk at a time (no second array of its size), then copied out."""
    kept = 0
    for i in range(0, len(sa), CHUNK):
        part = sa[i : i + CHUNK]
        part = part[part % width == 0] // width
        sa[kept : kept + len(part)] = part
        kept += len(part)
    return sa[:kept].copy()


def memory_needed(chars: int, width: int) -> int:
    """Bytes that building the index of ``chars`` characters takes besides the text: the ids
    (``width`` bytes each), libdivsufsort's suffix array of their bytes (4 bytes an entry,
    8 past 2**31 bytes), its compacted copy for ids wider than a byte, and a fixed overhead.

    >>> round(memory_needed(100_000_000, 1) / 1e9, 2)  # 100 MB of English
    0.57
    """
    nbytes = chars * width
    entry = 4 if nbytes < 2**31 else 8
    return nbytes + nbytes * entry + (chars * entry if width > 1 else 0) + OVERHEAD


def available_memory() -> int | None:
    """Bytes of memory the machine can give now (Linux's MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(chars: int, ids: int, available: int | None = None) -> None:
    """Refuse, in one line, to index ``chars`` characters of ``ids`` distinct ids when that
    needs more memory than ``available`` (default: what the machine has now).

    >>> check_memory(10**9, 100, available=2 * 2**30)
    Traceback (most recent call last):
    charlm.errors.CharLMError: indexing the 1,000,000,000 characters of the training text \
for --novelty needs about 4.7 GiB of memory, and 2.0 GiB is available: free some memory, \
or check the sample on a machine with more
    """
    need = memory_needed(chars, symbol_dtype(ids).itemsize)
    available = available_memory() if available is None else available
    if available is not None and need > available:
        raise CharLMError(
            f"indexing the {chars:,} characters of the training text for "
            f"--novelty needs about {need / 2**30:.1f} GiB of memory, and "
            f"{available / 2**30:.1f} GiB is available: free some memory, or "
            "check the sample on a machine with more"
        )
