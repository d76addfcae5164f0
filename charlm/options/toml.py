"""A config as TOML: the presets read (``--config configs/tiny.toml``), the ``config.toml``
of a run written, and the old names of settings read as today's.

    >>> parse_toml('run_dir = "old"\\nunits = 64', "preset.toml")
    {'runs_dir': 'old', 'units': 64}
    >>> toml_value(["a", 1.5, True])
    '["a", 1.5, true]'

Nothing here checks a value: :class:`~charlm.options.config.Config` does, and
:func:`located` words its error for the file: the file, the line and the key. A syntax
error is one line that names the line and the column.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from ..errors import CharLMError
from ..say import one_line
from .setting import OptionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LEGACY_KEYS = {"run_dir": "runs_dir"}  # old names still read (run configs written before 0.2)


def read_preset(path: str | Path) -> dict[str, Any]:
    """The settings a TOML preset gives, as written in it (not yet checked).

    Args:
        path: The TOML file.

    Returns:
        Setting names (old names renamed to today's) and their values.

    Raises:
        CharLMError: the file is missing, unreadable or not TOML.
    """
    return parse_toml(read_text(path), str(path))


def read_text(path: str | Path) -> str:
    """The text of a TOML file.

    Args:
        path: The file.

    Returns:
        Its text (UTF-8).

    Raises:
        CharLMError: the file is missing or unreadable, in one line that says so.
    """
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
    return text


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """The settings in TOML text, not yet checked.

    Args:
        text: The TOML text.
        source: What the text is called in messages (a file's path).

    Returns:
        Setting names (old names renamed to today's) and their values; the version keys of a
        run's config.toml left out.

    Raises:
        CharLMError: a TOML syntax error, with its line and column.
    """
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


def located(error: OptionError, text: str, source: str) -> CharLMError:
    """``error`` as the TOML file ``source`` words it: the file, the line of the key and the
    key as written there (an old name, such as ``run_dir``, as it stands).

    Args:
        error: What is wrong with a setting.
        text: The TOML text the setting came from.
        source: The file's name, for the message.

    Returns:
        The error to raise, one line (without a line number if the key is not in ``text``).

    >>> e = OptionError("sample_temperature", "must be 0 (greedy) or more", -1)
    >>> str(located(e, 'units = 64\\nsample_temperature = -1\\n', "my.toml"))
    'my.toml, line 2: sample_temperature must be 0 (greedy) or more, not -1'
    """
    names = [error.field, *(old for old, new in LEGACY_KEYS.items() if new == error.field)]
    for name in names:
        key = re.escape(name)
        found = re.search(rf"^[ \t]*(?:{key}|\"{key}\"|'{key}')[ \t]*=", text, re.MULTILINE)
        if found:
            line = text.count("\n", 0, found.start()) + 1
            return CharLMError(f"{source}, line {line}: {error.worded(name)}")
    return CharLMError(f"{source}: {error.worded(error.field)}")


def canonical_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Settings with old names (e.g. ``run_dir``) renamed to today's.

    Args:
        values: Settings by name.

    Returns:
        A new dict, in the same order.
    """
    return {LEGACY_KEYS.get(k, k): v for k, v in values.items()}


def toml_comment(text: str) -> str:
    """``text`` as one TOML comment line, whatever it holds: line breaks, tabs and other
    control characters, DEL and the stand-ins of a path's undecodable bytes are written as
    escapes (:func:`charlm.say.one_line`, the rule of every line charlm says), so that a run
    folder's name never breaks its own files.

    >>> toml_comment("runs in my runs\\n\u00e9t\u00e9")
    '# runs in my runs\\\\n\u00e9t\u00e9'
    >>> toml_comment("a\\tb\\x7f\\udcff")
    '# a\\\\tb\\\\x7f\\\\xff'
    """
    return "# " + one_line(text)


def toml_value(value: Any) -> str:
    """A setting's value written as TOML.

    Args:
        value: A bool, number, string, or list of them.

    Returns:
        The TOML text of the value.

    Raises:
        TypeError: a value of another type.
    """
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
        # JSON's escapes are TOML's; DEL, which JSON leaves raw, TOML wants escaped too
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
