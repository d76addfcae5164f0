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


def one_line(text: str) -> str:
    """``text`` as one printable line, whatever the values it quotes hold: a newline or any
    other control character (in a path, a run's name, a TOML key) is written as its escape,
    and each byte of a file name that is not UTF-8 (Python's stand-in for it, a lone
    surrogate) as ``\\xNN``. Every error line of every command passes through it, so that no
    value spans two lines or fails to print on a strict UTF-8 stream.

    >>> one_line("runs/my runs\\nété \\udcff/x\\x1b")
    'runs/my runs\\\\nété \\\\xff/x\\\\x1b'
    """
    if text.isprintable():
        return text
    return "".join(_visible(ch) for ch in text)


def _visible(ch: str) -> str:
    if ch.isprintable():
        return ch
    if 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable byte, as os.fsdecode and argv give it
        return f"\\x{ord(ch) - 0xDC00:02x}"
    return ch.encode("unicode_escape").decode("ascii")
