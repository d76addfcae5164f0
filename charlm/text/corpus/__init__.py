"""Read a text corpus from files, folders, .zip, .gz or stdin, and split it into train/val.

The corpus is one Python ``str``; a character is a Unicode code point::

    >>> import io
    >>> raw = "\\ufeff床前明月光，\\r\\n疑是地上霜。\\r\\n".encode()  # UTF-8, a BOM, CRLF
    >>> text = read_corpus(["-"], stdin=io.BytesIO(raw))        # "-" is standard input
    >>> text                                                     # the BOM dropped, CRLF -> LF
    '床前明月光，\\n疑是地上霜。\\n'
    >>> train, val = split_corpus(text, 0.25)       # val is the last int(14 * 0.25) characters
    >>> val
    '霜。\\n'

Inputs are read in chunks of ``CHUNK_BYTES`` through an incremental decoder, so
``max_chars`` stops early (a huge file or .gz is never read whole) and an invalid byte is
reported at its exact offset. Normalisation, in this order: drop a leading BOM of each
file, CRLF -> LF (a lone CR stays), optionally LF -> space (``newlines="space"``) and
``lowercase``. Nothing is ever written to disk; zip members are read in memory.

The first ``SNIFF_BYTES`` of each file decide what it is. Binary (a known magic number, a
NUL byte as in git, or mostly undecodable bytes): an error for a file named directly, skipped
inside a folder or zip. UTF-16/32 with a byte-order mark: decoded as such when the encoding
is the default utf-8. UTF-16/32 without one (a NUL after or before each Latin letter): an
error naming the ``--encoding`` that reads it, even inside a folder, since it is text. What
was skipped or decoded by its mark is told once reading succeeds, one warning line per
folder or zip and kind, to ``read_corpus``'s ``warn``.

The modules, in the order text flows through them: :mod:`.readers` (the table of readers:
stdin, folder, .zip in :mod:`.zipped`, .gz, plain file) over :mod:`.reading` (what they
share), :mod:`.decode` (chunked decoding) with :mod:`.sniff` (binary or text, which
encoding), :mod:`.normalise` (joining, CRLF, newlines, lowercase), :mod:`.notes` (warnings).

Pure Python: no numpy, no TensorFlow.
"""

from __future__ import annotations

import codecs
import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import closing

from ...errors import CharLMError
from ...fsio import to_stderr
from ...options.config import CHOICES
from .decode import DecodeError, Decoding, Texts
from .normalise import Normaliser, joined, normalised
from .readers import MAGIC, READERS, Reader, reader_for
from .reading import Budget, Pieces, Reading

__all__ = [
    "CHUNK_BYTES",
    "READERS",
    "SNIFF_BYTES",
    "Chunks",
    "DecodeError",
    "EmptyCorpus",
    "Reader",
    "read_chunks",
    "read_corpus",
    "reader_for",
    "rereadable",
    "source_signature",
    "split_corpus",
    "split_point",
]

# Read from here each time a corpus is opened, so that a test can shrink them (monkeypatch).
CHUNK_BYTES = 1 << 20  # bytes per read; tests shrink it to exercise chunk boundaries
SNIFF_BYTES = 8000  # the head of each file checked for binary content (as git checks for NUL)


def read_corpus(paths: list[str], **options) -> str:
    """Read and normalise the text of ``paths``, joined in the given order. The ``options``
    are :func:`read_chunks`'s keywords (its signature lists them and their defaults, once).

    Each path is a text file, a folder (its text files, recursively, sorted by path, hidden
    entries and binary files skipped), a ``.zip`` (its text members sorted by name, or only
    ``member``), a ``.gz``, or ``-`` for ``stdin`` (bytes; default ``sys.stdin.buffer``).
    When a piece does not end with a newline and another follows, one "\\n" is put between.
    A file with a NUL byte in its first ``SNIFF_BYTES`` is binary, as in git. With the default
    utf-8, a UTF-16/32 byte-order mark is followed. What was skipped or decoded so is told
    to ``warn`` (default: print to stderr), one line per folder or zip and kind.

    >>> folder = getfixture("tmp_path")                  # any folder (here pytest's tmp_path)
    >>> _ = (folder / "a.txt").write_text("one"), (folder / "b.txt").write_text("Two\\n")
    >>> read_corpus([folder / "a.txt", folder / "b.txt"])    # "one" + "\\n" + "Two\\n"
    'one\\nTwo\\n'
    >>> read_corpus([folder], newlines="space", lowercase=True, max_chars=5)
    'one t'

    Every problem the user can fix raises :class:`CharLMError` with one line that names
    the file and the way out.
    """
    return "".join(read_chunks(paths, **options))


def read_chunks(
    paths: list[str],
    *,
    encoding="utf-8",
    errors="strict",
    newlines="keep",
    lowercase=False,
    max_chars: int | None = None,
    member: str | None = None,
    max_input_bytes: int = 2**31,
    stdin=None,
    warn: Callable[[str], None] | None = None,
) -> Chunks:
    """The text :func:`read_corpus` returns, as an iterator of chunks (about ``CHUNK_BYTES``
    each), so a corpus larger than memory can be streamed; ``"".join`` of them is that text.

    The options are checked at once; reading errors, an empty corpus and the warnings come
    while iterating (the warnings once the last chunk is out).

    >>> import io
    >>> chunks = read_chunks(["-"], stdin=io.BytesIO(b"abc\\r\\n"), max_chars=3)
    >>> list(chunks), chunks.once            # standard input cannot be read a second time
    (['abc'], True)
    """
    paths = _as_paths(paths)
    codec = _check_options(encoding, errors, newlines, max_chars, max_input_bytes)
    _check_inputs(paths, member)
    decoding = Decoding(codec.name, errors, CHUNK_BYTES, SNIFF_BYTES, MAGIC)
    reading = Reading(decoding, member, Budget(max_input_bytes), _stdin_bytes(paths, stdin))
    texts = normalised(
        joined(_all_pieces(paths, reading)), Normaliser(newlines=newlines, lowercase=lowercase)
    )
    taken = _taken(texts, max_chars, paths, reading.notes, warn or to_stderr)
    return Chunks(taken, ", ".join(paths), once=not rereadable(paths))


class EmptyCorpus(CharLMError):
    """Files that hold no text."""


class Chunks(Iterator[str]):
    """The chunks of text :func:`read_chunks` gives, and what a second reading needs to know:
    ``name`` (the paths, for messages), and ``once``: whether a path is a pipe, a FIFO, a
    device or standard input, which a second reading would not give again
    (:func:`charlm.text.idfile.encode` then spools the text instead of reading it twice)."""

    def __init__(self, chunks: Texts, name: str, once: bool):
        self._chunks, self.name, self.once = chunks, name, once

    def __next__(self) -> str:
        return next(self._chunks)

    def close(self) -> None:
        """Stop reading: close the file being read."""
        self._chunks.close()


def rereadable(paths) -> bool:
    """Whether reading ``paths`` again gives the same text: each is a regular file or a folder
    (whose non-regular entries are not read), not ``-``, a pipe, a FIFO or a device.

    >>> rereadable(["-"]), rereadable([getfixture("tmp_path")])
    (False, True)
    """
    for path in _as_paths(paths):
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return False
        if path == "-" or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return False
    return True


def source_signature(paths) -> list[list] | None:
    """``[path, size, mtime_ns]`` of every file a corpus of ``paths`` reads (a folder's files
    as they are read, a .zip or .gz as one file): what ``make`` and ``rsync`` compare to tell
    that files are unchanged without reading them. None for standard input, a pipe or a FIFO,
    which cannot be checked without reading them.

    >>> source_signature(["-"]) is None
    True
    """
    paths = _as_paths(paths)
    listers = [lister for p in paths if (lister := reader_for(p).files) is not None]
    if len(listers) < len(paths):  # standard input: no file to stat
        return None
    _check_inputs(paths, None)
    if not rereadable(paths):  # a pipe or FIFO: its size and time say nothing of its text
        return None
    files = [f for p, lister in zip(paths, listers, strict=True) for f in lister(p)]
    return [[os.path.abspath(f), st.st_size, st.st_mtime_ns] for f in files for st in [os.stat(f)]]


def split_corpus(text: str, val_fraction: float) -> tuple[str, str]:
    """Split ``text`` into ``(train, val)``; val is the LAST ``int(len(text) * val_fraction)``
    characters.

    >>> split_corpus("abcdefghij", 0.2)
    ('abcdefgh', 'ij')
    >>> split_corpus("abc", 0.0)
    ('abc', '')
    """
    cut = split_point(len(text), val_fraction)
    return text[:cut], text[cut:]


def split_point(n_chars: int, val_fraction: float) -> int:
    """Where :func:`split_corpus` cuts a text of ``n_chars`` characters: the held-out part is
    the last ``int(n_chars * val_fraction)``.

    >>> split_point(10, 0.2), split_point(14, 0.25)
    (8, 11)
    """
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, (int, float))
        or not 0 <= val_fraction < 1
    ):
        raise CharLMError(
            f"val_fraction must be in [0, 1), got {val_fraction!r}; pass e.g. --val-fraction 0.1"
        )
    return n_chars - int(n_chars * val_fraction)


def _all_pieces(paths: list[str], reading: Reading) -> Pieces:
    """One decoded-text iterator per file, for every path in order; nothing opened before it
    is needed."""
    for path in paths:
        yield from reader_for(path).pieces(path, reading)


def _taken(chunks: Texts, max_chars: int | None, paths: list[str], notes, warn) -> Texts:
    """The non-empty ``chunks``, pulling no more once ``max_chars`` characters are out; then
    the empty-corpus check and the notes."""
    n = 0
    with closing(chunks):
        for chunk in chunks:
            if max_chars is not None:
                chunk = chunk[: max_chars - n]
            if chunk:
                n += len(chunk)
                yield chunk
            if max_chars is not None and n >= max_chars:
                break
    if not n:
        raise EmptyCorpus(f"corpus is empty: {', '.join(paths)}; pass files that contain some text")
    for line in notes.lines():
        warn(line)


# ----------------------------------------------------------------------------- options


def _check_options(encoding, errors, newlines, max_chars, max_input_bytes) -> codecs.CodecInfo:
    try:
        codec = codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise CharLMError(
            f"unknown encoding {encoding!r}; pass a Python codec name to"
            f" --encoding, e.g. utf-8, latin-1, gbk, utf-16"
        ) from None
    if not getattr(codec, "_is_text_encoding", True):
        raise CharLMError(
            f"{encoding!r} is not a text encoding; pass e.g. --encoding utf-8, latin-1, gbk, utf-16"
        )
    for option, value in (("errors", errors), ("newlines", newlines)):
        if value not in CHOICES[option]:
            *first, last = CHOICES[option]
            raise CharLMError(
                f"unknown {option} mode {value!r}; pass --{option} {', '.join(first)} or {last}"
            )
    if max_chars is not None and not _positive_int(max_chars):
        raise CharLMError(
            f"max_chars must be a positive whole number, got {max_chars!r};"
            f" pass e.g. --max-chars 1000000"
        )
    if not _positive_int(max_input_bytes):
        raise CharLMError(
            f"max_input_bytes must be a positive whole number,"
            f" got {max_input_bytes!r}; pass e.g. --max-input-bytes 4000000000"
        )
    return codec


def _positive_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def _as_paths(paths) -> list[str]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    paths = [os.fsdecode(p) for p in paths]
    if not paths:
        raise CharLMError("no corpus given; pass at least one file, folder, .zip, .gz or -")
    return paths


def _check_inputs(paths: list[str], member: str | None) -> None:
    if member is not None and not any(reader_for(p).takes_member for p in paths):
        raise CharLMError(
            f"--member {member!r} applies only to a .zip; pass a .zip or drop --member"
        )
    for path in paths:
        if path == "-":
            continue
        try:
            os.stat(path)
        except FileNotFoundError:
            raise CharLMError(f"{path}: no such file or folder; check the path") from None
        except OSError as e:  # a name too long, a loop of symlinks, a file used as a folder
            raise CharLMError(f"{path}: {e.strerror or e}; check the path") from None


def _stdin_bytes(paths: list[str], stdin):
    """The byte stream ``-`` reads: ``stdin`` (or the bytes under a text stream), else
    sys.stdin's."""
    if stdin is None and "-" in paths:
        stdin = sys.stdin.buffer
    return getattr(stdin, "buffer", stdin)
