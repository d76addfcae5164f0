"""Decoded pieces -> one normalised text, streamed: pieces joined, CRLF -> LF, then optionally
LF -> space and lowercase, exact wherever the chunks were cut.

    >>> def piece(*texts):                  # a reader's piece: a generator of decoded texts
    ...     yield from texts
    >>> "".join(joined(piece(piece("one"), piece("", "two\\n"), piece("three"))))
    'one\\ntwo\\nthree'
    >>> norm = Normaliser(newlines="space", lowercase=True)
    >>> norm.feed("One\\r"), norm.feed("\\nΤΕΛΟΣ"), norm.finish()  # a CRLF cut in two; a final Σ
    ('', 'one', ' τελος')
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import closing

from .decode import Texts
from .reading import Pieces

_LOWER_HOLD = 1 << 20  # lowercase: longest run without whitespace held back before cutting anyway


def joined(pieces: Pieces) -> Texts:
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


def normalised(texts: Texts, norm: Normaliser) -> Texts:
    """``texts`` through ``norm``, then what it held back."""
    with closing(texts):
        for text in texts:
            yield norm.feed(text)
    yield norm.finish()


class Normaliser:
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
