"""The rules a :class:`~charlm.options.config.Config` follows: its keys, the type of each
value, and the range of each, checked once, when a config is made. The first value that
breaks one raises an :class:`~charlm.options.setting.OptionError` that names its field; the
face that shows it words the name (``--seq-len``, a TOML key and its line).

    >>> check_keys({"unit": 64}, ["units", "layers"])
    Traceback (most recent call last):
    ...
    charlm.options.rules.UnknownKey: unknown key 'unit'; did you mean 'units'?

A value's range is declared with its setting where it is a plain bound (``least=1``) or a
list of choices; the rules that need more than that are in :data:`RANGES` and :data:`RULES`.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

from .sampling import check_prefixes
from .setting import MISSING, OptionError, check_declared


class UnknownKey(OptionError):
    """A key that is no setting: named first, then the closest setting."""

    def worded(self, name: str) -> str:
        """The message, one line, with the key called ``name``.

        Args:
            name: The key as this face calls it.

        Returns:
            ``"unknown key '{name}'; {hint}"``.
        """
        return f"unknown key '{name}'; {self.hint}"


def check_keys(data: dict[str, Any], known: list[str]) -> None:
    """Check that each key of ``data`` is one of ``known``.

    Args:
        data: Settings by name.
        known: The names of the settings.

    Raises:
        UnknownKey: for the first that is not, with the closest known key as the hint.
    """
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else "the keys are the flags of `charlm train --help`, with _ for -"
            )
            raise UnknownKey(key, "is no setting", MISSING, hint)


# what each annotation takes: (is it one, what to call it in the message)
_TYPES = {
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "list[str]": (
        lambda v: isinstance(v, (list, tuple)) and all(isinstance(s, str) for s in v),
        "a list of strings",
    ),
}


def check_type(key: str, value: Any, annotation: str) -> Any:
    """A value as its setting holds it: a float from an int, a list from one string.

    Args:
        key: The setting's name.
        value: The value given.
        annotation: The setting's type as written in its dataclass (``"list[str]"``); a
            type with no rule here takes any value.

    Returns:
        The value, converted.

    Raises:
        OptionError: ``value`` is not of that type.
    """
    if annotation not in _TYPES:
        return value
    if annotation == "list[str]" and isinstance(value, str):
        value = [value]
    is_one, expected = _TYPES[annotation]
    if not is_one(value):
        raise OptionError(key, f"must be {expected}", value)
    return {"float": float, "list[str]": list}.get(annotation, lambda v: v)(value)


def validate(cfg: Any) -> None:
    """Check every value of a config against its range and the rules.

    Args:
        cfg: The config (a :class:`~charlm.options.config.Config`).

    Raises:
        OptionError: the first value out of its range, naming its field.
    """
    check_declared(cfg)
    for rule in RULES:
        rule(cfg)


# (setting, whether a value is in range, what it must be, the hint)
RANGES = (
    ("max_input_bytes", lambda v: v >= 1, "must be at least 1", ""),
    (
        "val_fraction",
        lambda v: 0.0 <= v < 1.0,
        "must be in [0, 1)",
        "e.g. 0.1 holds out the last 10%, 0 none",
    ),
    ("dropout", lambda v: 0.0 <= v < 1.0, "must be in [0, 1)", ""),
    ("lr", lambda v: v > 0 and math.isfinite(v), "must be a positive number", ""),
    ("min_lr_fraction", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]", ""),
    ("clip_norm", lambda v: v >= 0 and math.isfinite(v), "must be 0 (off) or positive", ""),
)


def _ranges(cfg: Any) -> None:
    for key, in_range, problem, hint in RANGES:
        if not in_range(getattr(cfg, key)):
            raise OptionError(key, problem, getattr(cfg, key), hint)


# the options of the samples printed during training (SamplingOptions' fields), and the config's
# settings that give them: Config.sample_options is made from these, and their errors named so
SAMPLE_OPTIONS = {"length": "sample_length", "temperature": "sample_temperature", "seed": "seed"}
_SAMPLE_FIELDS = {**SAMPLE_OPTIONS, "prefix": "sample_prefixes"}  # and check_prefixes' field


def _sample_options(cfg: Any) -> None:
    """The periodic samples' options, and their prefixes when samples are printed (a run saved
    with an empty prefix and no samples stays readable), named as the config's fields."""
    try:
        _ = cfg.sample_options
        if cfg.sample_every or cfg.sample_every_epochs:
            check_prefixes(cfg.sample_prefixes)
    except OptionError as e:
        raise e.renamed(_SAMPLE_FIELDS.get(e.field, e.field)) from None


def _time_budget(cfg: Any) -> None:
    if cfg.time_budget:
        parse_duration(cfg.time_budget)


def _name(cfg: Any) -> None:
    control = any(ord(c) < 32 or ord(c) == 127 for c in cfg.name)
    if cfg.name in (".", "..", "latest") or "/" in cfg.name or "\\" in cfg.name or control:
        raise OptionError(
            "name",
            "must be a plain folder name",
            cfg.name,
            "use a name without / or control characters (and not latest)",
        )


def _utf8(cfg: Any) -> None:
    """Every text setting is UTF-8 (a path from the command line may hold bytes that are not:
    Python's stand-ins for them cannot be written into the run's config.toml)."""
    for key, value in vars(cfg).items():
        for text in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(text, str) and not _encodes(text):
                raise OptionError(
                    key,
                    "must be UTF-8 text",
                    text,
                    "charlm writes it into the run's files; rename the file or folder, or "
                    "name it through a link whose name is UTF-8",
                )


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# (the rules that depend on the model's family are the family table's: charlm.models.families)
RULES = (_ranges, _sample_options, _time_budget, _name, _utf8)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)")


def parse_duration(text: str, field: str = "time_budget") -> float:
    """Seconds in a duration such as ``"90"``, ``"90s"``, ``"10m"``, ``"1h30m"``.

    >>> parse_duration("1h30m")
    5400.0

    Args:
        text: The duration.
        field: The setting it is for, named in the error.

    Returns:
        The seconds, more than 0.

    Raises:
        OptionError: about ``field``, for a text that is no positive duration.
    """
    s = str(text).strip().lower().replace(" ", "")
    try:
        seconds: float | None = float(s)
    except ValueError:
        seconds = None
    if seconds is None and s and _DURATION.sub("", s) == "":
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in _DURATION.findall(s))
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise OptionError(field, "must be a duration", text, "write e.g. 90s, 10m or 1h30m")
    return seconds
