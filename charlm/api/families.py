"""The model families a run may be, as the faces ask them: their names, and a config checked
against its family's rules (:mod:`charlm.models.families`, which imports no TensorFlow).
"""

from __future__ import annotations

from pathlib import Path

from ..models.families import check, family, names
from ..options.config import Config
from ..options.setting import OptionError
from ..options.toml import located, parse_toml, read_text

__all__ = ["checked", "family", "names"]


def checked(cfg: Config, preset: str | Path | None = None, flags: dict | None = None) -> Config:
    """``cfg``, its settings checked against its family's.

    Args:
        cfg: The config of a new run.
        preset: The TOML preset it was read from, if any.
        flags: The settings the command line gave (they override the preset's).

    Returns:
        ``cfg`` itself.

    Raises:
        OptionError: a setting its family does not take, as a flag or keyword gave it.
        CharLMError: the same, for a value the preset gave: its file, line and key.
    """
    try:
        check(cfg)
    except OptionError as e:
        if preset is not None and e.field not in (flags or {}):
            text = read_text(preset)
            if e.field in parse_toml(text, str(preset)):
                raise located(e, text, str(preset)) from None
        raise
    return cfg
