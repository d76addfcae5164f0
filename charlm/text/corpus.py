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

Pure Python: no numpy, no TensorFlow.
"""

from __future__ import annotations

import codecs
import gzip
import os
import sys
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field

from ..config import CHOICES
from ..errors import CharLMError

CHUNK_BYTES = 1 << 20  # bytes per read; tests shrink it to exercise chunk boundaries
SNIFF_BYTES = 8000  # the head of each file checked for binary content (as many as git checks for NUL)
_LOWER_HOLD = 1 << 20  # lowercase: longest run without whitespace held back before cutting anyway

# Magic numbers of common binary formats: (prefix, description, way out).
_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "PNG image", "remove it from the corpus paths"),
    (b"\xff\xd8\xff", "JPEG image", "remove it from the corpus paths"),
    (b"GIF87a", "GIF image", "remove it from the corpus paths"),
    (b"GIF89a", "GIF image", "remove it from the corpus paths"),
    (b"\x7fELF", "ELF executable or shared library", "remove it from the corpus paths"),
    (b"%PDF-", "PDF document", "extract its text first"),
    (b"PK\x03\x04", "zip archive", "rename it to end in .zip"),
    (b"PK\x05\x06", "zip archive", "rename it to end in .zip"),
    (b"\x1f\x8b", "gzip data", "rename it to end in .gz"),
    (b"SQLite format 3\x00", "SQLite database", "remove it from the corpus paths"),
]
_NUL = ("it contains NUL bytes", "remove it from the corpus paths")  # git's test for binary

# Byte-order marks, longest first: UTF-32-LE's starts with UTF-16-LE's.
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]
_LATIN_BYTES = frozenset(b"\t\n\r" + bytes(range(0x20, 0x7F)) + bytes(range(0xA0, 0x100)))  # U+0000-00FF text


def read_corpus(
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
) -> str:
    """Read and normalise the text of ``paths``, joined in the given order.

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
    return "".join(read_chunks(paths, encoding=encoding, errors=errors, newlines=newlines,
                               lowercase=lowercase, max_chars=max_chars, member=member,
                               max_input_bytes=max_input_bytes, stdin=stdin, warn=warn))


def read_chunks(paths: list[str], *, encoding="utf-8", errors="strict", newlines="keep", lowercase=False,
                max_chars: int | None = None, member: str | None = None, max_input_bytes: int = 2**31,
                stdin=None, warn: Callable[[str], None] | None = None) -> Iterator[str]:
    """The text :func:`read_corpus` returns, as an iterator of chunks (about ``CHUNK_BYTES``
    each), so a corpus larger than memory can be streamed; ``"".join`` of them is that text.

    The options are checked at once; reading errors, an empty corpus and the warnings come
    while iterating (the warnings once the last chunk is out).

    >>> import io
    >>> list(read_chunks(["-"], stdin=io.BytesIO(b"abc\\r\\n"), max_chars=3))
    ['abc']
    """
    paths = _as_paths(paths)
    codec = _check_options(encoding, errors, newlines, max_chars, max_input_bytes)
    _check_inputs(paths, member)
    reading = _Reading(codec.name, errors, member, _Budget(max_input_bytes), _stdin_bytes(paths, stdin))
    texts = _normalised(_joined(_all_pieces(paths, reading)), _Normaliser(newlines=newlines, lowercase=lowercase))
    return _taken(texts, max_chars, paths, reading.notes, warn or _to_stderr)


def _taken(chunks: Iterator[str], max_chars: int | None, paths: list[str], notes, warn) -> Iterator[str]:
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
        raise CharLMError(f"corpus is empty: {', '.join(paths)}; pass files that contain some text")
    for line in notes.lines():
        warn(line)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def source_signature(paths) -> list[list] | None:
    """``[path, size, mtime_ns]`` of every file a corpus of ``paths`` reads (a folder's files
    as they are read, a .zip or .gz as one file): what ``make`` and ``rsync`` compare to tell
    that files are unchanged without reading them. None for standard input, which cannot be
    checked without reading it.

    >>> source_signature(["-"]) is None
    True
    """
    paths = _as_paths(paths)
    if "-" in paths:
        return None
    _check_inputs(paths, None)
    files = [f for p in paths for f in (_folder_listing(p) if os.path.isdir(p) else [p])]
    return [[os.path.abspath(f), st.st_size, st.st_mtime_ns] for f in files
            for st in [os.stat(f)]]


def split_corpus(text: str, val_fraction: float) -> tuple[str, str]:
    """Split ``text`` into ``(train, val)``; val is the LAST ``int(len(text) * val_fraction)`` chars.

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
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise CharLMError(f"val_fraction must be in [0, 1), got {val_fraction!r}; pass e.g. --val-fraction 0.1")
    return n_chars - int(n_chars * val_fraction)


# ----------------------------------------------------------------------------- options


def _check_options(encoding, errors, newlines, max_chars, max_input_bytes) -> codecs.CodecInfo:
    try:
        codec = codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise CharLMError(
            f"unknown encoding {encoding!r}; pass a Python codec name to --encoding, e.g. utf-8, latin-1, gbk, utf-16"
        ) from None
    if not getattr(codec, "_is_text_encoding", True):
        raise CharLMError(f"{encoding!r} is not a text encoding; pass e.g. --encoding utf-8, latin-1, gbk, utf-16")
    for option, value in (("errors", errors), ("newlines", newlines)):
        if value not in CHOICES[option]:
            *first, last = CHOICES[option]
            raise CharLMError(f"unknown {option} mode {value!r}; pass --{option} {', '.join(first)} or {last}")
    if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1):
        raise CharLMError(f"max_chars must be a positive whole number, got {max_chars!r}; pass e.g. --max-chars 1000000")
    if isinstance(max_input_bytes, bool) or not isinstance(max_input_bytes, int) or max_input_bytes < 1:
        raise CharLMError(f"max_input_bytes must be a positive whole number, got {max_input_bytes!r}; pass e.g. --max-input-bytes 4000000000")
    return codec


def _as_paths(paths) -> list[str]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    paths = [os.fsdecode(p) for p in paths]
    if not paths:
        raise CharLMError("no corpus given; pass at least one file, folder, .zip, .gz or -")
    return paths


def _check_inputs(paths: list[str], member: str | None) -> None:
    if member is not None and not any(_is_zip(p) for p in paths):
        raise CharLMError(f"--member {member!r} applies only to a .zip; pass a .zip or drop --member")
    for path in paths:
        if path != "-" and not os.path.exists(path):
            raise CharLMError(f"{path}: no such file or folder; check the path")


def _stdin_bytes(paths: list[str], stdin):
    """The byte stream ``-`` reads: ``stdin`` (or the bytes under a text stream), else sys.stdin's."""
    if stdin is None and "-" in paths:
        stdin = sys.stdin.buffer
    return getattr(stdin, "buffer", stdin)


# ----------------------------------------------------------------------------- pieces -> text


def _joined(pieces: Iterator[Iterator[str]]) -> Iterator[str]:
    """The non-empty texts of every piece, with one "\\n" between a piece that does not end
    with a newline and the next non-empty piece."""
    need_separator = False
    with closing(pieces):
        for piece in pieces:
            with closing(piece):
                last = yield from _piece_texts(piece, need_separator)
            if last:  # an empty piece changes nothing
                need_separator = last != "\n"


def _piece_texts(piece: Iterator[str], separator_first: bool) -> Generator[str, None, str]:
    """The non-empty texts of ``piece``, after a "\\n" if asked; returns its last character."""
    last = ""
    for text in piece:
        if not text:
            continue
        if not last and separator_first:
            yield "\n"
        last = text[-1]
        yield text
    return last


def _normalised(texts: Iterator[str], norm: "_Normaliser") -> Iterator[str]:
    with closing(texts):
        for text in texts:
            yield norm.feed(text)
    yield norm.finish()


# ----------------------------------------------------------------------------- inputs -> pieces


def _is_zip(path: str) -> bool:
    return path != "-" and path.lower().endswith(".zip") and not os.path.isdir(path)


def _is_gz(path: str) -> bool:
    return path.lower().endswith(".gz") and not os.path.isdir(path)


class _Budget:
    """Total decompressed bytes allowed from .gz/.zip inputs (zip/gzip bomb guard)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0


class _Notes:
    """What reading skipped or guessed, told once it is done: one line per input and kind.

    ``where`` is the folder or zip a file came from, or the file itself when it was named.
    """

    def __init__(self):
        self.names: dict[tuple, dict[str, None]] = {}  # (where, kind) -> names, in order, once each

    def add(self, where: str, kind, name: str) -> None:
        self.names.setdefault((where, kind), {})[name] = None

    def lines(self) -> Iterator[str]:
        for (where, kind), names in self.names.items():
            yield _note_line(where, kind, list(names))


def _note_line(where: str, kind, names: list[str]) -> str:
    if names == [where]:  # a file the user named; only a byte-order mark is ever noted for one
        return f"warning: {where}: starts with a {kind[1].upper()} byte-order mark; read as {kind[1].upper()}"
    inside = _few([_inside(where, name) for name in names])
    if kind == "binary":
        return f"warning: {where}: skipped {_files(len(names), 'binary file')} ({inside})"
    return f"warning: {where}: read {_files(len(names))} as {kind[1].upper()} by the byte-order mark ({inside})"


def _inside(where: str, name: str) -> str:
    """``name`` as seen from inside the folder or zip ``where``."""
    return name.removeprefix(f"{where}:") if name.startswith(f"{where}:") else os.path.relpath(name, where)


def _files(n: int, what: str = "file") -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _few(names: list[str], n: int = 3) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", ... {len(names)} files in all" if len(names) > n else "")


@dataclass
class _Reading:
    """What the readers of one ``read_corpus`` call share."""

    encoding: str  # a codec name; the default "utf-8" also follows UTF-16/32 byte-order marks
    errors: str
    member: str | None
    budget: _Budget
    stdin: object  # a byte stream, for "-"
    notes: _Notes = field(default_factory=_Notes)


def _all_pieces(paths: list[str], reading: _Reading) -> Iterator[Iterator[str]]:
    """One decoded-text iterator per file, for every path in order; nothing opened before it is needed."""
    for path in paths:
        yield from _pieces(path, reading)


def _pieces(path: str, reading: _Reading) -> Iterator[Iterator[str]]:
    """Yield one decoded-text iterator per file that ``path`` stands for."""
    if path == "-":
        yield _text_or_raise("<stdin>", reading.stdin, reading)
    elif os.path.isdir(path):
        nothing = f"folder {path} has no text files; put .txt files in it or pass a file"
        yield from _text_entries(path, _folder_files(path), reading, nothing)
    elif _is_zip(path):
        yield from _zip_pieces(path, reading)
    elif _is_gz(path):
        with _open(path) as raw:
            try:
                gz = gzip.GzipFile(fileobj=raw, mode="rb")
            except OSError as e:  # pragma: no cover - GzipFile reads lazily
                raise CharLMError(f"{path}: corrupt gzip file ({e}); re-create or re-download it") from None
            yield _text_or_raise(path, _Guarded(gz, path, "gzip file", reading.budget), reading)
    else:
        with _open(path) as f:
            yield _text_or_raise(path, _Guarded(f, path, None, None), reading)


def _text_entries(where: str, entries, reading: _Reading, nothing: str) -> Iterator[Iterator[str]]:
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


def _open(path: str):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise CharLMError(f"{path}: no such file or folder; check the path") from None
    except PermissionError:
        raise CharLMError(f"{path}: permission denied; make it readable (chmod +r) or pass another path") from None
    except OSError as e:
        raise CharLMError(f"{path}: cannot open ({e.strerror or e}); check the path") from None


def _hidden(rel_parts) -> bool:
    return any(part.startswith(".") for part in rel_parts)


def _folder_files(folder: str) -> Iterator[tuple[str, "_Guarded"]]:
    """``(path, stream)`` of each file of ``folder``, open while the caller reads it."""
    for full in _folder_listing(folder):
        with _open(full) as f:
            yield full, _Guarded(f, full, None, None)


def _folder_listing(folder: str) -> list[str]:
    """The files of ``folder``, recursively, sorted by path components; hidden entries skipped."""
    files = []

    def unreadable(e: OSError):
        raise CharLMError(f"{e.filename}: cannot list folder ({e.strerror}); make it readable (chmod +rx) or pass another path")

    for root, dirs, names in os.walk(folder, onerror=unreadable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, folder).split(os.sep)
            if not _hidden(rel) and os.path.isfile(full):
                files.append((rel, full))
    return [full for _, full in sorted(files)]


def _zip_pieces(path: str, reading: _Reading) -> Iterator[Iterator[str]]:
    with _open(path) as raw:
        try:
            zf = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as e:
            raise CharLMError(f"{path}: not a valid zip archive ({e}); re-create or re-download it") from None
        with zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if reading.member is not None:
                info = _zip_member(path, infos, reading.member)
                yield _text_or_raise(f"{path}:{info.filename}", _zip_open(zf, info, path, reading.budget), reading)
                return
            candidates = sorted(
                (i for i in infos if not i.filename.startswith("__MACOSX/") and not _hidden(i.filename.split("/"))),
                key=lambda i: i.filename,
            )
            members = ((f"{path}:{i.filename}", _zip_open(zf, i, path, reading.budget)) for i in candidates)
            nothing = f"{path}: no text member in this zip archive (it has {_listing(infos)}); pass a zip that contains text files"
            yield from _text_entries(path, members, reading, nothing)


def _zip_member(path: str, infos, member: str) -> zipfile.ZipInfo:
    chosen = [i for i in infos if i.filename == member]
    if not chosen:
        raise CharLMError(f"{path}: no member named {member!r} (it has {_listing(infos)}); pass one of these names to --member")
    return chosen[-1]


def _listing(infos) -> str:
    return _few([repr(i.filename) for i in infos], 5) if infos else "no files"


def _zip_open(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, budget) -> "_Guarded":
    name = f"{path}:{info.filename}"
    try:
        stream = zf.open(info)  # by the ZipInfo from the listing; never extracted
    except RuntimeError as e:  # encrypted
        raise CharLMError(f"{name}: cannot read ({e}); pass an unencrypted zip") from None
    except NotImplementedError as e:
        raise CharLMError(f"{name}: unsupported zip compression ({e}); re-create the zip with deflate") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise CharLMError(f"{path}: not a valid zip archive ({e}); re-create or re-download it") from None
    return _Guarded(stream, name, "zip archive", budget)


class _Guarded:
    """A byte stream whose read() turns I/O and decompression errors into CharLMError.

    With a ``budget``, reading more than ``budget.limit`` decompressed bytes in total is an
    error; at most one byte past the limit is ever requested from the decompressor.
    """

    def __init__(self, stream, name: str, container: str | None, budget: _Budget | None):
        self.stream, self.name, self.container, self.budget = stream, name, container, budget

    def read(self, n: int) -> bytes:
        if self.budget is not None:
            n = min(n, self.budget.limit - self.budget.used + 1)
        try:
            data = self.stream.read(n)
        except CharLMError:
            raise
        except PermissionError:
            raise CharLMError(f"{self.name}: permission denied; make it readable (chmod +r) or pass another path") from None
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile, ValueError) as e:
            if self.container is None:
                raise CharLMError(f"{self.name}: cannot read ({e}); check the file or the disk") from None
            raise CharLMError(f"{self.name}: corrupt {self.container} ({e}); re-create or re-download it") from None
        if self.budget is not None:
            self.budget.used += len(data)
            if self.budget.used > self.budget.limit:
                raise CharLMError(
                    f"{self.name}: more than {self.budget.limit:,} bytes after decompression"
                    f" (a zip/gzip bomb guard); raise --max-input-bytes if you trust this file"
                )
        return data


# ----------------------------------------------------------------------------- bytes -> text


def _text_or_raise(name: str, stream, reading: _Reading) -> Iterator[str]:
    """The text of a file the user named: binary content is an error."""
    kind, text = _open_text(name, stream, reading, where=name)
    if kind is not None:
        description, way_out = kind
        raise CharLMError(f"{name} looks like a binary file ({description}), not text; {way_out}")
    return text


def _open_text(name: str, stream, reading: _Reading, where: str):
    """Sniff the head of ``stream``: ``((description, way_out), None)`` if binary, else ``(None, texts)``.

    ``texts`` yields the decoded text chunk by chunk (leading BOM dropped, not normalised).
    With the default utf-8, a UTF-16/32 byte-order mark picks that encoding (noted under
    ``where``). Text in UTF-16/32 read as another encoding is an error naming the right one.
    """
    head_chunks = _read_head(stream)
    head = b"".join(head_chunks)[:SNIFF_BYTES]
    encoding = (_bom_encoding(head) if reading.encoding == "utf-8" else None) or reading.encoding
    kind = _binary_kind(head, encoding)
    if kind == _NUL and (wide := _bom_encoding(head) or _bomless_wide_encoding(head)) not in (None, encoding):
        raise CharLMError(_wrong_encoding(name, where, head, encoding, wide))
    if kind is not None:
        return kind, None
    if encoding != reading.encoding:
        reading.notes.add(where, ("bom", encoding), name)
    return None, _decode(name, stream, head_chunks, encoding=encoding, errors=reading.errors)


def _read_head(stream) -> list[bytes]:
    """The first chunks of ``stream``, at least ``SNIFF_BYTES`` bytes unless it is shorter."""
    head_chunks, size = [], 0
    while size < SNIFF_BYTES:
        chunk = stream.read(CHUNK_BYTES)
        if not chunk:
            break
        head_chunks.append(chunk)
        size += len(chunk)
    return head_chunks


def _binary_kind(head: bytes, encoding: str):
    """(description, way out) if ``head`` looks binary, else None.

    As in git, a NUL character in the head makes a file binary (``_NUL``).
    """
    for magic, description, way_out in _MAGIC:
        if head.startswith(magic):
            return description, way_out
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "WebP image", b"WAVE": "WAV audio", b"AVI ": "AVI video"}[head[8:12]], "remove it from the corpus paths"
    if head[257:262] == b"ustar":
        return "tar archive", "extract it and pass the folder"
    if "\x00" in codecs.getincrementaldecoder(encoding)("replace").decode(head, False):
        return _NUL
    # Random bytes are ~45% undecodable as UTF-8; Western text in Latin-1 stays well under 25%
    # and gets the "invalid utf-8 at byte N; pass --encoding" message instead.
    limit = max(4, len(head) // 4)
    if _undecodable_bytes(head, encoding, limit) >= limit:
        return f"most of its first bytes are not {encoding}", "remove it, or pass --encoding if it is text in another encoding"
    return None


def _bom_encoding(head: bytes) -> str | None:
    """The UTF-16/32 codec that the byte-order mark at the start of ``head`` names, if any."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return None


def _bomless_wide_encoding(head: bytes) -> str | None:
    """The UTF-16/32 codec in which ``head`` reads as mostly Latin text, if one does.

    In such text each character is a Latin byte and NULs ("a\\0b\\0" in UTF-16-LE,
    "\\0\\0\\0a" in UTF-32-BE); at least 3 characters in 4 must look so.
    """
    for width in (4, 2):
        n = len(head) // width
        for order in ("le", "be"):
            units = (head[i * width : (i + 1) * width] for i in range(n))
            if order == "be":
                units = (u[::-1] for u in units)
            if n and 4 * sum(u[0] in _LATIN_BYTES and not any(u[1:]) for u in units) >= 3 * n:
                return f"utf-{8 * width}-{order}"
    return None


def _wrong_encoding(name: str, where: str, head: bytes, encoding: str, wide: str) -> str:
    """The error for UTF-16/32 text (``wide``) read as ``encoding``; it is text, so even in a folder."""
    label = wide.upper()
    mark = "with" if _bom_encoding(head) else "without"
    if where == name:
        way_out = f"pass --encoding {wide}"
    else:  # --encoding applies to every file: converting this one may be the better way
        iconv = label.replace("-LE", "LE").replace("-BE", "BE")
        way_out = f"convert it to UTF-8 (iconv -f {iconv} -t UTF-8), or pass --encoding {wide} if every file in {where} is {label}"
    return f"{name} looks like {label} text {mark} a byte-order mark, not {encoding}; {way_out}"


def _undecodable_bytes(head: bytes, encoding: str, limit: int) -> int:
    """Count the bytes of ``head`` that fail to decode, stopping once ``limit`` is reached."""
    bad = 0
    data = head
    while data and bad < limit:
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        try:
            decoder.decode(data, final=False)
            break
        except UnicodeDecodeError as e:
            bad += max(1, e.end - e.start)
            data = data[e.end :]
    return bad


def _decode(name, stream, head_chunks, *, encoding, errors) -> Iterator[str]:
    """Decode ``head_chunks`` then the rest of ``stream``; errors report the absolute byte offset."""
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    bom = _bom_encoding(b"".join(head_chunks[:4])[:4])
    offset = 0  # bytes of this file given to the decoder so far
    first = True

    def decode(chunk: bytes, final: bool) -> str:
        pending = len(decoder.getstate()[0])  # bytes held back from the previous chunk
        try:
            return decoder.decode(chunk, final)
        except UnicodeDecodeError as e:
            at = offset - pending + e.start
            if at == 0 and bom:
                raise CharLMError(
                    f"{name}: invalid {encoding} at byte 0, it starts with a {bom.upper()} byte-order mark; pass --encoding {bom}"
                ) from None
            raise CharLMError(
                f"{name}: invalid {encoding} at byte {at}; pass --encoding if the file uses another encoding,"
                f" or --errors replace to substitute bad bytes"
            ) from None

    def chunks():
        yield from head_chunks
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk

    for chunk in chunks():
        text = decode(chunk, False)
        offset += len(chunk)
        if first and text:
            first = False
            text = text.removeprefix("\ufeff")
        yield text
    text = decode(b"", True)
    if first and text:
        text = text.removeprefix("\ufeff")
    yield text


class _Normaliser:
    """Streaming CRLF -> LF, then optional LF -> space and lowercase, exact across chunk cuts.

    A trailing "\\r" waits for the next chunk (it may be half of a CRLF). With ``lowercase``,
    text after the last space/newline waits too, because ``str.lower`` maps a final sigma by
    its neighbours (``"ΑΣ".lower() == "ας"``) and whitespace is a safe place to cut.
    """

    def __init__(self, newlines: str, lowercase: bool):
        self.space = newlines == "space"
        self.lowercase = lowercase
        self.cr = False
        self.pending = ""

    def feed(self, text: str) -> str:
        if self.cr:
            text = "\r" + text
        self.cr = text.endswith("\r")
        if self.cr:
            text = text[:-1]
        return self._rest(text.replace("\r\n", "\n") if "\r" in text else text)  # `in`: a fast scan

    def finish(self) -> str:
        text = "\r" if self.cr else ""
        self.cr = False
        out = self._rest(text) + (self.pending.lower() if self.lowercase else "")
        self.pending = ""
        return out

    def _rest(self, text: str) -> str:
        if self.space:
            text = text.replace("\n", " ")
        if not self.lowercase:
            return text
        text = self.pending + text
        cut = max(text.rfind(" "), text.rfind("\n"))
        if cut < 0 and len(text) > _LOWER_HOLD:  # no whitespace for a long stretch: cut anyway
            cut = len(text)
        if cut < 0:
            self.pending = text
            return ""
        self.pending = text[cut:]
        return text[:cut].lower()
