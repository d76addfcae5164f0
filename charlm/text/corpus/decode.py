"""Bytes -> text: sniff the head of a byte stream, then decode it chunk by chunk.

The stream is read ``chunk_bytes`` at a time through an incremental decoder, so a caller
that stops early never reads the rest, and an invalid byte is reported at its offset in the
file, wherever the chunks were cut::

    >>> import io
    >>> how = Decoding("utf-8", "strict", chunk_bytes=7, sniff_bytes=8000, magic=())
    >>> opened = open_text("t.txt", "t.txt", io.BytesIO("\\ufeffcafé".encode()), how)
    >>> opened.binary, opened.encoding, list(opened.texts)   # the BOM dropped, é across a cut
    (None, 'utf-8', ['caf', 'é', ''])
"""

from __future__ import annotations

import codecs
from collections.abc import Generator
from dataclasses import dataclass
from typing import NamedTuple

from ...errors import CharLMError
from .sniff import (
    NUL,
    binary_kind,
    bom_encoding,
    bomless_wide_encoding,
    lacks_bom,
    no_bom,
    wrong_encoding,
)


@dataclass(frozen=True)
class Decoding:
    """How every file of one corpus is decoded."""

    encoding: str  # a codec name; the default "utf-8" also follows UTF-16/32 byte-order marks
    errors: str  # strict, replace or ignore
    chunk_bytes: int  # bytes per read
    sniff_bytes: int  # the head of each file checked for binary content
    magic: tuple  # (prefix, description, way out) of each binary format told by its start


# one file's text, chunk by chunk: a generator, so that whoever reads it can close it early
Texts = Generator[str, None, None]


class Opened(NamedTuple):
    """A sniffed stream: binary (``binary`` says what it is), or text in ``encoding``."""

    binary: tuple[str, str] | None  # (description, way out)
    encoding: str | None  # the encoding it is read in: a byte-order mark may have chosen it
    texts: Texts | None  # the text chunk by chunk, a leading BOM dropped, not normalised


def open_text(name: str, where: str, stream, how: Decoding) -> Opened:
    """Sniff the head of ``stream`` and, if it is text, decode it lazily.

    With the default utf-8, a UTF-16/32 byte-order mark picks that encoding. Text in
    UTF-16/32 read as another encoding is an error naming the right one; ``where`` is the
    folder or zip that ``name`` is in (``name`` itself when the user named it).
    """
    head_chunks = _read_head(stream, how)
    head = b"".join(head_chunks)[: how.sniff_bytes]
    encoding = (bom_encoding(head) if how.encoding == "utf-8" else None) or how.encoding
    if head and lacks_bom(head, encoding):  # utf-16/utf-32 cannot tell its byte order
        wide = bom_encoding(head) or bomless_wide_encoding(head)
        kind = None if wide else binary_kind(head, "latin-1", how.magic)
        if kind is not None:  # a binary file is skipped (in a folder) as with other encodings
            return Opened(kind, None, None)
        raise DecodeError(*no_bom(name, where, head, encoding, wide))
    try:
        kind = binary_kind(head, encoding, how.magic)
    except UnicodeError as e:  # a codec that refuses these bytes outright (idna, ...)
        raise DecodeError(*_undecodable(name, encoding, e)) from None
    if kind == NUL:  # UTF-16/32 text has NULs too: named as text in the wrong encoding
        wide = bom_encoding(head) or bomless_wide_encoding(head)
        if wide not in (None, encoding):
            raise DecodeError(*wrong_encoding(name, where, head, encoding, wide))
    if kind is not None:
        return Opened(kind, None, None)
    return Opened(None, encoding, _decode(name, stream, head_chunks, encoding, how))


def _read_head(stream, how: Decoding) -> list[bytes]:
    """The first chunks of ``stream``, at least ``sniff_bytes`` bytes unless it is shorter."""
    head_chunks, size = [], 0
    while size < how.sniff_bytes:
        chunk = stream.read(how.chunk_bytes)
        if not chunk:
            break
        head_chunks.append(chunk)
        size += len(chunk)
    return head_chunks


def _decode(name: str, stream, head_chunks: list[bytes], encoding: str, how: Decoding) -> Texts:
    """Decode ``head_chunks`` then the rest of ``stream``; an error tells the byte's offset in
    the file."""
    decoder = codecs.getincrementaldecoder(encoding)(how.errors)
    bom = bom_encoding(b"".join(head_chunks[:4])[:4])
    offset = 0  # bytes of this file given to the decoder so far
    first = True

    def decode(chunk: bytes, final: bool) -> str:
        pending = len(decoder.getstate()[0])  # bytes held back from the previous chunk
        try:
            return decoder.decode(chunk, final)
        except UnicodeDecodeError as e:
            raise DecodeError(*_invalid(name, encoding, offset - pending + e.start, bom)) from None
        except UnicodeError as e:  # not at a byte: the codec refuses the text as a whole
            raise DecodeError(*_undecodable(name, encoding, e)) from None

    def chunks():
        yield from head_chunks
        while chunk := stream.read(how.chunk_bytes):
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


def _invalid(name: str, encoding: str, at: int, bom: str | None) -> tuple[str, str]:
    """The error (what is wrong, the way out) for a byte at offset ``at`` that ``encoding``
    cannot decode."""
    if at == 0 and bom:
        what = (
            f"{name}: invalid {encoding} at byte 0, it starts with a {bom.upper()} byte-order mark"
        )
        return what, f"pass --encoding {bom}"
    return (
        f"{name}: invalid {encoding} at byte {at}",
        "pass --encoding if the file uses another encoding, or --errors replace to substitute"
        " bad bytes",
    )


def _undecodable(name: str, encoding: str, e: UnicodeError) -> tuple[str, str]:
    """The error (what is wrong, the way out) for a codec that refuses the text without
    naming a byte."""
    return (
        f"{name}: cannot be read as {encoding} ({e})",
        "pass --encoding with the encoding it is in, e.g. utf-8, latin-1, utf-16-le",
    )


class DecodeError(CharLMError):
    """Text that the reading options (the encoding, what to do with bad bytes) cannot read:
    ``what`` is wrong with which file, and ``way_out``, the options that would read it. A
    caller that reads with options of its own choosing (a prompt read as its run's corpus was)
    says its own way out."""

    def __init__(self, what: str, way_out: str):
        self.what, self.way_out = what, way_out
        super().__init__(f"{what}; {way_out}")
