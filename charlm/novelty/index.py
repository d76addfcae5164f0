"""Memorisation check: how much of a generated sample was copied verbatim from the training text.

For a sample it reports the longest substring that occurs verbatim in the training text (and
where: character offset, line and column), and the share of the sample's n-grams (n = 20 by
default) that occur verbatim in it::

    >>> index = NoveltyIndex("the cat sat on the mat\\nthe dog sat on the log\\n")
    >>> index.longest_match("a dog sat on the mat")
    Match(length=16, offset=26, start=1)
    >>> index.copied_ngram_share("a dog sat on the mat", n=5)
    0.9375

The training text is indexed once: a suffix array sorted by libdivsufsort over the text's
ids in its :class:`~charlm.text.vocab.Vocab` (:mod:`charlm.novelty.build`: 5 bytes a
character for English, about 0.6 GB for 100 MB of text, checked against the machine's memory
before building). Queries are exact: every position of the sample is looked up at once by a
vectorised binary search, which also yields the longest prefix found there (the matching
statistics), and a long copy is settled without reading it once per position: a
1,000-character sample takes about 5-12 ms on 10 MB of text, a 20,000-character copy 0.15 s.
No TensorFlow.

The index is saved beside a run as one file, memory-mapped when loaded and tagged with the
sha256 of the text it indexes (:mod:`charlm.novelty.file`), so that
:func:`charlm.api.novelty.run_index` builds it once per run.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..errors import CharLMError
from ..fsio import text_sha256
from ..text.vocab import Vocab
from .build import check_memory, suffix_array, symbol_dtype
from .file import read_index, write_index

DEFAULT_N = 20  # the n of the n-gram share
BLOCK = 8  # characters a query compares first, per row (then twice as many each round)
CAP = 64  # the first pass looks for at most this many characters from each sample position
QUERY_ROWS = 1 << 14  # sample positions searched at a time

# What a query compares: the text's ids are 1..A, a sample character the text lacks is 0.
_TEXT_END = -1  # past the end of a suffix: a suffix sorts before its extensions
_SAMPLE_END = -2  # past the end of a pattern: a suffix that has the pattern as prefix sorts after
_ABOVE = np.iinfo(np.int32).max  # pads a pattern that must sort after all its extensions


class Match(NamedTuple):
    """The longest verbatim copy: ``length`` characters of the sample from ``start`` occur
    in the training text at ``offset`` (the first such offset). ``offset`` and ``start`` are
    None when no character of the sample occurs in the text (``length`` 0)."""

    length: int
    offset: int | None
    start: int | None


# -- the index ---------------------------------------------------------------------------------


class NoveltyIndex:
    """The training text, indexed for verbatim-copy queries. Build it once, query it often.

    >>> index = NoveltyIndex("First Citizen:\\nBefore we proceed any further, hear me speak.\\n")
    >>> index.longest_match("Second Citizen:\\nBefore we go")
    Match(length=20, offset=5, start=6)
    >>> round(index.copied_ngram_share("Second Citizen:\\nBefore we go", n=8), 3)
    0.619

    ``sha256`` is the text's :func:`charlm.fsio.text_sha256` if the caller has it already
    (computed otherwise).
    """

    def __init__(self, text: str, *, sha256: str | None = None):
        vocab = Vocab.from_text(text)
        check_memory(len(text), len(vocab))
        symbols = vocab.encode(text, dtype=symbol_dtype(len(vocab)))
        self._set(vocab, symbols, suffix_array(symbols), sha256 or text_sha256(text))

    def _set(self, vocab: Vocab, symbols, sa, sha256: str) -> None:
        # memory-mapped arrays are kept as plain views of the map: np.memmap's own indexing
        # costs more than the lookups a query makes
        self.vocab, self.sha256 = vocab, sha256
        self.symbols, self.sa = (
            a.view(np.ndarray) if isinstance(a, np.memmap) else a for a in (symbols, sa)
        )
        self._newlines: np.ndarray | None = None  # offsets of the text's newlines, when asked
        self.cap = CAP  # a knob of query speed only: answers do not depend on it

    def __len__(self) -> int:
        """Characters of the indexed text."""
        return len(self.symbols)

    def __repr__(self) -> str:
        return f"NoveltyIndex({len(self):,} chars, {len(self.vocab) - 1} distinct)"

    # -- queries ---------------------------------------------------------------------------

    def matching_statistics(self, sample: str) -> np.ndarray:
        """For each position ``j`` of ``sample``: the length of the longest prefix of
        ``sample[j:]`` that occurs in the text (int64 array of ``len(sample)``).

        >>> NoveltyIndex("abcab").matching_statistics("cabx").tolist()
        [3, 2, 1, 0]
        """
        return self._matching(self._encode(sample))

    def longest_match(self, sample: str) -> Match:
        """The longest substring of ``sample`` that occurs verbatim in the text: the first
        such in the sample, at its first offset in the text.

        >>> NoveltyIndex("hello world").longest_match("yellow")
        Match(length=4, offset=1, start=1)
        """
        q = self._encode(sample)
        return self._longest(q, self._matching(q))

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
        lengths = self._matching(q)
        match = self._longest(q, lengths)
        # offset and start are None exactly when nothing matched (match.length 0)
        offset, start = match.offset, match.start
        line, column = self.line_and_column(offset) if offset is not None else (None, None)
        ngrams = max(0, len(sample) - n + 1)
        copied = int(np.count_nonzero(lengths[:ngrams] >= n))
        return {
            "chars": len(sample),
            "longest_match": match.length,
            "longest_match_text": sample[start : start + match.length] if start is not None else "",
            "offset": offset,
            "line": line,
            "column": column,
            "sample_start": start,
            "n": n,
            "ngrams": ngrams,
            "copied_ngrams": copied,
            "copied_ngram_share": copied / ngrams if ngrams else 0.0,
        }

    def line_and_column(self, offset: int) -> tuple[int, int]:
        """1-based line and column of character ``offset`` of the text.

        >>> NoveltyIndex("ab\\ncd").line_and_column(4)
        (2, 2)
        """
        if self._newlines is None:
            nl = int(self.vocab.encode("\n")[0])
            self._newlines = np.flatnonzero(self.symbols == nl) if nl else np.zeros(0, np.int64)
        line = int(np.searchsorted(self._newlines, offset))
        start = int(self._newlines[line - 1]) + 1 if line else 0
        return line + 1, offset - start + 1

    # -- how queries work ------------------------------------------------------------------

    def _encode(self, sample: str) -> np.ndarray:
        """The sample as the text's ids (int32): 0 for a character the text lacks."""
        return self.vocab.encode(sample).astype(np.int32)

    def _matching(self, q: np.ndarray) -> np.ndarray:
        """The matching statistics of the encoded sample ``q``. A first pass finds at most
        ``cap`` characters from each position; the positions where more could follow (a long
        copy) are settled by :meth:`_settle_long`, so a long copy is not read once per
        position (which would cost its length squared)."""
        rows = np.arange(len(q))
        ends = np.minimum(rows + self.cap, len(q))
        reach = rows + self._longest_prefix(q, rows, ends)  # where each match ends
        long = (reach == ends) & (ends < len(q))
        if long.any():
            self._settle_long(q, reach, long)
        return reach - rows

    def _settle_long(self, q, reach, long) -> None:
        """Exact ends for the positions ``long`` (runs of them). Where a match ends never
        decreases along the sample (the match at ``j + 1`` is at least the one at ``j`` less
        its first character), so between two positions whose matches end at the same place
        every match ends there; the others are found by bisecting each run."""
        edges = np.flatnonzero(np.diff(np.concatenate([[0], long.astype(np.int8), [0]])))
        a, b = edges[0::2], edges[1::2] - 1  # the runs [a, b] of long positions
        every = np.unique(np.concatenate([a, b]))
        reach[every] = every + self._longest_prefix(q, every, np.full(len(every), len(q)))
        while len(a):
            same = reach[a] == reach[b]
            gaps = np.where(same, np.maximum(b - a - 1, 0), 0)
            inside = np.repeat(a + 1 - np.cumsum(gaps) + gaps, gaps) + np.arange(gaps.sum())
            reach[inside] = np.repeat(reach[a], gaps)
            split = ~same & (b - a > 1)
            a, b = a[split], b[split]
            mid = (a + b) // 2
            reach[mid] = mid + self._longest_prefix(q, mid, np.full(len(mid), len(q)))
            a, b = np.concatenate([a, mid]), np.concatenate([mid, b])

    def _longest_prefix(self, q, starts, ends) -> np.ndarray:
        """For each of ``starts``: the longest prefix of ``q[start:end]`` found in the text."""
        out = np.zeros(len(starts), dtype=np.int64)
        for i in range(0, len(starts), QUERY_ROWS):
            part = slice(i, i + QUERY_ROWS)
            out[part] = self._search(q, starts[part], ends[part])[1]
        return out

    def _longest(self, q: np.ndarray, lengths: np.ndarray) -> Match:
        """The first longest match, at its first offset: the smallest position in the range
        of the suffix array that starts with it."""
        if len(lengths) == 0 or lengths.max() == 0:
            return Match(0, None, None)
        start = int(lengths.argmax())
        length = int(lengths[start])
        starts, ends = np.array([start]), np.array([start + length])
        first = int(self._search(q, starts, ends)[0][0])
        last = int(self._search(q, starts, ends, pad=_ABOVE)[0][0])
        found = self.sa[first:last]
        return Match(length, int(found.min()) if len(found) else 0, start)

    def _search(self, q, starts, ends, pad: int = _SAMPLE_END):
        """Binary search of the patterns ``q[starts:ends]`` (then ``pad``), all at once:
        ``(below, longest)``, how many suffixes sort before each pattern and the longest
        prefix of it that starts a suffix. A step compares from where the two bounds stop
        agreeing with the pattern (every suffix between them shares that prefix too), so a
        long pattern is read a few times, not once a step."""
        rows, n = len(starts), len(self.sa)
        lo, hi = np.zeros(rows, dtype=np.int64), np.full(rows, n, dtype=np.int64)
        lcp_lo, lcp_hi = np.zeros(rows, dtype=np.int64), np.zeros(rows, dtype=np.int64)
        while True:
            active = np.flatnonzero(lo < hi)
            if not len(active):
                return lo, np.maximum(lcp_lo, lcp_hi)
            mid = (lo[active] + hi[active]) // 2
            skip = np.minimum(lcp_lo[active], lcp_hi[active])
            at = np.clip(self.sa[mid], 0, n - 1).astype(np.int64)  # clipped: a damaged file
            common, less = self._compare(at, skip, q, starts[active], ends[active], pad)
            up, down = active[less], active[~less]
            lo[up], lcp_lo[up] = mid[less] + 1, common[less]
            hi[down], lcp_hi[down] = mid[~less], common[~less]

    def _compare(self, at, skip, q, starts, ends, pad: int):
        """For each row: how many characters the suffix at ``at`` shares with the pattern
        ``q[starts:ends]`` (then ``pad``), the first ``skip`` known to agree, and whether
        the suffix sorts first. Compared ``BLOCK`` characters at a time, then twice as many
        each round for the rows that still agree (few rounds for a long copy)."""
        common, less = skip.copy(), np.zeros(len(at), dtype=bool)
        todo, width = np.arange(len(at)), BLOCK
        while len(todo):
            text = self._text_block(at[todo] + common[todo], width)
            pattern = _pattern_block(q, starts[todo] + common[todo], ends[todo], pad, width)
            differ = text != pattern
            first = differ.argmax(axis=1)
            rows = np.arange(len(todo))
            found = differ[rows, first]
            rows, first = rows[found], first[found]
            common[todo[found]] += first
            less[todo[found]] = text[rows, first] < pattern[rows, first]
            todo = todo[~found]
            common[todo] += width
            width *= 2
        return common, less

    def _text_block(self, at, width: int):
        """``width`` ids of the text from each of ``at`` (int32), ``_TEXT_END`` past its end."""
        n = len(self.symbols)
        where = at[:, None] + np.arange(width)
        out = self.symbols[np.minimum(where, n - 1)].astype(np.int32)
        out[where >= n] = _TEXT_END
        return out

    # -- on disk ---------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the index to ``path`` atomically (:mod:`charlm.novelty.file`)::

        index.save(run_dir / INDEX_FILE)
        """
        write_index(path, self.sha256, self.vocab, self.sa, self.symbols)

    @classmethod
    def load(cls, path) -> NoveltyIndex:
        """Read an index written by :meth:`save`, its arrays memory-mapped."""
        index = cls.__new__(cls)
        index._set(*read_index(path))
        return index

    @classmethod
    def cached(cls, text: str, path, *, sha256: str | None = None) -> NoveltyIndex:
        """The index of ``text`` from ``path`` if it is there and was built from this very
        text (same sha256), else built now and saved there. ``sha256``: the text's, if known
        (corpus.json's ``train_sha256``), to save hashing it again::

            index = NoveltyIndex.cached(train_text, run_dir / INDEX_FILE)
        """
        sha256 = sha256 or text_sha256(text)
        index = cls.load_matching(path, sha256)
        if index is None:
            index = cls(text, sha256=sha256)
            index.save(path)
        return index

    @classmethod
    def load_matching(cls, path, sha256: str) -> NoveltyIndex | None:
        """The index saved at ``path`` if it is readable and was built from the text whose
        sha256 is ``sha256``; else None (a missing, broken or stale file is rebuilt)."""
        if not os.path.exists(path):
            return None
        try:
            index = cls.load(path)
        except CharLMError:
            return None
        return index if index.sha256 == sha256 else None


def _pattern_block(q, at, ends, pad: int, width: int):
    """``width`` ids of the sample ``q`` from each of ``at``, ``pad`` from ``ends`` on."""
    where = at[:, None] + np.arange(width)
    out = q[np.minimum(where, len(q) - 1)]
    out[where >= ends[:, None]] = pad
    return out
