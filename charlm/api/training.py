"""Training through the api: :func:`train`, :func:`prepare` and their launch-taking twins,
and :func:`load`. The one door is :mod:`charlm.api`, which hands these out; this module does
the work: the inputs checked, the run folder written, the trainer built on the launch's clock.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import CharLMError
from ..models.memory import check_fits
from ..options.config import RUNS_DIR, SHAPE_KEYS, Config
from ..options.toml import read_preset
from ..runs.folders import resolve_run
from ..runs.rundir import RunDir
from ..runs.worker import WorkerRunDir
from ..text.samplers import make_sampler
from ..training.clock import check_time_left
from ..version import __version__
from .families import checked
from .inputs import (
    Inputs,
    encode_corpus,
    resolve_config,
    resumed_inputs,
    to_stderr,
    writes_run,
)
from .launch import Launch
from .origin import Origin
from .run import Run

if TYPE_CHECKING:
    from ..text.idfile import EncodedCorpus
    from ..training.trainer import Callback, Trainer


def train(
    paths: Sequence[str | Path] | None = None,
    *,
    resume: str | Path | bool | None = None,
    **options: Any,
) -> Run:
    """Train a model and return its :class:`Run`.

    Args:
        paths: The corpus: files, folders, .zip, .gz (None: the preset's).
        resume: True (the newest run) or a run folder: continue that run.
        **options: :func:`prepare`'s keywords: ``config``, ``force``, ``init_from``,
            ``init_weights``, ``callbacks``, ``log``, ``progress``, ``started``, and any config
            key as a keyword, e.g. ``model="gru", steps=500``.

    Returns:
        The run, its folder complete (also a run that ended at step 0, its budget spent), with
        the trained model.

    Raises:
        CharLMError: a problem with the corpus, the config or the run folder, told in one line
            (before a run file is written, where it can be known then).
        TrainingInterrupted: SIGINT or SIGTERM stopped the training once its checkpoint was
            saved.
    """
    return _fitted(prepare(paths, resume=resume, **options), resume)


def prepare(
    paths: Sequence[str | Path] | None = None,
    *,
    config: str | Path | Config | None = None,
    resume: str | Path | bool | None = None,
    force: bool = False,
    log: Callable[[str], None] = to_stderr,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
    started: float | None = None,
    init_from: str | Path | None = None,
    init_weights: str = "best",
    **overrides: Any,
) -> Trainer:
    """Everything :func:`train` does before the first step: read and check the corpus and
    config, write the run directory, build the model. Benchmarks and tools that drive the loop
    themselves start here.

    The run folder is locked for this process (``trainer.rundir.release()`` lets it go; the
    end of the process does too), and a new run stays incomplete, not ``latest``, until its
    first checkpoint of a trained step; if this fails, a new run's folder is removed.

    Args:
        paths, config, resume, force, log, progress, callbacks, started, init_from,
        init_weights: The fields of :class:`~charlm.api.launch.Launch`, which says each.
        **overrides: Any config key, e.g. ``model="gru", steps=500``.

    Returns:
        The :class:`~charlm.training.trainer.Trainer`, not yet fitted.

    Raises:
        CharLMError: as :func:`train`.
    """
    launch = Launch(
        paths=paths,
        config=config,
        overrides=overrides,
        resume=resume,
        force=force,
        init_from=init_from,
        init_weights=init_weights,
        log=log,
        progress=progress,
        callbacks=tuple(callbacks),
        started=time.monotonic() if started is None else started,
    )
    return prepare_launch(launch)


def train_launch(launch: Launch) -> Run:
    """:func:`train` of a :class:`~charlm.api.launch.Launch` made by the caller (``charlm
    train`` makes one from its flags and the start of its process).

    Args:
        launch: What to train, and the clock its budget counts on.

    Returns:
        The trained :class:`Run`, as :func:`train` returns it.

    Raises:
        CharLMError, TrainingInterrupted: as :func:`train`.
    """
    return _fitted(prepare_launch(launch), launch.resume)


def prepare_launch(launch: Launch) -> Trainer:
    """:func:`prepare` of a :class:`~charlm.api.launch.Launch` made by the caller.

    Args:
        launch: What to train, and the clock its budget counts on.

    Returns:
        The :class:`~charlm.training.trainer.Trainer`, not yet fitted, on ``launch.clock``.

    Raises:
        CharLMError: as :func:`train`.
    """
    if launch.resume and launch.init_from:
        raise CharLMError(
            "--init-from starts a new run from another run's weights and --resume continues "
            "a run; pass only one of them"
        )
    notes: list[str] = []  # told once the inputs are known good
    if launch.resume:
        inputs = resumed_inputs(launch, notes.append)
    else:
        inputs = _new_run(launch, notes.append)
    try:
        if inputs.sampler is None:  # a resumed run's: made where a failure releases the run
            inputs = dataclasses.replace(inputs, sampler=_sampler(inputs.cfg, inputs.corpus))
        for line in notes:
            launch.log(line)
        inputs.rundir.log = launch.log
        return _start_run(launch, inputs)
    except BaseException:
        inputs.rundir.abandon()
        if not launch.resume or not inputs.corpus.is_placed_in(inputs.rundir.path):
            inputs.corpus.discard()  # a new run's, or a resume's encoded again and not kept
        raise


def _fitted(trainer: Trainer, resume) -> Run:
    """Fit ``trainer``, then mark its run complete (or, on any failure, abandoned) and let
    its folder go; the :class:`Run` with the trained model."""
    try:
        trainer.fit(resume=bool(resume))
        trainer.rundir.complete()  # also a run that ended at step 0 (e.g. its budget spent)
    except BaseException:
        trainer.rundir.abandon()
        raise
    finally:
        trainer.rundir.release()
    return Run(trainer.rundir.path, model=trainer.model)


def _new_run(launch: Launch, log: Callable[[str], None]) -> Inputs:
    """The inputs of a new run: its config, its folder (claimed, locked, still incomplete),
    the encoded corpus, the sampler and the :class:`Origin`; the launch's clock learns the
    run's budget before the budget recipe reads it. Everything that can be wrong with the
    data and the run it starts from is checked before a run file is written, and the encoded
    corpus is removed when something is."""
    asked = _new_config(launch, log)
    cfg, origin = asked.cfg, asked.origin
    launch.clock.set_budget(cfg.time_budget_seconds)
    # a non-chief worker claims no folder: the chief alone makes the run (one claimant)
    worker = None if writes_run(cfg.strategy) else WorkerRunDir(None)
    # the corpus is encoded into temporary files beside the runs, moved into the run later
    base = origin.base if origin else None
    folder = worker.path if worker else Path(cfg.runs_dir)
    corpus = encode_corpus(cfg, folder, log, launch.progress, base=base)
    try:
        if cfg.time_budget_seconds:
            cfg = checked(_within_budget(launch, asked, corpus, log))
        sampler = _sampler(cfg, corpus)
        check_fits(cfg, len(corpus.vocab))  # before the run folder: a model too big makes none
        rundir = worker or RunDir.create(cfg, force=launch.force, log=log)
        return Inputs(cfg, rundir, corpus, corpus.vocab, sampler, origin)
    except BaseException:
        corpus.discard()
        raise


class Asked(NamedTuple):
    """What a new run is asked to be: its ``cfg`` (defaults, preset, flags, corpus; with
    ``--init-from``, the model shape of the ``origin`` it starts from) and the settings the
    user ``given`` (which the budget recipe keeps)."""

    cfg: Config
    given: set[str]
    origin: Origin | None


def _new_config(launch: Launch, log: Callable[[str], None]) -> Asked:
    """What the launch asks a new run to be, checked against its family."""
    cfg = resolve_config(launch.config, **launch.overrides)
    if launch.paths:
        cfg = cfg.replace(paths=[str(p) for p in launch.paths])
    given, origin = given_keys(launch.config, launch.overrides), None
    if launch.init_from:
        origin = Origin.open(launch.init_from, cfg.runs_dir, launch.init_weights)
        cfg = origin.shape(cfg, launch.overrides, launch.config)
        origin.check_kept(cfg)
        log(f"starting from {origin.describe()}; the optimizer starts fresh")
        given |= set(SHAPE_KEYS)
    preset = None if isinstance(launch.config, Config) else launch.config
    return Asked(checked(cfg, preset, launch.overrides), given, origin)


def _start_run(launch: Launch, inputs: Inputs) -> Trainer:
    """Write the run's plain files (a new run's vocabulary, corpus and origin, the config),
    and build its trainer."""
    cfg, rundir, corpus = inputs.cfg, inputs.rundir, inputs.corpus
    if not launch.resume:
        cfg = _fill_new_run(cfg, rundir, corpus, inputs.origin)
        rundir.write_config(cfg, __version__)
    launch.log(
        f"run {rundir.path}: {cfg.model} {cfg.layers}x{cfg.units}, {len(inputs.vocab)} characters "
        f"in the vocabulary, {corpus.train_chars:,} training and {corpus.val_chars:,} held-out "
        "characters"
    )
    trainer = _trainer(launch, dataclasses.replace(inputs, cfg=cfg))
    if launch.resume:  # its last refusal is an unreadable checkpoint: nothing written before
        trainer.restore()
        if inputs.corpus_anew:
            rundir.write_corpus_info(corpus, inputs.vocab)  # the same text: note its files anew
        trainer.rundir.write_config(cfg, __version__)
    rundir.mark_latest()  # a resumed run that is complete; a new one once it completes
    return trainer


def _fill_new_run(cfg: Config, rundir: RunDir, corpus: EncodedCorpus, origin) -> Config:
    """Write a new run's vocabulary, corpus and origin; its config, named after its folder."""
    rundir.write_vocab(corpus.vocab)
    rundir.write_corpus_info(corpus, corpus.vocab)
    if origin:
        rundir.write_origin(origin.record())
    return cfg.replace(name=rundir.path.name)


def _sampler(cfg: Config, corpus: EncodedCorpus):
    """The batches of the training text, as ``cfg`` cuts them."""
    return make_sampler(cfg.sampler, corpus.train_ids, cfg.seq_len, cfg.batch_size, cfg.cut)


def given_keys(config, overrides: dict) -> set[str]:
    """The settings the user gave: every flag, and every key of the preset (a Config object
    as a preset gives every setting)."""
    if isinstance(config, Config):
        return set(Config().to_dict())
    return set(overrides) | (set(read_preset(config)) if config else set())


def _within_budget(
    launch: Launch, asked: Asked, corpus: EncodedCorpus, log: Callable[[str], None]
) -> Config:
    """The asked config for a run that must end within its time budget: with the settings
    the user left unset (and the weights it starts from leave open) chosen by the budget
    recipe, or (``--recipe fixed``) as it is, once the launch's clock says that start-up has
    left time to train."""
    cfg = asked.cfg
    if cfg.recipe == "auto":
        from ..training.recipe import choose

        sizes = len(corpus.vocab), corpus.train_chars, corpus.val_chars
        shape_from = asked.origin.describe() if asked.origin else None
        return choose(cfg, asked.given, *sizes, launch.clock, log, shape_from=shape_from)
    check_time_left(cfg.time_budget, launch.clock.budget_left(), cfg.recipe)
    return cfg


def _trainer(launch: Launch, inputs: Inputs) -> Trainer:
    """The trainer, on the launch's clock, and what it is handed from above: the model (with
    the origin's weights, if any), the scorer, the generator and the TensorBoard log.
    TensorFlow is imported here, once the inputs are good (or earlier, to load the origin),
    and the line that says which device trains (charlm.models.device) is logged. Under a
    ``--strategy`` they are built in its scope, and a non-chief worker saves into a temporary
    folder (charlm.training.distribute)."""
    from ..models.device import device_line
    from ..models.lm import build_model
    from ..training import distribute
    from ..training.monitor import LossPlot, RunRecord, TensorBoardLog
    from ..training.trainer import Trainer
    from ..use.evaluate import Scorer
    from ..use.generate import Generator

    cfg, rundir, log = inputs.cfg, inputs.rundir, launch.log
    strategy = distribute.strategy(cfg.strategy, cfg.peer_timeout)
    if strategy is not None:
        distribute.check_batch(strategy, cfg.batch_size)
        if not distribute.is_chief(strategy) and not isinstance(rundir, WorkerRunDir):
            rundir = WorkerRunDir(rundir)  # a resume's: it reads the chief's checkpoints
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    log(device_line(cfg.precision, replicas, cfg.strategy))
    with distribute.scope(strategy):
        model = _first_weights(build_model(cfg, len(inputs.vocab)), inputs)
        generator = Generator(model, inputs.vocab)
        return Trainer(
            cfg,
            model,
            inputs.sampler,
            inputs.corpus.val_ids,
            rundir,
            score=Scorer(model),
            generate=functools.partial(generator.generate, warn=log),
            callbacks=[
                TensorBoardLog(rundir.path / "tb", cfg),
                RunRecord(),
                LossPlot(rundir.path, log=log),
                *launch.callbacks,
            ],
            log=log,
            progress=launch.progress,
            clock=launch.clock,
            strategy=strategy,
        )


def _first_weights(model, inputs: Inputs):
    """``model`` with the origin's weights (``--init-from``), or else, where ``output_bias``
    is "unigram" (the default), its output bias at the training text's unigram
    log-frequencies: its first step then predicts as well as counting characters, and does
    not spend its first hundred updates learning what counting knows (the Tang poems at 1
    minute: val 5.39-5.41 nats/char against 5.90-5.96 from a zero bias, BENCHMARKS.md). A
    resume's checkpoint overwrites it; a resume with none starts at step 0 as the new run did."""
    import numpy as np

    if inputs.origin:
        inputs.origin.load_into(model)
    elif inputs.cfg.output_bias == "unigram":
        counted = inputs.corpus.unigram_probabilities()  # the encoding's count, if it made one
        model.output_bias.assign(np.log(counted).astype(np.float32))
    return model


def at_startup(cfg: Config) -> None:
    """What must happen before TensorFlow's devices start: ``cfg``'s multi-worker strategy is
    made (:func:`charlm.training.distribute.at_startup`; it imports TensorFlow).

    Args:
        cfg: The run's config; nothing happens unless its ``strategy`` is "multi-worker".
    """
    from ..training.distribute import at_startup as make_strategy

    make_strategy(cfg)


def load(run: str | Path | None = None, *, runs_dir: str = RUNS_DIR, weights: str = "best") -> Run:
    """A trained run, loaded.

    Args:
        run: A run folder, or a folder of runs (its newest); None: the newest under
            ``runs_dir``.
        runs_dir: Where the runs are.
        weights: "best" (the lowest held-out loss) or "last".

    Returns:
        The :class:`Run`.

    Raises:
        CharLMError: no such run, or one that cannot be read.
    """
    return Run(resolve_run(str(run) if run else None, runs_dir), weights=weights)
