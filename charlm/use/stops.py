"""What a sample's text becomes: cut at its stop strings as it streams (:class:`StopCut`), and
the finished :class:`Sample` that ``charlm sample --json`` and the Python API hand out.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..options.sampling import SamplingOptions


class StopCut:
    """A row's text, streamed, cut at its first stop string: ``feed`` each new piece and get
    what may be shown now; a possible start of a stop string is held back until the next
    piece says whether it is one. ``flush`` gives what is held back once the row ends.

    >>> cut = StopCut(("END",))
    >>> cut.feed("abcE"), cut.feed("N"), cut.feed("Dxyz"), cut.stopped
    ('abc', '', '', True)
    """

    def __init__(self, stop: tuple[str, ...]):
        self.stop, self.text, self.shown, self.stopped = stop, "", 0, False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.text += piece
        self.text, self.stopped = cut_at_stop(self.text, self.stop)
        end = len(self.text) if self.stopped else max(self.shown, len(self.text) - self._partial())
        out, self.shown = self.text[self.shown : end], end
        return out

    def _partial(self) -> int:
        """The length of the longest end of the text that begins a stop string."""
        return max(
            (k for s in self.stop for k in range(1, len(s)) if self.text.endswith(s[:k])), default=0
        )

    def flush(self) -> str:
        out, self.shown = self.text[self.shown :], len(self.text)
        return out


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` up to the first occurrence of any stop string, and whether one was found.

    >>> cut_at_stop("to be, or not", (",", "or"))
    ('to be', True)
    """
    ends = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[: min(ends)], True) if ends else (text, False)


@dataclass(frozen=True)
class Sample:
    """One finished sample: its ``prefix``, the ``text`` generated after it (``prefix + text``
    is the sample as ``charlm sample`` prints it), why it ended (``finish_reason``: ``"length"``
    or ``"stop"``, a stop string met and left out) and the ``options`` it was drawn with, their
    seed set. :meth:`to_dict` is a line of ``charlm sample --json``.

    >>> Sample("To be", ", or not", "stop", SamplingOptions(seed=1)).to_dict()["finish_reason"]
    'stop'
    """

    prefix: str
    text: str
    finish_reason: str
    options: SamplingOptions

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "prefix": self.prefix,
            "finish_reason": self.finish_reason,
            "seed": self.options.seed,
            "settings": self.options.to_dict(),
        }
