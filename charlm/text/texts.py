"""The training and held-out text of a configuration: which reading options of
:mod:`charlm.text.corpus` a :class:`~charlm.options.config.Config` sets, decided here once for
training (``charlm.api``) and for reading a run's text again (``charlm sample --novelty``)::

    train, val = read_texts(Config(paths=["corpora/tinyshakespeare.txt"]))

No TensorFlow.
"""

from __future__ import annotations

from ..fsio import to_stderr
from ..options.config import Config
from .corpus import read_corpus, split_corpus


def read_options(cfg: Config) -> dict:
    """How ``cfg`` says every corpus file is read (the corpus paths also take max_chars, member)."""
    return dict(
        encoding=cfg.encoding,
        errors=cfg.errors,
        newlines=cfg.newlines,
        lowercase=cfg.lowercase,
        max_input_bytes=cfg.max_input_bytes,
    )


def corpus_options(cfg: Config) -> dict:
    """:func:`read_options` and what only the corpus paths take (max_chars, member)."""
    return dict(max_chars=cfg.max_chars or None, member=cfg.member or None, **read_options(cfg))


def read_texts(cfg: Config, paths=None, warn=to_stderr) -> tuple[str, str]:
    """The training and held-out text that ``cfg`` describes (``paths``: instead of cfg's)."""
    paths = list(paths if paths is not None else cfg.paths)
    text = read_corpus(paths, warn=warn, **corpus_options(cfg))
    if cfg.val_file:
        return text, read_corpus([cfg.val_file], warn=warn, **read_options(cfg))
    return split_corpus(text, cfg.val_fraction)
