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
    charlm.options.setting.OptionError: top_p must be in (0, 1], not 0; 1 turns nucleus sampling off
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from .setting import OptionError, is_int, setting

MAX_SEED = 2**63 - 1  # seeds are int64 in the sampling graph
MAX_INT = 2**31 - 1  # lengths and top-k are int32 there


def seed_plus(seed: int, offset: int) -> int:
    """``seed + offset`` within the seeds' range 0 ... 2**63-1, wrapping past the top: a model
    draws several streams from one seed (its layers, dropout, the output layer), and the
    largest seed must give valid ones too. Below the top it is plain ``seed + offset``.

    Args:
        seed: A seed, 0 ... 2**63-1.
        offset: How far along to go.

    Returns:
        The seed ``offset`` places on, modulo 2**63.

    >>> seed_plus(5, 1000), seed_plus(MAX_SEED, 1)
    (1005, 0)
    """
    return (seed + offset) % (MAX_SEED + 1)


@dataclass(frozen=True)
class SamplingOptions:
    """The options of one sample. A temperature of 0 means greedy, everywhere.

    Each field is a keyword (its help below); ``stop`` takes one text or several.

    Raises:
        OptionError: the first option out of range (:meth:`check`).
    """

    length: int = setting(200, "Characters to generate after the prefix.")
    temperature: float = setting(
        1.0, "Softmax temperature, >= 0; lower is more conservative; 0 = greedy (the argmax)."
    )
    top_k: int = setting(0, "Sample only from the k most likely characters (0 = off).")
    top_p: float = setting(
        1.0, "Nucleus sampling: the smallest set with this much probability, in (0, 1] (1 = off)."
    )
    greedy: bool = setting(False, "Always take the most likely character (as a temperature of 0).")
    seed: int | None = setting(None, "Same seed, same text: 0 ... 2**63-1 (default: a new one).")
    stop: tuple[str, ...] = setting(
        (),
        "End a sample at the first occurrence of this text, which is left out (repeatable).",
        flag="--stop",
    )

    def __post_init__(self) -> None:
        stop = (self.stop,) if isinstance(self.stop, str) else self.stop  # one, or several
        if not isinstance(stop, (list, tuple)):
            raise OptionError("stop", "must be text or a list of texts", stop)
        object.__setattr__(self, "stop", tuple(stop))
        self.check()

    def check(self) -> None:
        """The first option out of range, as an :class:`OptionError` that names its field.

        Raises:
            OptionError: e.g. ``temperature must be 0 (greedy) or more, not -1``.
        """
        if not isinstance(self.greedy, bool):
            raise OptionError("greedy", "must be true or false", self.greedy)
        if not self.greedy:  # --greedy ignores the temperature and the filters
            _check_filters(self.temperature, self.top_k, self.top_p)
        if not (is_int(self.length) and 0 <= self.length <= MAX_INT):
            raise OptionError("length", f"must be a whole number from 0 to {MAX_INT}", self.length)
        if not (self.seed is None or (is_int(self.seed) and 0 <= self.seed <= MAX_SEED)):
            raise OptionError("seed", "must be a whole number from 0 to 2**63-1", self.seed)
        for s in self.stop:
            if not isinstance(s, str) or not s:
                raise OptionError("stop", "must be non-empty text", s)

    @classmethod
    def of(cls, options: SamplingOptions | None = None, **changes: Any) -> SamplingOptions:
        """Options with some fields changed, where a change is given.

        Args:
            options: The options to start from (default: the defaults).
            **changes: Fields and their values; a None value changes nothing.

        Returns:
            The options, checked.

        Raises:
            OptionError: a changed option out of range.

        >>> SamplingOptions.of(SamplingOptions(top_k=5), temperature=0.5, seed=None).top_k
        5
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        return (options or cls()).replace(**changes) if changes else (options or cls())

    @property
    def is_greedy(self) -> bool:
        """Whether each character is the most likely one (--greedy, or a temperature of 0)."""
        return self.greedy or self.temperature == 0

    def replace(self, **changes: Any) -> SamplingOptions:
        """A copy with some fields changed.

        Args:
            **changes: Fields and their new values.

        Returns:
            The new options, checked.

        Raises:
            OptionError: an option out of range.
        """
        return dataclasses.replace(self, **changes)

    def seeded(self) -> SamplingOptions:
        """These options with a seed: their own, or a new one (:func:`new_seed`). A sample is
        always drawn with a seed, so that whoever is told it can draw the same text again.

        Returns:
            Options whose ``seed`` is not None.

        >>> SamplingOptions(seed=7).seeded().seed, 0 <= SamplingOptions().seeded().seed <= MAX_SEED
        (7, True)
        """
        return self if self.seed is not None else self.replace(seed=new_seed())

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON-ready data.

        Returns:
            One item per field; ``stop`` as a list.
        """
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
            for f in fields(self)
        }


def new_seed() -> int:
    """A seed for a sample asked for without one: 0 ... 2**63-1 from the operating system's
    randomness (``secrets``), so that two runs never share one by accident.

    Returns:
        A seed, 0 ... 2**63-1.
    """
    return secrets.randbelow(MAX_SEED + 1)


def _check_filters(t, k, p) -> None:
    if not (_is_number(t) and math.isfinite(t) and t >= 0):
        raise OptionError("temperature", "must be 0 (greedy) or more", t)
    if not (is_int(k) and 0 <= k <= MAX_INT):
        raise OptionError("top_k", f"must be 0 (off) or a whole number up to {MAX_INT}", k)
    if not (_is_number(p) and 0.0 < p <= 1.0):
        raise OptionError("top_p", "must be in (0, 1]", p, "1 turns nucleus sampling off")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_num_samples(num_samples: Any) -> None:
    """Check a number of samples per prefix: at least 1 (a batch of none draws nothing).

    Args:
        num_samples: The value given.

    Raises:
        OptionError: about ``num_samples``, for anything but a whole number of at least 1.
    """
    if not (is_int(num_samples) and num_samples >= 1):
        raise OptionError("num_samples", "must be at least 1", num_samples)


def check_prefixes(prefixes: Iterable[str]) -> None:
    """Check that every prompt has a character to start from (the model is fed the prefix,
    then samples).

    Args:
        prefixes: The prompts.

    Raises:
        OptionError: about ``prefix``, for an empty one.
    """
    if any(not p for p in prefixes):
        raise OptionError("prefix", "must not be empty", hint="give at least one character")
