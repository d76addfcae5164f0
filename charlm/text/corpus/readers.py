"""The readers, one per kind of input, in ONE table: the first that claims a path reads it.

A reader says how to recognise its input (``-``, a folder, a name ending in its ``suffix``),
how to turn it into pieces (one decoded-text iterator per file), which files ``make``-style
checks should stat, and the magic number by which a file of its format is told apart when it
is named otherwise. A new format is one reader function (here, or in a module of its own
like :mod:`.zipped`) and one row of ``READERS``::

    >>> [reader.name for reader in READERS]
    ['stdin', 'folder', 'zip', 'gzip', 'file']
    >>> reader_for("-").name, reader_for("Poems.ZIP").name, reader_for("poems.txt").name
    ('stdin', 'zip', 'file')
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass

from ...errors import CharLMError
from . import sniff
from .reading import Guarded, Pieces, Reading, entry_texts, hidden, named_text, open_file
from .zipped import zip_pieces


def _itself(path: str) -> list[str]:
    return [path]


@dataclass(frozen=True)
class Reader:
    """One kind of input: which paths it reads, and how."""

    name: str
    pieces: Callable[[str, Reading], Pieces]  # one text generator per file
    claims: Callable[[str], bool] | None = None  # which paths it reads; None: by ``suffix``
    suffix: str = ""  # a file whose name ends so (in any case) is read by it
    files: Callable[[str], list[str]] | None = _itself  # what to stat; None: cannot tell unread
    magic: tuple[bytes, ...] = ()  # how its files start; one named otherwise is refused
    looks_like: str = ""  # what such a file is called then ("zip archive")
    takes_member: bool = False  # whether --member picks one of its files

    def reads(self, path: str) -> bool:
        if self.claims is not None:
            return self.claims(path)
        return path.lower().endswith(self.suffix) and not os.path.isdir(path)


def _stdin_pieces(path: str, reading: Reading) -> Pieces:
    yield named_text("<stdin>", reading.stdin, reading)


def _file_pieces(path: str, reading: Reading) -> Pieces:
    with open_file(path) as f:
        yield named_text(path, Guarded(f, path, None, None), reading)


def _gzip_pieces(path: str, reading: Reading) -> Pieces:
    with open_file(path) as raw:
        try:
            gz = gzip.GzipFile(fileobj=raw, mode="rb")
        except OSError as e:  # pragma: no cover - GzipFile reads lazily
            raise CharLMError(
                f"{path}: corrupt gzip file ({e}); re-create or re-download it"
            ) from None
        yield named_text(path, Guarded(gz, path, "gzip file", reading.budget), reading)


def _folder_pieces(path: str, reading: Reading) -> Pieces:
    """Its text files, recursively, sorted by path; hidden entries and binary files skipped."""
    nothing = f"folder {path} has no text files; put .txt files in it or pass a file"
    yield from entry_texts(path, _folder_files(path), reading, nothing)


def _folder_files(folder: str) -> Generator[tuple[str, Guarded], None, None]:
    """``(path, stream)`` of each file of ``folder``, open while the caller reads it."""
    for full in _folder_listing(folder):
        with open_file(full) as f:
            yield full, Guarded(f, full, None, None)


def _folder_listing(folder: str) -> list[str]:
    """The files of ``folder``, recursively, sorted by path components; hidden entries skipped."""
    files = []

    def unreadable(e: OSError):
        raise CharLMError(
            f"{e.filename}: cannot list folder ({e.strerror});"
            f" make it readable (chmod +rx) or pass another path"
        )

    for root, dirs, names in os.walk(folder, onerror=unreadable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, folder).split(os.sep)
            if not hidden(rel) and os.path.isfile(full):
                files.append((rel, full))
    return [full for _, full in sorted(files)]


READERS = (
    Reader("stdin", _stdin_pieces, claims=lambda path: path == "-", files=None),
    Reader("folder", _folder_pieces, claims=os.path.isdir, files=_folder_listing),
    Reader(
        "zip",
        zip_pieces,
        suffix=".zip",
        magic=(b"PK\x03\x04", b"PK\x05\x06"),
        looks_like="zip archive",
        takes_member=True,
    ),
    Reader("gzip", _gzip_pieces, suffix=".gz", magic=(b"\x1f\x8b",), looks_like="gzip data"),
    Reader("file", _file_pieces, claims=lambda path: True),  # anything else: a plain file
)

# every magic number that makes a file binary: other formats', then the readers' own
MAGIC = sniff.MAGIC + tuple(
    (prefix, reader.looks_like, f"rename it to end in {reader.suffix}")
    for reader in READERS
    for prefix in reader.magic
)


def reader_for(path: str) -> Reader:
    """The reader of ``path``: the first in ``READERS`` that claims it."""
    return next(reader for reader in READERS if reader.reads(path))
