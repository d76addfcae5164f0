"""What the readers of one corpus share: the options, guarded byte streams, and the rule for
binary content (an error in a file the user named, skipped and noted inside a folder or zip).

A reader turns a path into pieces (one decoded-text iterator per file) with these::

    >>> import io
    >>> reading = Reading(Decoding("utf-8", "strict", 1 << 20, 8000, ()), None, Budget(10))
    >>> list(named_text("t.txt", io.BytesIO(b"abc"), reading))
    ['abc', '']
    >>> Guarded(io.BytesIO(b"x" * 11), "t.gz", "gzip file", reading.budget).read(100)
    Traceback (most recent call last):
    charlm.errors.CharLMError: t.gz: more than 10 bytes after decompression (a zip/gzip bomb \
guard); raise --max-input-bytes if you trust this file
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass, field

from ...errors import CharLMError
from .decode import Decoding, Texts, open_text
from .notes import Notes

_UNREADABLE = "permission denied; make it readable (chmod +r) or pass another path"

Pieces = Generator[Texts, None, None]  # one Texts per file of a path, each open while read


class Budget:
    """Total decompressed bytes allowed from .gz/.zip inputs (zip/gzip bomb guard)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0


@dataclass
class Reading:
    """What the readers of one ``read_corpus`` call share."""

    decoding: Decoding
    member: str | None  # the one zip member to read (--member)
    budget: Budget
    stdin: object = None  # a byte stream, for "-"
    notes: Notes = field(default_factory=Notes)


def named_text(name: str, stream, reading: Reading) -> Texts:
    """The text of a file the user named: binary content is an error."""
    kind, text = _open_text(name, stream, reading, where=name)
    if kind is not None:
        description, way_out = kind
        raise CharLMError(f"{name} looks like a binary file ({description}), not text; {way_out}")
    return text


def entry_texts(
    where: str, entries: Generator[tuple[str, Guarded], None, None], reading: Reading, nothing: str
) -> Pieces:
    """The text of each ``(name, stream)`` of a folder or zip; binary ones are skipped and noted.

    Raises ``CharLMError(nothing)`` when none is text.
    """
    n_text = 0
    with closing(entries):
        for name, stream in entries:
            kind, text = _open_text(name, stream, reading, where)
            if kind is None:
                n_text += 1
                yield text
            else:
                reading.notes.add(where, "binary", name)
    if n_text == 0:
        raise CharLMError(nothing)


def _open_text(name: str, stream, reading: Reading, where: str):
    """``((description, way_out), None)`` if binary, else ``(None, texts)``; an encoding that a
    byte-order mark chose instead of the one given is noted under ``where``."""
    opened = open_text(name, where, stream, reading.decoding)
    if opened.binary is not None:
        return opened.binary, None
    if opened.encoding != reading.decoding.encoding:
        reading.notes.add(where, ("bom", opened.encoding), name)
    return None, opened.texts


def hidden(rel_parts) -> bool:
    """Whether a path inside a folder or zip, given as its parts, is hidden (a part starts
    with a dot); hidden entries are not read."""
    return any(part.startswith(".") for part in rel_parts)


def open_file(path: str):
    """``path`` opened for reading bytes; why not, in one line."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise CharLMError(f"{path}: no such file or folder; check the path") from None
    except PermissionError:
        raise CharLMError(f"{path}: {_UNREADABLE}") from None
    except OSError as e:
        raise CharLMError(f"{path}: cannot open ({e.strerror or e}); check the path") from None


class Guarded:
    """A byte stream whose read() turns I/O and decompression errors into CharLMError.

    ``container`` ("gzip file", "zip archive") names what decompresses it, if anything. With a
    ``budget``, reading more than ``budget.limit`` decompressed bytes in total is an error; at
    most one byte past the limit is ever requested from the decompressor.
    """

    def __init__(self, stream, name: str, container: str | None, budget: Budget | None):
        self.stream, self.name, self.container, self.budget = stream, name, container, budget

    def read(self, n: int) -> bytes:
        if self.budget is not None:
            n = min(n, self.budget.limit - self.budget.used + 1)
        try:
            data = self.stream.read(n)
        except CharLMError:
            raise
        except PermissionError:
            raise CharLMError(f"{self.name}: {_UNREADABLE}") from None
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile, ValueError) as e:
            if self.container is None:
                raise CharLMError(
                    f"{self.name}: cannot read ({e}); check the file or the disk"
                ) from None
            raise CharLMError(
                f"{self.name}: corrupt {self.container} ({e}); re-create or re-download it"
            ) from None
        if self.budget is not None:
            self.budget.used += len(data)
            if self.budget.used > self.budget.limit:
                raise CharLMError(
                    f"{self.name}: more than {self.budget.limit:,} bytes after decompression"
                    f" (a zip/gzip bomb guard); raise --max-input-bytes if you trust this file"
                )
        return data
