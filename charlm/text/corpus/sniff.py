"""Tell from the head of a file whether it is text, and in which encoding if not the one given.

Binary: a known magic number, a NUL character as in git, or mostly undecodable bytes. Text
in UTF-16/32: told by its byte-order mark, or without one by a NUL beside each Latin letter.

    >>> binary_kind(b"%PDF-1.7 ...", "utf-8", MAGIC)
    ('PDF document', 'extract its text first')
    >>> bom_encoding(b"\\xff\\xfea\\x00"), bomless_wide_encoding("abc".encode("utf-16-be"))
    ('utf-16-le', 'utf-16-be')
"""

from __future__ import annotations

import codecs

_ASIDE = "remove it from the corpus paths"

# Magic numbers of binary formats that no reader takes: (prefix, description, way out).
# The readers' own (zip, gzip) are in readers.MAGIC, which adds them to these.
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG image", _ASIDE),
    (b"\xff\xd8\xff", "JPEG image", _ASIDE),
    (b"GIF87a", "GIF image", _ASIDE),
    (b"GIF89a", "GIF image", _ASIDE),
    (b"\x7fELF", "ELF executable or shared library", _ASIDE),
    (b"%PDF-", "PDF document", "extract its text first"),
    (b"SQLite format 3\x00", "SQLite database", _ASIDE),
)
_RIFF = {b"WEBP": "WebP image", b"WAVE": "WAV audio", b"AVI ": "AVI video"}  # at bytes 8-12
NUL = ("it contains NUL bytes", _ASIDE)  # git's test for binary

# Byte-order marks, longest first: UTF-32-LE's starts with UTF-16-LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# The codecs that read the byte order from a byte-order mark, and refuse text without one.
_ORDER_FROM_BOM = {
    "utf-16": (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE),
    "utf-32": (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE),
}
# the bytes of U+0000-00FF text
_LATIN_BYTES = frozenset(b"\t\n\r" + bytes(range(0x20, 0x7F)) + bytes(range(0xA0, 0x100)))


def binary_kind(head: bytes, encoding: str, magic) -> tuple[str, str] | None:
    """(description, way out) if ``head`` looks binary, else None.

    ``magic`` is the table of (prefix, description, way out) to check first. As in git, a
    NUL character in the head makes a file binary (``NUL``).
    """
    for prefix, description, way_out in magic:
        if head.startswith(prefix):
            return description, way_out
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return _RIFF[head[8:12]], _ASIDE
    if head[257:262] == b"ustar":
        return "tar archive", "extract it and pass the folder"
    if "\x00" in codecs.getincrementaldecoder(encoding)("replace").decode(head, False):
        return NUL
    # Random bytes are ~45% undecodable as UTF-8; Western text in Latin-1 stays well under 25%
    # and gets the "invalid utf-8 at byte N; pass --encoding" message instead.
    limit = max(4, len(head) // 4)
    if _undecodable_bytes(head, encoding, limit) >= limit:
        return (
            f"most of its first bytes are not {encoding}",
            "remove it, or pass --encoding if it is text in another encoding",
        )
    return None


def bom_encoding(head: bytes) -> str | None:
    """The UTF-16/32 codec that the byte-order mark at the start of ``head`` names, if any."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return None


def bomless_wide_encoding(head: bytes) -> str | None:
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


def lacks_bom(head: bytes, encoding: str) -> bool:
    """Whether ``encoding`` is utf-16 or utf-32, which take the byte order from a byte-order
    mark, and ``head`` does not start with one of that width.

    >>> lacks_bom(b"a\\x00b\\x00", "utf-16"), lacks_bom(b"\\xff\\xfea\\x00", "utf-16")
    (True, False)
    """
    boms = _ORDER_FROM_BOM.get(encoding)
    return boms is not None and not head.startswith(boms)


def no_bom(name: str, where: str, head: bytes, encoding: str, wide: str | None) -> tuple[str, str]:
    """The error (what is wrong, the way out) for text read as utf-16 or utf-32 without the byte-order mark they need: the
    encoding it looks like (``wide``), if one, else the two byte orders."""
    if wide is not None:
        return wrong_encoding(name, where, head, encoding, wide)
    return (
        f"{name} does not start with the byte-order mark that --encoding {encoding} needs to"
        " tell the byte order",
        f"pass --encoding {encoding}-le or {encoding}-be, or the encoding the file is in (e.g. utf-8)",
    )


def wrong_encoding(name: str, where: str, head: bytes, encoding: str, wide: str) -> tuple[str, str]:
    """The error (what is wrong, the way out) for UTF-16/32 text (``wide``) read as ``encoding``; it is text, so even in a
    folder, where ``where`` (the folder or zip) differs from ``name``."""
    label = wide.upper()
    mark = "with" if bom_encoding(head) else "without"
    if where == name:
        way_out = f"pass --encoding {wide}"
    else:  # --encoding applies to every file: converting this one may be the better way
        iconv = label.replace("-LE", "LE").replace("-BE", "BE")
        way_out = (
            f"convert it to UTF-8 (iconv -f {iconv} -t UTF-8), or pass --encoding {wide}"
            f" if every file in {where} is {label}"
        )
    return f"{name} looks like {label} text {mark} a byte-order mark, not {encoding}", way_out


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
