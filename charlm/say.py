"""What charlm says as it works: plain lines, :class:`Detail` lines (the reasoning behind
a choice, which a face may hide: ``charlm train`` shows them with ``-v``), and durations
(:func:`format_seconds`, the one wording of a span of time). A Detail is a
``str``, so a ``log`` callback that prints every line (the Python API's default) needs to
know nothing of it.

    >>> line = Detail("recipe: width 1x256 (...)")
    >>> isinstance(line, str), is_detail(line), is_detail("recipe: lstm 1x256 ...")
    (True, True, False)
"""

from __future__ import annotations


class Detail(str):
    """A line of reasoning: shown on request, not by default."""


def is_detail(line: str) -> bool:
    return isinstance(line, Detail)


def details(log):
    """``log`` that marks each line it is given a :class:`Detail`."""
    return lambda line: log(Detail(line))


def format_seconds(seconds: float) -> str:
    """``1h02m``, ``3m07s`` or ``12s``.

    >>> format_seconds(3725), format_seconds(187.4), format_seconds(12.2)
    ('1h02m', '3m07s', '12s')
    """
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
