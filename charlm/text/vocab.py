"""The character vocabulary: chars <-> integer ids, saved as JSON in the run directory.

id 0 is ``<unk>`` (any character the training text did not contain); ids 1.. are the
distinct characters of the text sorted by code point::

    >>> vocab = Vocab.from_text("hello")
    >>> vocab.chars
    ['<unk>', 'e', 'h', 'l', 'o']
    >>> vocab.encode("hole!")
    array([2, 4, 3, 1, 0], dtype=uint16)
    >>> vocab.decode([2, 1, 3, 3, 4, 0])
    'hello\\ufffd'

A run fine-tuned on new text (``charlm train --init-from``) keeps every id of the run it
starts from and appends the characters it adds as new ids (:meth:`Vocab.grown`), so its old
weights mean what they meant; ``grown_at`` records the first id of each appended block, each
block sorted by code point::

    >>> Vocab.from_text("hello").grown("help!").chars
    ['<unk>', 'e', 'h', 'l', 'o', '!', 'p']

encode/decode are vectorised with numpy (a code-point -> id lookup table, UTF-32 for the
str <-> code-point conversion) and work in chunks, so a 100 MB corpus encodes in seconds
with about the output's 2 bytes per character of extra memory. Pure numpy: no TensorFlow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

import numpy as np

from ..errors import CharLMError
from ..fsio import atomic_write
from . import codepoints
from .codepoints import SURROGATES, lone_surrogate

_SURROGATE_RANGE = range(SURROGATES.start, SURROGATES.stop)

UNK = "<unk>"
FORMAT = "charlm-vocab"
VERSION = 1
CHUNK_CHARS = codepoints.CHUNK_CHARS  # characters converted at a time by encode/decode/from_text

_MAX_CODE_POINT = 0x10FFFF
_EDITED = "the vocabulary file was edited or corrupted; restore it or retrain the run"


def _codepoints(text: str):
    """:func:`charlm.text.codepoints.chunks` of ``CHUNK_CHARS`` (read at call time)."""
    return codepoints.chunks(text, CHUNK_CHARS)


class Vocab:
    """chars <-> ids. id 0 is <unk>; ids 1.. are the distinct characters of the text sorted by code point.

    >>> v = Vocab.from_text("床前明月光")
    >>> len(v), v.decode(v.encode("明月"))
    (6, '明月')
    >>> v.unknown_chars("明月几时有")
    ['几', '时', '有']
    """

    def __init__(self, chars: Iterable[str], grown_at: Iterable[int] = ()) -> None:
        """``chars``: the distinct characters (without ``<unk>``) in id order 1, 2, ...

        They must be single code points (no lone surrogates) and distinct; :meth:`from_text`
        builds them for you, sorted by code point, and :meth:`grown` appends to them.
        ``grown_at``: the first id of each block :meth:`grown` appended (what the JSON file
        keeps, so that its check of the order knows where a block starts).
        """
        chars = list(chars)
        problem = _chars_problem(chars)
        if problem:
            raise ValueError(f"invalid vocabulary characters: {problem}")
        self.chars: list[str] = [UNK] + chars
        self.grown_at: tuple[int, ...] = tuple(int(i) for i in grown_at)
        self.dtype = np.uint16 if len(self.chars) <= 1 << 16 else np.uint32
        cps = np.array([ord(c) for c in chars], dtype=np.uint32)
        # id -> code point, with id 0 (<unk>) decoding to U+FFFD REPLACEMENT CHARACTER.
        self._id_to_cp = np.concatenate([np.array([0xFFFD], np.uint32), cps])
        # code point -> id; one extra last slot (id 0) catches every code point above the max.
        size = (int(cps.max()) + 2) if len(cps) else 1
        self._cp_to_id = np.zeros(size, dtype=self.dtype)
        self._cp_to_id[cps] = np.arange(1, len(cps) + 1, dtype=self.dtype)

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        """The vocabulary of ``text``: its distinct characters sorted by code point."""
        present = np.zeros(_MAX_CODE_POINT + 1, dtype=bool)
        for _, cps in _codepoints(text):
            present[cps] = True
        if present[SURROGATES].any():
            at = next(i for i, c in enumerate(text) if ord(c) in _SURROGATE_RANGE)
            raise lone_surrogate(ord(text[at]), at)
        return cls(chr(c) for c in np.flatnonzero(present))

    def grown(self, chars) -> Vocab:
        """This vocabulary with the characters of ``chars`` it lacks appended as new ids
        (sorted by code point); every id it has keeps its number. Itself when none is new."""
        known = set(self.chars[1:])
        new = sorted({c for c in chars if c not in known})
        if not new:
            return self
        return Vocab(self.chars[1:] + new, (*self.grown_at, len(self.chars)))

    def __len__(self) -> int:
        """Number of ids, including ``<unk>``."""
        return len(self.chars)

    def __eq__(self, other) -> bool:  # with no __hash__ of its own, Python makes it unhashable
        return isinstance(other, Vocab) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"Vocab({len(self)} ids: <unk> + {len(self) - 1} chars)"

    def encode(self, text: str, dtype=None) -> np.ndarray:
        """Ids of the characters of ``text``; characters not in the vocabulary get id 0 (``<unk>``).

        The dtype is uint16 when ``len(self) <= 65536``, else uint32; or ``dtype``, which must
        hold every id (uint8 for up to 256 ids saves half of a big text's memory):

        >>> Vocab.from_text("ab").encode("abc", dtype=np.uint8)
        array([1, 2, 0], dtype=uint8)
        """
        dtype = np.dtype(dtype or self.dtype)
        if dtype.kind != "u" or len(self) - 1 > np.iinfo(dtype).max:
            raise ValueError(f"dtype {dtype} cannot hold the {len(self)} ids of this vocabulary")
        out = np.empty(len(text), dtype=dtype)
        top = len(self._cp_to_id) - 1  # the catch-all slot for code points above the max
        for start, cps in _codepoints(text):
            out[start : start + len(cps)] = self._cp_to_id[np.minimum(cps, top)]
        return out

    def decode(self, ids) -> str:
        """The text of ``ids`` (any int array or list); id 0 decodes to U+FFFD.

        An id outside ``0 .. len(self) - 1`` raises :class:`CharLMError`: the ids come from a
        model with a different vocabulary.
        """
        ids = np.asarray(ids)
        if ids.size == 0:
            return ""
        if ids.dtype.kind not in "iu":
            raise TypeError(f"decode takes integer ids, got dtype {ids.dtype}")
        ids = ids.reshape(-1) if ids.ndim == 0 else ids
        if ids.ndim != 1:
            raise ValueError(
                f"decode takes a 1-D sequence of ids, got shape {ids.shape}; decode each row"
            )
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= len(self):
            bad = lo if lo < 0 else hi
            raise CharLMError(
                f"id {bad} is outside this vocabulary of {len(self)} ids;"
                " the weights and vocab.json come from different runs: use the run directory's own vocab.json"
            )
        parts = []
        for start in range(0, len(ids), CHUNK_CHARS):
            cps = self._id_to_cp[ids[start : start + CHUNK_CHARS]]
            parts.append(cps.tobytes().decode("utf-32-le", "surrogatepass"))
        return "".join(parts)

    def unknown_chars(self, text: str) -> list[str]:
        """Distinct characters of ``text`` that are not in the vocabulary, in order of first appearance."""
        seen: dict[int, None] = {}
        top = len(self._cp_to_id) - 1
        for _, cps in _codepoints(text):
            unknown = cps[self._cp_to_id[np.minimum(cps, top)] == 0]
            if len(unknown):
                values, first = np.unique(unknown, return_index=True)
                for cp in values[np.argsort(first)]:
                    seen.setdefault(int(cp))
        return [chr(cp) for cp in seen]

    # ------------------------------------------------------------------------- JSON on disk

    def to_json(self) -> str:
        """``{"format": "charlm-vocab", "version": 1, "unk": "<unk>", "chars": [...]}`` (ids 1..
        in order), and ``"grown_at": [...]`` for a grown vocabulary."""
        doc = {"format": FORMAT, "version": VERSION, "unk": UNK, "chars": self.chars[1:]}
        if self.grown_at:
            doc["grown_at"] = list(self.grown_at)
        return json.dumps(doc, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, s: str, source: str = "vocab.json") -> Vocab:
        """Parse and strictly validate :meth:`to_json` output; ``source`` names the file in errors."""
        try:
            doc = json.loads(s)
        except json.JSONDecodeError as e:
            raise CharLMError(
                f"{source}: not valid JSON ({e.msg} at line {e.lineno}); {_EDITED}"
            ) from None
        if not isinstance(doc, dict):
            raise CharLMError(f"{source}: expected a JSON object; {_EDITED}")
        if doc.get("format") != FORMAT:
            raise CharLMError(
                f"{source}: format is {doc.get('format')!r}, expected {FORMAT!r}; {_EDITED}"
            )
        version = doc.get("version")
        if type(version) is not int or version != VERSION:
            raise CharLMError(
                f"{source}: unsupported version {version!r} (this charlm reads {VERSION}); {_EDITED}"
            )
        if doc.get("unk") != UNK:
            raise CharLMError(f"{source}: unk is {doc.get('unk')!r}, expected {UNK!r}; {_EDITED}")
        extra = sorted(set(doc) - {"format", "version", "unk", "chars", "grown_at"})
        if extra:
            raise CharLMError(f"{source}: unexpected keys {extra}; {_EDITED}")
        chars = doc.get("chars")
        if not isinstance(chars, list):
            raise CharLMError(f"{source}: chars must be a list of characters; {_EDITED}")
        grown_at = doc.get("grown_at", [])
        problem = _grown_problem(grown_at, len(chars)) or _chars_problem(chars, grown_at)
        if problem:
            raise CharLMError(f"{source}: {problem}; {_EDITED}")
        return cls(chars, grown_at)

    def save(self, path) -> None:
        """Write :meth:`to_json` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
        try:
            atomic_write(path, self.to_json())
        except OSError as e:
            raise CharLMError(
                f"{os.fspath(path)}: cannot write the vocabulary ({e.strerror}); "
                "check that the folder exists, is writable and has space"
            ) from None

    @classmethod
    def load(cls, path) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                s = f.read()
        except FileNotFoundError:
            raise CharLMError(
                f"{path}: no such vocabulary file; pass a run directory written by train"
            ) from None
        except UnicodeDecodeError as e:
            raise CharLMError(f"{path}: not UTF-8 (byte {e.start}); {_EDITED}") from None
        except OSError as e:
            raise CharLMError(
                f"{path}: cannot read the vocabulary ({e.strerror}); check the path and its permissions"
            ) from None
        return cls.from_json(s, source=path)


def _chars_problem(chars: list, blocks=None) -> str | None:
    """Why ``chars`` is not a valid id-ordered character list, or None. With ``blocks`` (the
    first ids of the appended blocks; [] for none), each block must also be sorted by code
    point, as a vocabulary file's characters are."""
    for i, c in enumerate(chars):
        if not isinstance(c, str) or len(c) != 1:
            return f"entry {i} ({c!r}) is not a single character"
        if ord(c) in _SURROGATE_RANGE:
            return f"entry {i} is a lone surrogate U+{ord(c):04X}"
    seen, starts = set(), {i - 1 for i in blocks or ()}
    for i, c in enumerate(chars):
        if c in seen:
            return f"character {c!r} appears twice"
        seen.add(c)
        if blocks is not None and i and i not in starts and c < chars[i - 1]:
            return f"characters are not sorted by code point ({chars[i - 1]!r} before {c!r})"
    return None


def _grown_problem(grown_at, n: int) -> str | None:
    """Why ``grown_at`` is not a list of the first ids of appended blocks of ``n`` characters."""
    ok = isinstance(grown_at, list) and all(type(i) is int for i in grown_at)
    if not ok or grown_at != sorted(set(grown_at)) or any(not 2 <= i <= n for i in grown_at):
        return f"grown_at must be increasing ids between 2 and {n}, not {grown_at!r}"
    return None
