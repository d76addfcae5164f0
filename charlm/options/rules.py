"""The rules a :class:`~charlm.options.config.Config` follows: its keys, the type of each value, and
the range of each, checked once, when a config is made, with one line for the first value
that breaks one. ``source`` names where the values came from (a preset's path; "" for the
command-line flags, which a message then names as ``--seq-len``).

    >>> check_keys({"unit": 64}, ["units", "layers"], "tiny.toml")
    Traceback (most recent call last):
    ...
    charlm.errors.CharLMError: tiny.toml: unknown key 'unit'; did you mean 'units'?

A value's range is declared with its setting where it is a plain bound (``least=1``); the
rules that need more than a bound are in :data:`RANGES` and :data:`RULES` below.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import fields

from ..errors import CharLMError
from .sampling import check_prefixes


def check_keys(data: dict, known, source: str) -> None:
    """Each key of ``data`` is a setting; else the closest one is named."""
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else "; the keys are the flags of `charlm train --help`, with _ for -"
            )
            raise CharLMError(f"{source}: unknown key '{key}'{hint}")


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


def check_type(key: str, value, annotation: str, source: str):
    """``value`` as setting ``key`` holds it (a float from an int, a list from one string)."""
    if annotation not in _TYPES:
        return value
    if annotation == "list[str]" and isinstance(value, str):
        value = [value]
    is_one, expected = _TYPES[annotation]
    if not is_one(value):
        raise CharLMError(
            f"{source}: '{key}' must be {expected}, not {json.dumps(value, default=str)}"
        )
    return {"float": float, "list[str]": list}.get(annotation, lambda v: v)(value)


def validate(cfg, source: str) -> None:
    """The first value of ``cfg`` out of its range, as one CharLMError."""
    for rule in RULES:
        problem = rule(cfg, source)
        if problem:
            raise CharLMError(f"{source}: {problem}" if source else f"--{problem}")


def _flag(key: str) -> str:
    return key.replace("_", "-")


def _choices(cfg, source):
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.metadata["choices"] and value not in f.metadata["choices"]:
            return (
                f"{_flag(f.name)} must be one of {', '.join(f.metadata['choices'])}, not '{value}'"
            )


def _least(cfg, source):
    """The plain bounds the settings declare: at least 1 first, then 0 or more."""
    for least, words in ((1, "at least 1"), (0, "0 or more")):
        for f in fields(cfg):
            if f.metadata["least"] == least and getattr(cfg, f.name) < least:
                return f"{_flag(f.name)} must be {words}, not {getattr(cfg, f.name)}"


# (setting, whether a value is in range, the message when it is not)
RANGES = (
    ("max_input_bytes", lambda v: v >= 1, "max-input-bytes must be at least 1"),
    (
        "val_fraction",
        lambda v: 0.0 <= v < 1.0,
        "val-fraction must be in [0, 1), not {v:g}; e.g. 0.1 holds out the last 10%, 0 none",
    ),
    ("dropout", lambda v: 0.0 <= v < 1.0, "dropout must be in [0, 1), not {v}"),
    ("lr", lambda v: v > 0 and math.isfinite(v), "lr must be a positive number, not {v}"),
    ("min_lr_fraction", lambda v: 0.0 <= v <= 1.0, "min-lr-fraction must be in [0, 1], not {v}"),
    (
        "clip_norm",
        lambda v: v >= 0 and math.isfinite(v),
        "clip-norm must be 0 (off) or positive, not {v}",
    ),
)


def _ranges(cfg, source):
    for key, in_range, message in RANGES:
        if not in_range(getattr(cfg, key)):
            return message.format(v=getattr(cfg, key))


def _sample_options(cfg, source):
    try:  # the periodic samples' options and prefixes (when samples are printed: a run saved
        _ = cfg.sample_options  # with an empty prefix and no samples stays readable)
        if cfg.sample_every or cfg.sample_every_epochs:
            check_prefixes(cfg.sample_prefixes)
    except CharLMError as e:
        return str(e).removeprefix("--").replace("a prefix", "sample-prefix", 1)


def _time_budget(cfg, source):
    if cfg.time_budget:
        parse_duration(cfg.time_budget, source or "--time-budget")


def _name(cfg, source):
    control = any(ord(c) < 32 or ord(c) == 127 for c in cfg.name)
    if cfg.name in (".", "..", "latest") or "/" in cfg.name or "\\" in cfg.name or control:
        return (
            f"name {json.dumps(cfg.name, ensure_ascii=False)} is not a valid run folder name; "
            "use a plain name without / or control characters (and not latest)"
        )


def _precision(cfg, source):
    if cfg.precision not in cfg.precisions:
        return (
            f"precision {cfg.precision} is for the Keras models (lstm, gru, rnn); "
            f"{cfg.model} trains in float32: drop the precision setting"
        )


RULES = (_choices, _least, _ranges, _sample_options, _time_budget, _name, _precision)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)")


def parse_duration(text: str, source: str = "time-budget") -> float:
    """Seconds in a duration such as ``"90"``, ``"90s"``, ``"10m"``, ``"1h30m"``.

    >>> parse_duration("1h30m")
    5400.0
    """
    s = str(text).strip().lower().replace(" ", "")
    try:
        seconds = float(s)
    except ValueError:
        seconds = None
    if seconds is None and s and _DURATION.sub("", s) == "":
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in _DURATION.findall(s))
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise CharLMError(
            f"{source}: cannot read the duration '{text}'; write e.g. 90s, 10m or 1h30m"
        )
    return seconds
