"""``charlm sample --interactive``: a prompt loop around one loaded run.

Each line typed is a prefix; the sample (the prefix and its continuation) streams back to
standard output. Lines that start with ``:`` change an option of the samples that follow;
the commands are the fields of :class:`~charlm.options.sampling.SamplingOptions`, read by their
type and explained by their help texts, and the session's options are one SamplingOptions,
checked by its one check on every change::

    > ROMEO:
    ROMEO: and the state of the …
    > :temperature 0.5
    temperature = 0.5
    > :stop \\n\\n
    stop = \\n\\n
    > :temperature 0          (greedy, as --temperature 0)

A bad command or value prints one line and the loop goes on; end of input (Ctrl-D) or
Ctrl-C leaves. The prompt and the messages go to standard error, and the prompt only when
standard input is a terminal, so ``charlm sample --interactive < prompts.txt > out.txt``
writes the samples alone.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import fields
from typing import NamedTuple

from ..options.sampling import SamplingOptions
from ..options.setting import OptionError

SWITCH = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False}
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "s": " ", "\\": "\\"}  # \xNN and \uNNNN too


def _one(read):
    """A reader of exactly one word with ``read``."""

    def reader(words: list[str]):
        if len(words) != 1:
            raise ValueError
        return read(words[0])

    return reader


def _switch(text: str) -> bool:
    return SWITCH[text.lower()]


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("off", "none") else int(text)


def _texts(words: list[str]) -> tuple[str, ...]:
    """Each word a text, with escapes (``\\n``, ``\\s`` for a space ...); ``off``: none."""
    if [w.lower() for w in words] == ["off"]:
        return ()
    if not words:
        raise ValueError
    return tuple(unescape(w) for w in words)


def unescape(word: str) -> str:
    r"""``word`` with its escapes read: ``\n`` ``\t`` ``\r`` ``\s`` (a space) ``\\``
    ``\xNN`` ``\uNNNN``; any other backslash is a ValueError.

    >>> unescape(r"\n\nEND\s\x41\u00e9")
    '\n\nEND Aé'
    """

    def one(m):
        code = m.group(1)
        if code[0] in "xu" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code not in ESCAPES:
            raise ValueError(code)
        return ESCAPES[code]

    if re.search(r"\\$", re.sub(r"\\\\", "", word)):
        raise ValueError(word)
    return re.sub(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", one, word)


def escape(text: str) -> str:
    r"""What :func:`unescape` reads back as ``text``.

    >>> escape("\n\nEND Aé\\")
    '\\n\\nEND\\sAé\\\\'
    """
    named = {v: "\\" + k for k, v in ESCAPES.items()}
    return "".join(named.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 32 else c) for c in text)


class Reader(NamedTuple):
    """How a command reads its words, what it says when it cannot, its help metavar and an
    example value."""

    read: Callable[[list[str]], object]
    expected: str
    metavar: str
    example: str


# how each type of SamplingOptions field is typed after its command
READERS = {
    "int": Reader(_one(int), "a whole number", "N", "20"),
    "float": Reader(_one(float), "a number", "X", "0.7"),
    "bool": Reader(_one(_switch), "on or off", "on|off", "on"),
    "int | None": Reader(_one(_optional_int), "a whole number or off", "N|off", "1"),
    "tuple[str, ...]": Reader(_texts, "text or off", "TEXT...|off", "\\n\\n"),
}
FIELDS = {f.name: f for f in fields(SamplingOptions)}
OTHERS = [
    (":settings", "Show the settings."),
    (":help", "This text."),
    (":quit", "Leave (or Ctrl-D, Ctrl-C)."),
]


def reader_of(name: str) -> Reader:
    """How the command of field ``name`` reads its words: by the field's annotation as
    written (a string: sampling.py postpones its annotations)."""
    return READERS[str(FIELDS[name].type)]


def help_text(width: int = 100) -> str:
    """The commands, one per SamplingOptions field (its help text), then the others."""
    rows = [
        (f":{f.name} {reader_of(f.name).metavar}", f.metadata["help"]) for f in FIELDS.values()
    ] + OTHERS
    left = max(len(a) for a, _ in rows) + 4
    lines = [
        textwrap.fill(b, width, initial_indent=f"  {a:<{left - 2}}", subsequent_indent=" " * left)
        for a, b in rows
    ]
    return "\n".join(
        [
            "Type a prefix and press Enter: its continuation streams back. Commands:",
            *lines,
            (
                "Several words after :stop are several stop strings, with escapes: \\n newline, "
                "\\t tab,"
            ),
            "\\s space, \\\\ backslash, \\xNN, \\uNNNN.",
            "A prefix that starts with ':' is written with two: '::-)' is the prefix ':-)'.",
        ]
    )


HELP = help_text()  # built at import: a field of a type without a reader fails here, at once


class Session:
    """The options of an interactive session and what each line typed does with them.

    ``generate(prefix, options)`` yields the pieces of one sample (its first piece is the
    prefix) drawn with ``options`` (a :class:`~charlm.options.sampling.SamplingOptions`); ``out``
    receives the samples, ``say`` the messages; ``after(prefix, text)`` is called with each
    whole sample (e.g. the memorisation check)."""

    def __init__(self, generate, options: SamplingOptions, out, say, after=None):
        self.generate, self.options, self.out, self.say = generate, options, out, say
        self.after = after

    def handle(self, line: str) -> bool:
        """Do what ``line`` says; False when the session should end."""
        line = line.rstrip("\r\n")
        if line.startswith(":") and not line.startswith("::"):
            return self.command(line[1:].split())
        prefix = line[1:] if line.startswith("::") else line
        if prefix:
            self.sample(prefix)
        return True

    def command(self, words: list[str]) -> bool:
        name = words[0].lower().replace("-", "_") if words else ""
        if name in ("quit", "exit", "q"):
            return False
        if name in ("help", "h", "?"):
            self.say(HELP)
        elif name == "settings":
            self.say(describe(self.options))
        elif name in FIELDS:
            self.change(name, words[1:])
        else:
            self.say(f"unknown command ':{' '.join(words)}'; type :help for the commands")
        return True

    def change(self, name: str, words: list[str]) -> None:
        """Set option ``name`` from the words after it, if the options stay valid."""
        reader = reader_of(name)
        try:
            value = reader.read(words)
        except (ValueError, KeyError):
            self.say(f":{name} takes {reader.expected}, e.g. :{name} {reader.example}")
            return
        try:
            self.options = self.options.replace(**{name: value})  # SamplingOptions.check
        except OptionError as e:
            self.say(e.worded(f":{e.field}"))
            return
        self.say(f"{name} = {_shown(value)}")

    def sample(self, prefix: str) -> None:
        pieces = []
        for piece in self.generate(prefix, self.options):
            self.out.write(piece)
            self.out.flush()
            pieces.append(piece)
        self.out.write("\n")
        self.out.flush()
        if self.after is not None:
            self.after(prefix, "".join(pieces))


def describe(options: SamplingOptions) -> str:
    """Every option, as its command would set it: ``length = 200  temperature = 1 ...``."""
    return "  ".join(f"{name} = {_shown(getattr(options, name))}" for name in FIELDS)


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return " ".join(escape(v) for v in value) or "off"
    return "off" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def lines(stdin=None, stderr=None, prompt: str = "> "):
    """The lines typed, until end of input; the prompt (on ``stderr``) only on a terminal."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    tty = stdin.isatty()
    if tty:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
    while True:
        if tty:
            stderr.write(prompt)
            stderr.flush()
        line = stdin.readline()
        if not line:
            if tty:
                stderr.write("\n")
            return
        yield line


def run_session(session: Session, typed) -> None:
    """Handle each line of ``typed`` until it ends, ``:quit``, or Ctrl-C."""
    try:
        for line in typed:
            if not session.handle(line):
                return
    except KeyboardInterrupt:
        session.say("")
