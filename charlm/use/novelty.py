"""Memorisation check: how much of a generated sample was copied verbatim from the training text.

For a sample it reports the longest substring that occurs verbatim in the training text (and
where: character offset, line and column), and the share of the sample's n-grams (n = 20 by
default) that occur verbatim in it::

    >>> index = NoveltyIndex("the cat sat on the mat\\nthe dog sat on the log\\n")
    >>> index.longest_match("a dog sat on the mat")
    Match(length=16, offset=26, start=1)
    >>> index.copied_ngram_share("a dog sat on the mat", n=5)
    0.9375

The training text is indexed once, in numpy: a suffix array. A first sort orders the
suffixes by their first few characters (two passes of an in-place ``np.sort`` over uint64
values that pack the characters and the position); then prefix doubling (``np.argsort`` over
int64 keys ``(group, rank of the suffix h further on)``, only over the suffixes still tied)
deepens it until no more than ``max_group`` suffixes share their first ``D`` characters.
A 100 MB corpus that is one text repeated 90 times stops at D = 40: about 35 s of CPU and
4.4 GB peak RSS (``benchmarks/bench_novelty.py``). Queries are exact whatever ``D`` is: each
position of the sample is looked up by a vectorised binary search over its next ``D``
characters, and matches longer than ``D`` are followed along "diagonals" (text offset -
sample offset) through runs of consecutive sample positions found on the same diagonal;
a 1,000-character sample takes tens of milliseconds. No TensorFlow.

The index can be saved next to a run (plain numpy ``.npz``, no pickle) and is tagged with the
sha256 of the text it indexes, so :meth:`NoveltyIndex.cached` builds it once per run.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import NamedTuple

import numpy as np

from ..errors import CharLMError
from ..fsio import replace_path, temp_name

DEFAULT_N = 20  # the n of the n-gram share
MAX_GROUP = 1024  # stop sorting deeper once no more than this many suffixes are tied
MAX_DEPTH = 1024  # ... or once the suffixes are sorted by this many characters
FORMAT = "charlm-novelty-index"
VERSION = 1
CHUNK_CHARS = 1 << 22  # characters converted to code points at a time
QUERY_CELLS = 1 << 21  # (rows x characters) compared at a time by a query

_END = 0  # the text's symbol past its end: smaller than every character (symbols are 1..A)
_PAST_SAMPLE = -1  # the sample's symbol past its end: equals nothing in the text
_UNSEEN = -2  # a sample character the training text never contains
_ABOVE_ALL = np.iinfo(np.int32).max  # pads a pattern to find the end of its range


class Match(NamedTuple):
    """The longest verbatim copy: ``length`` characters of the sample from ``start`` occur
    in the training text at ``offset`` (the first such offset). ``offset`` and ``start`` are
    None when no character of the sample occurs in the text (``length`` 0)."""

    length: int
    offset: int | None
    start: int | None


def _code_points(text: str):
    """Yield ``(start, uint32 code points)`` for chunks of ``text`` (lone surrogates pass)."""
    for start in range(0, len(text), CHUNK_CHARS):
        chunk = text[start:start + CHUNK_CHARS].encode("utf-32-le", "surrogatepass")
        yield start, np.frombuffer(chunk, dtype=np.uint32)


def _symbols(text: str):
    """``(alphabet, symbols)``: the distinct code points of ``text`` sorted (uint32), and
    the text as symbols 1..len(alphabet) in the smallest unsigned dtype that holds them.

    >>> _symbols("abca")
    (array([97, 98, 99], dtype=uint32), array([1, 2, 3, 1], dtype=uint8))
    """
    present = np.zeros(0x110000, dtype=bool)
    for _, cps in _code_points(text):
        present[cps] = True
    alphabet = np.flatnonzero(present).astype(np.uint32)
    dtype = np.min_scalar_type(len(alphabet))
    table = np.zeros(int(alphabet[-1]) + 1 if len(alphabet) else 1, dtype=dtype)
    table[alphabet] = np.arange(1, len(alphabet) + 1)
    symbols = np.empty(len(text), dtype=dtype)
    for start, cps in _code_points(text):
        symbols[start:start + len(cps)] = table[cps]
    return alphabet, symbols


# -- building the suffix array ----------------------------------------------------------------

def suffix_array(symbols, alphabet_size: int, max_group: int = MAX_GROUP,
                 max_depth: int = MAX_DEPTH):
    """``(sa, depth)``: the start positions of the suffixes of ``symbols`` (values
    1..alphabet_size) sorted by their first ``depth`` symbols, past-the-end counting as
    smaller than any symbol. Sorting deepens (prefix doubling) until no more than
    ``max_group`` suffixes share their first ``depth`` symbols, or ``depth == max_depth``,
    or all are distinct. Ties keep no particular order.

    >>> sa, depth = suffix_array(np.array([2, 1, 2, 1]), 2, max_group=1)   # "baba"
    >>> sa.tolist()                                  # "a", "aba", "ba", "baba"
    [3, 1, 2, 0]
    """
    symbols = np.asarray(symbols)
    if symbols.dtype.kind != "u":
        symbols = symbols.astype(np.min_scalar_type(alphabet_size))
    n = len(symbols)
    if n == 0:
        return np.zeros(0, dtype=np.int32), 0
    index = np.int32 if n + max_depth < 2**31 else np.int64
    sa, starts, depth = _first_sort(symbols, int(alphabet_size).bit_length(), max_depth, index)
    # rank[p]: where the group of the suffix at p starts in sa; -1 past the end
    rank = np.full(n + max_depth, -1, dtype=index)
    tied, heads, biggest = _rank_groups(np.arange(n, dtype=index), starts, sa, rank)
    del starts
    while len(tied) and biggest > max_group and depth < max_depth:
        h = min(depth, max_depth - depth)
        tied, heads, biggest = _deepen(sa, rank, tied, heads, h)
        depth += h
    return sa, depth


def _first_sort(symbols, bits: int, max_depth: int, index):
    """``(sa, starts, depth)``: the suffixes sorted by their first ``depth`` symbols, and
    where their groups start. Two passes (least significant first) of an in-place
    ``np.sort`` of uint64 values ``key << w | position``, ``key`` the next ``(64 - w) // bits``
    symbols packed; sorting values is several times faster than ``np.argsort``."""
    n = len(symbols)
    w = max(1, (n - 1).bit_length())
    per_pass = (64 - w) // bits
    depth = max(1, min(2 * per_pass, max_depth))
    sa = later_keys = None
    for start in reversed(range(0, depth, per_pass)):
        key = _packed(symbols, start, min(per_pass, depth - start), bits)
        if sa is not None:
            key = key[sa]
        for i in range(0, n, CHUNK_CHARS):  # key << w | position, without an n-long temporary
            key[i:i + CHUNK_CHARS] <<= np.uint64(w)
            key[i:i + CHUNK_CHARS] |= np.arange(i, min(i + CHUNK_CHARS, n), dtype=np.uint64)
        key.sort()
        moved = (key & np.uint64((1 << w) - 1)).astype(index)
        key >>= np.uint64(w)
        sa = moved if sa is None else sa[moved]
        starts = np.ones(n, dtype=bool)
        np.not_equal(key[1:], key[:-1], out=starts[1:])
        if later_keys is not None:
            later_keys = later_keys[moved]
            starts[1:] |= later_keys[1:] != later_keys[:-1]
        later_keys = key
        del moved
    return sa, starts, depth


def _packed(symbols, start: int, count: int, bits: int):
    """uint64 keys: for each position p the symbols ``p + start .. p + start + count - 1``
    packed ``bits`` each, the first the most significant, 0 past the end."""
    n = len(symbols)
    key = np.zeros(n, dtype=np.uint64)
    for k in range(start, start + count):
        key <<= np.uint64(bits)
        if k < n:
            key[:n - k] |= symbols[k:]
    return key


def _rank_groups(where, starts, sa, rank):
    """Give each suffix ``sa[where]`` (``where`` ascending and made of whole groups, that
    start where ``starts`` is True) the rank of its group: the index in ``sa`` where the
    group starts. Returns ``where`` and the ranks of the suffixes still tied, and the size
    of the biggest group."""
    first = np.flatnonzero(starts)
    sizes = np.diff(first, append=len(where))
    heads = np.repeat(where[first], sizes)
    rank[sa[where]] = heads
    tied = np.repeat(sizes > 1, sizes)
    return where[tied], heads[tied], int(sizes.max())


def _deepen(sa, rank, tied, heads, h: int):
    """One round of prefix doubling over the tied suffixes ``sa[tied]`` (whose groups start
    at ``heads``): sort each group by the rank of the suffix ``h`` further on, so that
    groups sorted by ``depth >= h`` symbols become sorted by ``depth + h``. Returns what
    :func:`_rank_groups` returns."""
    pos = sa[tied]
    key = np.multiply(heads, np.int64(len(sa) + 1), dtype=np.int64)
    key += rank[pos + h]
    key += 1  # the suffix h further on is past the end: 0, sorted first
    order = np.argsort(key)
    key = key[order]
    sa[tied] = pos[order]
    del pos, order
    starts = np.ones(len(key), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=starts[1:])
    del key
    return _rank_groups(tied, starts, sa, rank)


# -- comparing windows ------------------------------------------------------------------------

def _windows(values, starts, width: int, pad: int):
    """Rows of ``width`` values of ``values`` from each of ``starts`` (int32), ``pad`` past
    the end."""
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(width)
    out = values[np.minimum(idx, len(values) - 1)].astype(np.int32)
    out[idx >= len(values)] = pad
    return out


def _first_difference(a, b):
    """For each row: the length of the common prefix of ``a`` and ``b``, and whether ``a``
    is smaller at the first difference (False where the rows are equal)."""
    if a.shape[1] == 0:
        return np.zeros(len(a), dtype=np.int64), np.zeros(len(a), dtype=bool)
    differ = a != b
    first = differ.argmax(axis=1)
    rows = np.arange(len(a))
    some = differ[rows, first]
    return np.where(some, first, a.shape[1]), some & (a[rows, first] < b[rows, first])


def _chunks(count: int, width: int):
    """Slices over ``count`` rows, each of at most ``QUERY_CELLS`` cells of ``width``."""
    step = max(1, QUERY_CELLS // max(width, 1))
    return [slice(i, i + step) for i in range(0, count, step)]


# -- the index --------------------------------------------------------------------------------

class NoveltyIndex:
    """The training text, indexed for verbatim-copy queries. Build it once, query it often.

    >>> index = NoveltyIndex("First Citizen:\\nBefore we proceed any further, hear me speak.\\n")
    >>> index.longest_match("Second Citizen:\\nBefore we go")
    Match(length=20, offset=5, start=6)
    >>> round(index.copied_ngram_share("Second Citizen:\\nBefore we go", n=8), 3)
    0.619

    ``max_group`` and ``max_depth`` trade build time against query time (see
    :func:`suffix_array`); answers do not depend on them. ``sha256`` is the text's
    :func:`charlm.runs.rundir.text_sha256` if the caller has it already (computed otherwise).
    """

    def __init__(self, text: str, *, max_group: int = MAX_GROUP, max_depth: int = MAX_DEPTH,
                 sha256: str | None = None):
        alphabet, symbols = _symbols(text)
        sa, depth = suffix_array(symbols, len(alphabet), max_group, max_depth)
        self._set(alphabet, symbols, sa, depth, sha256 or _text_sha256(text))

    def _set(self, alphabet, symbols, sa, depth: int, sha256: str) -> None:
        self.alphabet, self.symbols, self.sa = alphabet, symbols, sa
        self.depth, self.sha256 = int(depth), sha256
        self._newlines = None

    def __len__(self) -> int:
        """Characters of the indexed text."""
        return len(self.symbols)

    def __repr__(self) -> str:
        return (f"NoveltyIndex({len(self):,} chars, {len(self.alphabet)} distinct, "
                f"sorted to depth {self.depth})")

    # -- queries ---------------------------------------------------------------------------

    def matching_statistics(self, sample: str) -> np.ndarray:
        """For each position ``j`` of ``sample``: the length of the longest prefix of
        ``sample[j:]`` that occurs in the text (int64 array of ``len(sample)``).

        >>> NoveltyIndex("abcab").matching_statistics("cabx").tolist()
        [3, 2, 1, 0]
        """
        return self._matches(self._encode(sample))[0]

    def longest_match(self, sample: str) -> Match:
        """The longest substring of ``sample`` that occurs verbatim in the text: the first
        such in the sample, at its first offset in the text.

        >>> NoveltyIndex("hello world").longest_match("yellow")
        Match(length=4, offset=1, start=1)
        """
        q = self._encode(sample)
        return self._longest(q, *self._matches(q))

    def copied_ngram_share(self, sample: str, n: int = DEFAULT_N) -> float:
        """The share of the ``n``-grams of ``sample`` (all ``len(sample) - n + 1`` of them,
        overlapping) that occur verbatim in the text; 0.0 for a sample shorter than ``n``.

        >>> NoveltyIndex("abcdef").copied_ngram_share("abcxdef", n=3)
        0.4
        """
        return self.report(sample, n)["copied_ngram_share"]

    def report(self, sample: str, n: int = DEFAULT_N) -> dict:
        """Everything about one sample, as plain JSON-ready data; :func:`format_report`
        says it in one line.

        >>> r = NoveltyIndex("to be or not to be").report("not to see", n=4)
        >>> r["longest_match"], r["longest_match_text"], r["copied_ngrams"], r["ngrams"]
        (7, 'not to ', 4, 7)
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        q = self._encode(sample)
        lengths, offsets = self._matches(q)
        match = self._longest(q, lengths, offsets)
        line, column = self.line_and_column(match.offset) if match.length else (None, None)
        ngrams = max(0, len(sample) - n + 1)
        copied = int(np.count_nonzero(lengths[:ngrams] >= n))
        return {
            "chars": len(sample), "longest_match": match.length,
            "longest_match_text": sample[match.start:match.start + match.length] if match.length
            else "",
            "offset": match.offset, "line": line, "column": column, "sample_start": match.start,
            "n": n, "ngrams": ngrams, "copied_ngrams": copied,
            "copied_ngram_share": copied / ngrams if ngrams else 0.0,
        }

    def line_and_column(self, offset: int) -> tuple[int, int]:
        """1-based line and column of character ``offset`` of the text.

        >>> NoveltyIndex("ab\\ncd").line_and_column(4)
        (2, 2)
        """
        if self._newlines is None:
            nl = int(np.searchsorted(self.alphabet, 10))
            found = nl < len(self.alphabet) and self.alphabet[nl] == 10
            self._newlines = np.flatnonzero(self.symbols == nl + 1) if found else np.zeros(0, np.int64)
        line = int(np.searchsorted(self._newlines, offset))
        start = int(self._newlines[line - 1]) + 1 if line else 0
        return line + 1, offset - start + 1

    # -- how queries work ------------------------------------------------------------------

    def _encode(self, sample: str):
        """The sample as int32 symbols of the text's alphabet, ``_UNSEEN`` where it has none."""
        cps = np.frombuffer(sample.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        at = np.searchsorted(self.alphabet, cps)
        known = at < len(self.alphabet)
        known[known] = self.alphabet[at[known]] == cps[known]
        return np.where(known, at + 1, _UNSEEN).astype(np.int32)

    def _matches(self, q):
        """Matching statistics of the encoded sample ``q``, and for the positions whose
        match is ``depth`` or longer the first text offset of that match (else -1)."""
        lengths = np.zeros(len(q), dtype=np.int64)
        offsets = np.full(len(q), -1, dtype=np.int64)
        if len(q) == 0 or len(self) == 0:
            return lengths, offsets
        for rows in _chunks(len(q), self.depth):
            pattern = _windows(q, np.arange(len(q))[rows], self.depth, _PAST_SAMPLE)
            lengths[rows] = self._longest_prefix(pattern, self._count_below(pattern))
        deep = np.flatnonzero(lengths == self.depth)
        if len(deep):
            self._follow_diagonals(q, deep, lengths, offsets)
        return lengths, offsets

    def _count_below(self, pattern, or_equal: bool = False):
        """For each row of ``pattern`` (``depth`` wide): how many suffixes sort before it
        (binary search over the suffix array; with ``or_equal``, also those equal to it)."""
        n = len(self.sa)
        lo = np.zeros(len(pattern), dtype=np.int64)
        hi = np.full(len(pattern), n, dtype=np.int64)
        for _ in range(n.bit_length()):
            mid = (lo + hi) // 2
            text = _windows(self.symbols, self.sa[np.minimum(mid, n - 1)], self.depth, _END)
            common, less = _first_difference(text, pattern)
            if or_equal:
                less |= common == self.depth
            active = lo < hi
            lo = np.where(active & less, mid + 1, lo)
            hi = np.where(active & ~less, mid, hi)
        return lo

    def _longest_prefix(self, pattern, below):
        """The longest common prefix of each row of ``pattern`` with any suffix: it is
        shared with a neighbour of the pattern's place ``below`` in the suffix array."""
        n = len(self.sa)
        best = np.zeros(len(pattern), dtype=np.int64)
        for neighbour in (below - 1, below):
            inside = (neighbour >= 0) & (neighbour < n)
            text = _windows(self.symbols, self.sa[np.clip(neighbour, 0, n - 1)], self.depth, _END)
            common, _ = _first_difference(text, pattern)
            best = np.maximum(best, np.where(inside, common, 0))
        return best

    def _follow_diagonals(self, q, deep, lengths, offsets) -> None:
        """Exact lengths (and first offsets) for the positions ``deep`` whose next ``depth``
        characters all occur in the text. An occurrence of the window at ``j`` at text
        offset ``p`` lies on diagonal ``p - j``; a match of ``L >= depth`` characters is a
        run of consecutive ``j`` on one diagonal, plus fewer than ``depth`` characters."""
        j, diagonal = self._occurrences(q, deep)
        new_run = np.ones(len(j), dtype=bool)
        new_run[1:] = (diagonal[1:] != diagonal[:-1]) | (j[1:] != j[:-1] + 1)
        run = np.cumsum(new_run) - 1
        first = np.flatnonzero(new_run)
        end_j = j[np.append(first[1:], len(j)) - 1]
        tail = self._common_prefix(diagonal[first] + end_j + self.depth, q, end_j + self.depth,
                                   self.depth - 1)
        length = end_j[run] - j + self.depth + tail[run]
        offset = diagonal + j
        best = np.lexsort((offset, -length, j))
        keep = np.ones(len(best), dtype=bool)
        keep[1:] = j[best][1:] != j[best][:-1]
        best = best[keep]
        lengths[j[best]], offsets[j[best]] = length[best], offset[best]

    def _occurrences(self, q, deep):
        """Every (sample position, diagonal) pair where the ``depth`` characters of the
        sample at a position of ``deep`` occur in the text, sorted by diagonal, then position."""
        below = np.zeros(len(deep), dtype=np.int64)
        upto = np.zeros(len(deep), dtype=np.int64)
        for rows in _chunks(len(deep), self.depth):
            pattern = _windows(q, deep[rows], self.depth, _PAST_SAMPLE)
            below[rows] = self._count_below(pattern)
            upto[rows] = self._count_below(pattern, or_equal=True)
        counts = upto - below
        j = np.repeat(deep, counts)
        first = np.repeat(below - (np.cumsum(counts) - counts), counts)
        diagonal = self.sa[first + np.arange(len(j))].astype(np.int64) - j
        order = np.lexsort((j, diagonal))
        return j[order], diagonal[order]

    def _common_prefix(self, text_starts, q, sample_starts, width: int):
        """For each pair of starts: how many of the next ``width`` characters of the text
        and of the sample ``q`` agree before the first difference."""
        out = np.zeros(len(text_starts), dtype=np.int64)
        for rows in _chunks(len(text_starts), width):
            text = _windows(self.symbols, text_starts[rows], width, _END)
            sample = _windows(q, sample_starts[rows], width, _PAST_SAMPLE)
            out[rows] = _first_difference(text, sample)[0]
        return out

    def _longest(self, q, lengths, offsets) -> Match:
        """The first longest match, at its first offset in the text."""
        if len(lengths) == 0 or lengths.max() == 0:
            return Match(0, None, None)
        start = int(lengths.argmax())
        length = int(lengths[start])
        if length >= self.depth:
            return Match(length, int(offsets[start]), start)
        word = q[start:start + length]
        pad = self.depth - length
        low = np.concatenate([word, np.full(pad, _PAST_SAMPLE, np.int32)])[None]
        high = np.concatenate([word, np.full(pad, _ABOVE_ALL, np.int32)])[None]
        found = self.sa[int(self._count_below(low)[0]):int(self._count_below(high)[0])]
        return Match(length, int(found.min()), start)

    # -- on disk ---------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the index to ``path`` (a plain-numpy ``.npz``) atomically::

            index.save("runs/latest/" + INDEX_FILE)
        """
        tmp = temp_name(path)
        try:
            with open(tmp, "wb") as f:
                np.savez(f, format=np.array(FORMAT), version=np.array(VERSION),
                         sha256=np.array(self.sha256), depth=np.array(self.depth),
                         alphabet=self.alphabet, symbols=self.symbols, sa=self.sa)
                f.flush()
                os.fsync(f.fileno())
            replace_path(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise CharLMError(f"{path}: cannot write the novelty index ({e.strerror}); "
                              "check the disk and the folder") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path) -> "NoveltyIndex":
        """Read an index written by :meth:`save` (never unpickles anything)."""
        way_out = "delete it and it is built again"
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise CharLMError(f"{path}: no such novelty index") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise CharLMError(f"{path}: not a readable novelty index ({e}); {way_out}") from None
        problem = _index_problem(arrays)
        if problem:
            raise CharLMError(f"{path}: {problem}; {way_out}")
        index = cls.__new__(cls)
        index._set(arrays["alphabet"], arrays["symbols"], arrays["sa"], int(arrays["depth"]),
                   str(arrays["sha256"]))
        return index

    @classmethod
    def cached(cls, text: str, path, *, sha256: str | None = None, **options) -> "NoveltyIndex":
        """The index of ``text`` from ``path`` if it is there and was built from this very
        text (same sha256), else built now and saved there. ``sha256``: the text's, if known
        (corpus.json's ``train_sha256``), to save hashing it again::

            index = NoveltyIndex.cached(train_text, run_dir / INDEX_FILE)
        """
        sha256 = sha256 or _text_sha256(text)
        index = cls.load_matching(path, sha256)
        if index is None:
            index = cls(text, sha256=sha256, **options)
            index.save(path)
        return index

    @classmethod
    def load_matching(cls, path, sha256: str) -> "NoveltyIndex | None":
        """The index saved at ``path`` if it is readable and was built from the text whose
        sha256 is ``sha256``; else None (a missing, broken or stale file is rebuilt)."""
        if not os.path.exists(path):
            return None
        try:
            index = cls.load(path)
        except CharLMError:
            return None
        return index if index.sha256 == sha256 else None


INDEX_FILE = "novelty-index.npz"  # the index's name in a run directory


def _text_sha256(text: str) -> str:
    from ..runs.rundir import text_sha256  # the one definition; imported late: no import cycle

    return text_sha256(text)


def _index_problem(arrays: dict) -> str | None:
    """Why ``arrays`` (read from a ``.npz``) is not a novelty index, or None."""
    want = {"format", "version", "sha256", "depth", "alphabet", "symbols", "sa"}
    if set(arrays) != want:
        return f"expected the arrays {sorted(want)}, found {sorted(arrays)}"
    if arrays["format"].shape != () or str(arrays["format"]) != FORMAT:
        return f"not a {FORMAT} file"
    if arrays["version"].shape != () or int(arrays["version"]) != VERSION:
        return f"unsupported version {arrays['version']} (this charlm reads {VERSION})"
    sa, symbols, alphabet = arrays["sa"], arrays["symbols"], arrays["alphabet"]
    if sa.dtype.kind != "i" or symbols.dtype.kind != "u" or alphabet.dtype != np.uint32:
        return "unexpected array types"
    if sa.shape != symbols.shape or sa.ndim != 1 or alphabet.ndim != 1:
        return "the suffix array and the text differ in length"
    if len(sa) and (sa.min() < 0 or sa.max() >= len(sa) or symbols.min() < 1
                    or symbols.max() > len(alphabet)):
        return "values out of range: the file was edited or corrupted"
    return None


def format_report(report: dict) -> str:
    """One line for a person, from :meth:`NoveltyIndex.report`.

    >>> format_report(NoveltyIndex("to be or not to be").report("not to see", n=4))
    'longest copy 7 chars (line 1, column 10 of the training text): "not to "; 4 of 7 4-grams copied (57.1%)'
    """
    share = (f"{report['copied_ngrams']} of {report['ngrams']} {report['n']}-grams copied "
             f"({100 * report['copied_ngram_share']:.1f}%)")
    if not report["longest_match"]:
        return f"no character of the sample occurs in the training text; {share}"
    text = report["longest_match_text"]
    shown = json.dumps(text if len(text) <= 60 else text[:57] + "...", ensure_ascii=False)
    return (f"longest copy {report['longest_match']} chars (line {report['line']}, column "
            f"{report['column']} of the training text): {shown}; {share}")
