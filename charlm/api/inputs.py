"""What a run trains on: its config and its encoded corpus, for a new run or one resumed.

A resumed run takes its settings and vocabulary from its folder, and may change only the
settings that are limits and monitoring (:data:`charlm.options.config.RESUMABLE_KEYS`); its corpus
is the id file it encoded, while the files it came from are unchanged, else read again and
checked against the run's hashes.

    cfg = resolve_config("configs/tiny.toml", steps=10)
    corpus = encode_corpus(cfg.replace(paths=["corpora/tinyshakespeare.txt"]), "runs")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CharLMError
from ..fsio import to_stderr
from ..options.config import RESUMABLE_KEYS, RUNS_DIR, Config
from ..runs.folders import resolve_run
from ..runs.rundir import RunDir
from ..text.corpus import read_chunks, read_corpus, source_signature
from ..text.idfile import IDS_FILE, EncodedCorpus, encode, ids_match
from ..text.texts import corpus_options, read_options

if TYPE_CHECKING:
    from ..text.samplers import Sampler
    from ..text.vocab import Vocab
    from .launch import Launch
    from .origin import Origin


@dataclass(frozen=True)
class Inputs:
    """What a run trains on, read and checked: its config, its run folder (locked for this
    process), its encoded corpus and vocabulary, its batches (None for a resumed run until its
    folder is safely open) and the run a new run starts from (``--init-from``), if any."""

    cfg: Config
    rundir: RunDir
    corpus: EncodedCorpus
    vocab: Vocab
    sampler: Sampler | None = None
    origin: Origin | None = None
    corpus_anew: bool = False  # a resumed run's corpus encoded again: corpus.json to rewrite


def resolve_config(config: str | Path | Config | None = None, **overrides: Any) -> Config:
    """Defaults, then the TOML preset ``config``, then ``overrides``.

    Args:
        config: A preset's path, or a Config (None: the defaults).
        **overrides: Settings by name, over the preset's.

    Returns:
        The config, checked.

    Raises:
        CharLMError: the preset cannot be read, or a value is bad (an OptionError, which
            names its field).
    """
    if isinstance(config, Config):
        cfg = config
    elif config:
        cfg = Config.load(config)
    else:
        cfg = Config()
    return cfg.replace(**overrides) if overrides else cfg


def encode_corpus(
    cfg: Config,
    folder: str | Path,
    log: Callable[[str], None] = to_stderr,
    progress: bool | None = None,
    base: tuple[Vocab, str] | None = None,
) -> EncodedCorpus:
    """The corpus ``cfg`` describes, streamed twice and encoded into an id file
    (:mod:`charlm.text.idfile`): train and held-out ids equal ``vocab.encode`` of
    :func:`~charlm.text.texts.read_texts`.

    Args:
        cfg: Its paths, the held-out split and how its files are read.
        folder: Where the id file is written.
        log: Where the reading notes and the vocabulary's line go.
        progress: Show a progress bar (None: on a terminal).
        base: A vocabulary and its run's name: encode in it, grown by the text's new
            characters (a fine-tuning).

    Returns:
        The encoded corpus, its vocabulary and the size and time of each file it read.

    Raises:
        CharLMError: a file is missing, unreadable, not text, or the corpus is empty.
    """
    sources = corpus_sources(cfg)  # before reading: a file changed meanwhile shows next time
    source = _source(list(cfg.paths), corpus_options(cfg), log)
    val_source = _source([cfg.val_file], read_options(cfg), log) if cfg.val_file else None
    corpus = encode(
        source, val_source, cfg.val_fraction, folder, base=base, log=log, progress=progress
    )
    corpus.sources = sources
    return corpus


def corpus_sources(cfg: Config) -> list | None:
    """The size and modification time of every file the corpus of ``cfg`` reads.

    Args:
        cfg: Its paths and held-out file.

    Returns:
        ``[[path, size, mtime_ns], ...]``, or None where a source cannot be listed again
        (standard input, a pipe).
    """
    return source_signature(list(cfg.paths) + ([cfg.val_file] if cfg.val_file else []))


def _source(paths: list[str], opts: dict, warn):
    """A callable that streams the text of ``paths`` each time, telling ``warn`` the reading
    notes only the first time. Standard input can be read only once: it is read into memory."""
    if "-" in paths:
        text = read_corpus(paths, warn=warn, **opts)
        return lambda: iter((text,))
    calls = []

    def chunks():
        calls.append(None)
        return read_chunks(paths, warn=warn if len(calls) == 1 else (lambda line: None), **opts)

    return chunks


def resumed_inputs(launch: Launch, log: Callable[[str], None]) -> Inputs:
    """The config, run folder, encoded corpus and vocabulary of the run ``launch`` resumes,
    each checked against what the run was started with; the launch's clock is given the
    run's budget. Its sampler is left to the caller.

    Args:
        launch: The launch whose ``resume`` names the run (True: the newest).
        log: Where the lines about the corpus go.

    Returns:
        The inputs, the run folder locked for this process (unless it is a non-chief worker).

    Raises:
        CharLMError: no such run, a damaged one, a setting it may not change, or a corpus
            that is not the one it was trained on.
    """
    overrides, resume = launch.overrides, launch.resume
    runs_dir = overrides.get("runs_dir", RUNS_DIR)
    rundir = RunDir(resolve_run(None if resume is True else str(resume), runs_dir, "--resume"))
    saved = rundir.read_config()
    if writes_run(overrides.get("strategy", saved.strategy)):
        rundir.lock_for_training()
    try:
        rundir.read_metrics(), rundir.checkpoints()  # a damaged one: one line before any write
        rundir.check_resumable()
        cfg = _resumed_config(launch, saved, rundir)
        launch.clock.set_budget(cfg.time_budget_seconds)
        vocab = rundir.read_vocab()
        corpus = _resumed_corpus(cfg, rundir, vocab, log, launch.progress)
        anew = not corpus.is_placed_in(rundir.path)
        return Inputs(cfg, rundir, corpus, vocab, corpus_anew=anew)
    except BaseException:
        rundir.release()
        raise


def writes_run(strategy: str) -> bool:
    """Whether this process writes the run folder (and takes its lock).

    Args:
        strategy: The run's ``strategy``.

    Returns:
        True for every process but the non-chief workers of a multi-worker run, which save
        into temporary copies (:mod:`charlm.training.distribute`).
    """
    if strategy != "multi-worker":
        return True
    from ..training import distribute

    return distribute.is_chief(distribute.strategy(strategy))


def _resumed_config(launch: Launch, saved: Config, rundir: RunDir) -> Config:
    """The run's saved config, with the settings that may change on a resume changed."""
    paths, config, overrides = launch.paths, launch.config, launch.overrides
    changed = {k for k, v in overrides.items() if getattr(saved, k, None) != v}
    if config:
        preset = resolve_config(config)
        changed |= {
            k
            for k in preset.to_dict()
            if getattr(preset, k) != getattr(Config(), k)
            and getattr(preset, k) != getattr(saved, k)
        }
    fixed = sorted(changed - RESUMABLE_KEYS)
    if fixed:
        raise CharLMError(
            f"cannot change {', '.join(fixed)} when resuming {rundir.path}; "
            "start a new run to train with other settings"
        )
    cfg = saved.replace(
        **{k: v for k, v in overrides.items() if k in RESUMABLE_KEYS},
        **({"paths": [str(p) for p in paths]} if paths else {}),
    )
    return cfg.replace(runs_dir=saved.runs_dir, name=saved.name)


def _resumed_corpus(cfg, rundir, vocab, log, progress) -> EncodedCorpus:
    """The run's own id file when the corpus files are unchanged since the run encoded them
    (the same sizes and modification times), else the corpus encoded again and checked
    against the run's hashes."""
    info, sources = rundir.corpus_info(), corpus_sources(cfg)
    kept = sources is not None and info.get("sources") == sources
    if kept and ids_match(rundir.path, vocab, info, log):  # checked against corpus.json first
        log(
            f"corpus: unchanged since {rundir.path.name} encoded it (the same files, sizes and "
            f"modification times): training on its {IDS_FILE} as it is"
        )
        return EncodedCorpus.placed(rundir.path, vocab, info)
    # in the run's own vocabulary: a fine-tuned run's is its origin's with new characters
    # appended, not the sorted one a fresh encoding would make
    corpus = encode_corpus(cfg, rundir.path, log, progress, base=(vocab, rundir.path.name))
    try:
        rundir.check_corpus(corpus)
        if corpus.vocab != vocab:
            raise CharLMError(
                f"{rundir.path}: the corpus has characters its vocabulary lacks, so it is not "
                "the text the run was trained on; pass the run's own corpus"
            )
    except BaseException:
        corpus.discard()
        raise
    return corpus  # in temporary files until the resume has read its checkpoint
