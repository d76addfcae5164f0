"""A config as TOML: the presets read (``--config configs/tiny.toml``), the ``config.toml``
of a run written, and the old names of settings read as today's.

    >>> parse_toml('run_dir = "old"\\nunits = 64', "preset.toml")
    {'runs_dir': 'old', 'units': 64}
    >>> toml_value(["a", 1.5, True])
    '["a", 1.5, true]'

Nothing here checks a value: :class:`~charlm.options.config.Config` does, with one line that names
the key. A syntax error is one line that names the line and the column.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from ..errors import CharLMError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LEGACY_KEYS = {"run_dir": "runs_dir"}  # old names still read (run configs written before 0.2)


def read_preset(path) -> dict:
    """The settings a TOML preset gives, as written in it (not yet checked)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CharLMError(
            f"{path}: no such config file; check the path (the bundled presets are in configs/)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise CharLMError(
            f"{path}: cannot read config ({e}); check the file and its permissions"
        ) from None
    return parse_toml(text, str(path))


def parse_toml(text: str, source: str) -> dict:
    """The settings in TOML ``text`` (the version keys of a run's config.toml left out)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CharLMError(
            f"{source}: TOML syntax error: {e}; fix it "
            "(one `key = value` a line, strings in double quotes)"
        ) from None
    data.pop("format_version", None)
    data.pop("charlm_version", None)
    return canonical_keys(data)


def canonical_keys(values: dict) -> dict:
    """``values`` with old setting names (e.g. ``run_dir``) renamed to today's."""
    return {LEGACY_KEYS.get(k, k): v for k, v in values.items()}


def toml_value(value) -> str:
    """``value`` (a setting's: bool, number, string or list of them) written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            repr(value)
            if math.isfinite(value)
            else ("nan" if value != value else ("inf" if value > 0 else "-inf"))
        )
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
