"""The one exception type charlm raises for problems the user can fix.

A :class:`CharLMError` carries a single line that names the problem and the way out,
e.g. ``corpus.txt: invalid UTF-8 at byte 1234; pass --encoding or --errors replace``.
The command-line interface prints it as one line and exits non-zero, with no traceback.
"""


class CharLMError(Exception):
    """A problem with the user's input, files or options, explained in one line."""


def first_line(e: BaseException) -> str:
    """The first line of ``e``'s message (its type's name if it has none): TensorFlow's and
    Keras's errors run to pages of internals, and a CharLMError quotes one line of them.

    >>> first_line(ValueError("bad shape\\n  at layer 3")), first_line(KeyError())
    ('bad shape', 'KeyError')
    """
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
