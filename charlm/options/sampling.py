"""How a sample is drawn: one frozen :class:`SamplingOptions`, checked once, described once.

``charlm sample``'s flags, the interactive ``:commands``, the export signature's defaults,
the samples printed during training, the HTTP server and the Python API all take or derive
from it, so an option is added, checked and explained here alone.

    >>> opts = SamplingOptions(temperature=0.8, top_k=20, stop=("\\n\\n",))
    >>> opts.replace(temperature=0).is_greedy     # a temperature of 0 is the argmax
    True
    >>> SamplingOptions(top_p=0)
    Traceback (most recent call last):
    ...
    charlm.errors.CharLMError: --top-p must be in (0, 1], not 0; 1 turns nucleus sampling off
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from dataclasses import dataclass, fields

from ..errors import CharLMError
from .setting import help_of, setting

MAX_SEED = 2**63 - 1  # seeds are int64 in the sampling graph
MAX_INT = 2**31 - 1  # lengths and top-k are int32 there


def seed_plus(seed: int, offset: int) -> int:
    """``seed + offset`` within the seeds' range 0 ... 2**63-1, wrapping past the top: a model
    draws several streams from one seed (its layers, dropout, the output layer), and the
    largest seed must give valid ones too. Below the top it is plain ``seed + offset``.

    >>> seed_plus(5, 1000), seed_plus(MAX_SEED, 1)
    (1005, 0)
    """
    return (seed + offset) % (MAX_SEED + 1)


@dataclass(frozen=True)
class SamplingOptions:
    """The options of one sample. A temperature of 0 means greedy, everywhere."""

    length: int = setting(200, "Characters to generate after the prefix.")
    temperature: float = setting(
        1.0, "Softmax temperature, >= 0; lower is more conservative; 0 = greedy (the argmax)."
    )
    top_k: int = setting(0, "Sample only from the k most likely characters (0 = off).")
    top_p: float = setting(
        1.0, "Nucleus sampling: the smallest set with this much probability, in (0, 1] (1 = off)."
    )
    greedy: bool = setting(False, "Always take the most likely character (as --temperature 0).")
    seed: int | None = setting(None, "Same seed, same text: 0 ... 2**63-1 (default: a new one).")
    stop: tuple[str, ...] = setting(
        (),
        "End a sample at the first occurrence of this text, which is left out (repeatable).",
        flag="--stop",
    )

    def __post_init__(self):
        stop = (self.stop,) if isinstance(self.stop, str) else self.stop  # one, or several
        if not isinstance(stop, (list, tuple)):
            raise CharLMError(f"--stop must be text or a list of texts, not {stop!r}")
        object.__setattr__(self, "stop", tuple(stop))
        self.check()

    def check(self) -> None:
        """One clear line for the first option out of range (the same line everywhere)."""
        if not isinstance(self.greedy, bool):
            raise CharLMError(f"--greedy must be true or false, not {self.greedy!r}")
        if not self.greedy:  # --greedy ignores the temperature and the filters
            _check_filters(self.temperature, self.top_k, self.top_p)
        if not (_is_int(self.length) and 0 <= self.length <= MAX_INT):
            raise CharLMError(
                f"--length must be a whole number from 0 to {MAX_INT}, not {_shown(self.length)}"
            )
        if not (self.seed is None or (_is_int(self.seed) and 0 <= self.seed <= MAX_SEED)):
            raise CharLMError(
                f"--seed must be a whole number from 0 to 2**63-1, not {_shown(self.seed)}"
            )
        for s in self.stop:
            if not isinstance(s, str) or not s:
                raise CharLMError(f"--stop must be non-empty text, not {s!r}")

    @classmethod
    def of(cls, options: SamplingOptions | None = None, **changes) -> SamplingOptions:
        """``options`` (default: the defaults) with the ``changes`` that are not None.

        >>> SamplingOptions.of(SamplingOptions(top_k=5), temperature=0.5, seed=None).top_k
        5
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        return (options or cls()).replace(**changes) if changes else (options or cls())

    @property
    def is_greedy(self) -> bool:
        """Whether each character is the most likely one (--greedy, or a temperature of 0)."""
        return self.greedy or self.temperature == 0

    def replace(self, **changes) -> SamplingOptions:
        return dataclasses.replace(self, **changes)

    def seeded(self) -> SamplingOptions:
        """These options with a seed: their own, or a new one (:func:`new_seed`). A sample is
        always drawn with a seed, so that whoever is told it can draw the same text again.

        >>> SamplingOptions(seed=7).seeded().seed, 0 <= SamplingOptions().seeded().seed <= MAX_SEED
        (7, True)
        """
        return self if self.seed is not None else self.replace(seed=new_seed())

    def to_dict(self) -> dict:
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
            for f in fields(self)
        }

    @staticmethod
    def help(name: str) -> str:
        return help_of(SamplingOptions, name)


def new_seed() -> int:
    """A seed for a sample asked for without one: 0 ... 2**63-1 from the operating system's
    randomness (``secrets``), so that two runs never share one by accident."""
    return secrets.randbelow(MAX_SEED + 1)


def _check_filters(t, k, p) -> None:
    if not (_is_number(t) and math.isfinite(t) and t >= 0):
        raise CharLMError(f"--temperature must be 0 (greedy) or more, not {_shown(t)}")
    if not (_is_int(k) and 0 <= k <= MAX_INT):
        raise CharLMError(
            f"--top-k must be 0 (off) or a whole number up to {MAX_INT}, not {_shown(k)}"
        )
    if not (_is_number(p) and 0.0 < p <= 1.0):
        shown = f"{p:g}" if _is_number(p) else repr(p)
        raise CharLMError(f"--top-p must be in (0, 1], not {shown}; 1 turns nucleus sampling off")


def _shown(value) -> str:
    """A bad value as a message shows it: a number as typed, anything else quoted, so that a
    newline or an empty string cannot break the one line.

    >>> _shown(-1.5), _shown("a\\nb"), _shown("")
    ('-1.5', "'a\\\\nb'", "''")
    """
    return str(value) if _is_number(value) else repr(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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


def check_num_samples(num_samples) -> None:
    """Samples per prefix: at least 1 (a batch of none draws nothing)."""
    if not (_is_int(num_samples) and num_samples >= 1):
        raise CharLMError(f"--num-samples must be at least 1, not {_shown(num_samples)}")


def check_prefixes(prefixes) -> None:
    """Every prompt has a character to start from (the model is fed the prefix, then samples)."""
    if any(not p for p in prefixes):
        raise CharLMError("a prefix must not be empty; give at least one character")


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
