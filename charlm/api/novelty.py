"""The memorisation index of a run (``charlm sample --novelty``): the run folder and its
corpus read here, the index itself built and queried by :mod:`charlm.novelty`, which sees only
text.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import CharLMError
from ..fsio import text_sha256
from ..novelty.build import check_memory
from ..novelty.file import INDEX_FILE
from ..novelty.index import NoveltyIndex
from ..runs.rundir import RunDir
from ..text.texts import read_texts


def run_index(path: str | os.PathLike[str], warn: Callable[[str], None] = print) -> NoveltyIndex:
    """The index of a run's training text: the one cached in the run folder if it indexes
    that very text (corpus.json's sha256), else built from the corpus re-read with the run's
    settings, checked against that sha256, and cached.

    Args:
        path: The run folder.
        warn: Told when the index cannot be cached (it is used all the same).

    Returns:
        The index.

    Raises:
        CharLMError: corpus.json is missing or damaged; the corpus was standard input, is
            gone, unreadable or changed; or the index would not fit in memory.
    """
    run = RunDir(path)
    try:
        corpus = run.corpus_info() or {}
    except CharLMError:
        corpus = {}
    want = corpus.get("train_sha256")
    if not want:
        raise CharLMError(
            f"{run.path}/corpus.json is missing or unreadable, so the training "
            "text cannot be checked; --novelty needs it"
        )
    cache = run.path / INDEX_FILE
    index = NoveltyIndex.load_matching(cache, want)  # no need to read the corpus again
    if index is not None:
        return index
    _check_before_reading(run, corpus)
    index = NoveltyIndex(training_text(run, want), sha256=want)
    try:
        index.save(cache)
    except CharLMError as e:
        warn(f"warning: {e}; the index is used without being cached")
    return index


def _check_before_reading(run: RunDir, corpus: dict) -> None:
    """:func:`check_memory` from what corpus.json and the vocabulary say, so that a corpus
    too big to index is refused before it is read (the build checks again, from the text)."""
    try:
        ids = len(run.read_vocab())
    except CharLMError:
        return
    chars = corpus.get("train_chars")
    if type(chars) is int and chars > 0:
        check_memory(chars, ids)


def training_text(run: RunDir, sha256: str) -> str:
    """A run's training text, read again with its settings.

    Args:
        run: The run's folder.
        sha256: What :func:`charlm.fsio.text_sha256` of the text must be.

    Returns:
        The text.

    Raises:
        CharLMError: the corpus was standard input, cannot be read, or is not that text.
    """
    cfg = run.read_config()
    if "-" in cfg.paths:
        raise CharLMError(
            f"{run.path} was trained on standard input, which cannot be read "
            "again; --novelty needs the training text"
        )
    try:
        text, _ = read_texts(cfg, warn=lambda message: None)
    except CharLMError as e:
        raise CharLMError(f"--novelty needs the training text of {run.path}: {e}") from None
    if text_sha256(text) != sha256:
        raise CharLMError(
            f"the corpus at {', '.join(cfg.paths)} is not the text {run.path} was "
            "trained on (its sha256 differs: it changed since); --novelty needs "
            "the very same training text"
        )
    return text
