"""Text -> Unicode code points, in chunks: the one conversion the vocabulary, the id file and
the memorisation index share.

A Python ``str`` of 100 MB becomes 400 MB as UTF-32, so the text is converted a few million
characters at a time: the caller handles each chunk and lets it go::

    >>> [(start, cps.tolist()) for start, cps in chunks("héllo", size=2)]
    [(0, [104, 233]), (2, [108, 108]), (4, [111])]

Lone surrogates (e.g. from a command-line argument that was not valid UTF-8) pass through as
their code points U+D800..U+DFFF instead of raising. Pure numpy: no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import CharLMError

CHUNK_CHARS = 1 << 22  # characters converted at a time (16 MB of UTF-32)


def code_points(text: str) -> np.ndarray:
    """The code points of ``text`` (uint32), all at once: for a piece already cut small.

    >>> code_points("a\\udc80").tolist()
    [97, 56448]
    """
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def chunks(text: str, size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, uint32 code points)`` for successive pieces of ``text`` of ``size``
    characters (default :data:`CHUNK_CHARS`); ``start`` is the piece's offset in ``text``."""
    size = size or CHUNK_CHARS
    for start in range(0, len(text), size):
        yield start, code_points(text[start : start + size])


SURROGATES = slice(0xD800, 0xE000)  # code points that are half of a UTF-16 pair, never a character


def lone_surrogate(cp: int, at: int) -> CharLMError:
    """The error for text holding the lone surrogate ``cp`` at character ``at``: no valid
    Unicode, so no vocabulary may hold it (the one wording, wherever it is found)."""
    return CharLMError(
        f"text has a lone surrogate U+{cp:04X} at character {at}, which is not valid Unicode;"
        " read the corpus with read_corpus (or decode it with errors='replace')"
    )
