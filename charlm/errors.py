"""The one exception type charlm raises for problems the user can fix.

A :class:`CharLMError` carries a single line that names the problem and the way out,
e.g. ``corpus.txt: invalid UTF-8 at byte 1234; pass --encoding or --errors replace``.
The command-line interface prints it as one line and exits non-zero, with no traceback.
"""


class CharLMError(Exception):
    """A problem with the user's input, files or options, explained in one line."""
