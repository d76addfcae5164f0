"""``charlm sample --interactive``: a prompt loop around one loaded run.

Each line typed is a prefix; the sample (the prefix and its continuation) streams back to
standard output. Lines that start with ``:`` change a setting::

    > ROMEO:
    ROMEO: and the state of the …
    > :temperature 0.5
    temperature = 0.5
    > :greedy on

A bad command or value prints one line and the loop goes on; end of input (Ctrl-D) or
Ctrl-C leaves. The prompt and the messages go to standard error, and the prompt only when
standard input is a terminal, so ``charlm sample --interactive < prompts.txt > out.txt``
writes the samples alone.
"""

from __future__ import annotations

import re
import sys

from ..config import check_sampling
from ..errors import CharLMError

HELP = """\
Type a prefix and press Enter: its continuation streams back. Commands:
  :temperature T   > 0; lower is more conservative
  :length N        characters to generate after the prefix
  :top_k K         sample from the K most likely characters (0 = off)
  :top_p P         nucleus sampling, in (0, 1] (1 = off)
  :greedy on|off   always take the most likely character
  :seed N|off      the same seed gives the same text (off: a new one each time)
  :settings        show the settings          :help   this text
  :quit            leave (or Ctrl-D, Ctrl-C)
A prefix that starts with ':' is written with two: '::-)' is the prefix ':-)'."""

SWITCH = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False}


def _seed(text: str):
    return None if text.lower() in ("off", "none") else int(text)


def _switch(text: str) -> bool:
    return SWITCH[text.lower()]


# each setting: how to read its value, and what to write when it cannot be read
SETTINGS = {"temperature": (float, "a number"), "length": (int, "a whole number"),
            "top_k": (int, "a whole number"), "top_p": (float, "a number"),
            "greedy": (_switch, "on or off"), "seed": (_seed, "a whole number or off")}


class Session:
    """The settings of an interactive session and what each line typed does with them.

    ``generate(prefix, settings)`` yields the pieces of one sample (its first piece is the
    prefix); ``out`` receives the samples, ``say`` the messages; ``after(prefix, text)`` is
    called with each whole sample (e.g. the memorisation check)."""

    def __init__(self, generate, settings: dict, out, say, after=None):
        self.generate, self.settings, self.out, self.say = generate, dict(settings), out, say
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
            self.say(describe(self.settings))
        elif name in SETTINGS:
            self.change(name, words[1:])
        else:
            self.say(f"unknown command ':{' '.join(words)}'; type :help for the commands")
        return True

    def change(self, name: str, values: list[str]) -> None:
        """Set ``name`` from the words after it, if the new settings are all valid."""
        read, expected = SETTINGS[name]
        try:
            if len(values) != 1:
                raise ValueError
            value = read(values[0])
        except (ValueError, KeyError):
            self.say(f":{name} takes {expected}, e.g. :{name} {_example(name)}")
            return
        changed = {**self.settings, name: value}
        try:
            check(changed)
        except CharLMError as e:
            self.say(as_commands(str(e)))
            return
        self.settings = changed
        self.say(f"{name} = {_shown(value)}")

    def sample(self, prefix: str) -> None:
        pieces = []
        for piece in self.generate(prefix, self.settings):
            self.out.write(piece)
            self.out.flush()
            pieces.append(piece)
        self.out.write("\n")
        self.out.flush()
        if self.after is not None:
            self.after(prefix, "".join(pieces))


def check(settings: dict) -> None:
    """The sampling options' checks (one place: charlm.config.check_sampling)."""
    check_sampling(settings["temperature"], settings["top_k"], settings["top_p"],
                   settings["length"], settings["greedy"])


def as_commands(message: str) -> str:
    """An option check's message, with ``--top-k`` written as the command ``:top_k``."""
    return re.sub(r"--([a-z][a-z-]*)", lambda m: ":" + m.group(1).replace("-", "_"), message)


def describe(settings: dict) -> str:
    return "  ".join(f"{k} = {_shown(settings[k])}" for k in SETTINGS)


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "off" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _example(name: str) -> str:
    return {"temperature": "0.7", "length": "300", "top_k": "5", "top_p": "0.9",
            "greedy": "on", "seed": "1"}[name]


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
