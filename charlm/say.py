"""What charlm says as it works: plain lines, and :class:`Detail` lines, the reasoning behind
a choice, which a face may hide (``charlm train`` shows them with ``-v``). A Detail is a
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
