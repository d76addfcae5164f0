"""The Python API: the three jobs of the command line, as functions.

import charlm
run = charlm.train(["corpora/tinyshakespeare.txt"], config="configs/tiny.toml", steps=200)
print(run.generate("ROMEO:", length=200, temperature=0.8)[0])
print(run.evaluate(text="To be, or not to be")["perplexity"])

run = charlm.load()            # the newest run under ./runs
run = charlm.load("runs/my-run", weights="last")

:func:`prepare` is :func:`train` up to the first step, for tools that drive the loop
themselves; :mod:`charlm.api.inputs` reads what a run trains on, :mod:`charlm.api.run` is
the :class:`Run` a training returns and :func:`load` loads.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from ..errors import CharLMError
from ..models.memory import check_fits
from ..options.config import SHAPE_KEYS, Config
from ..options.toml import canonical_keys, read_preset
from ..runs.folders import resolve_run
from ..runs.rundir import RunDir, WorkerRunDir
from ..text.samplers import make_sampler
from ..training.clock import Clock, check_time_left
from ..version import __version__
from .inputs import encode_corpus, resolve_config, resumed_inputs, to_stderr
from .origin import Origin
from .run import Run


def train(paths=None, *, resume: str | bool | None = None, **options) -> Run:
    """Train a model and return the :class:`Run`; ``options`` are those of :func:`prepare`.

    ``paths``: corpus files/folders/.zip/.gz; ``config``: a TOML preset path or a Config;
    any config key as a keyword, e.g. ``model="gru", steps=500``. ``resume=True`` (the
    newest run) or a run folder continues that run; ``force=True`` replaces an existing run.
    ``init_from``: a run folder (or a run's name under ``runs_dir``) whose model shape and
    ``init_weights`` ("best" or "last") a new run starts from (:mod:`charlm.api.origin`).
    ``callbacks``: :class:`~charlm.training.trainer.Callback`\\ s that watch the loop. A time
    budget counts from ``started`` (a ``time.monotonic()``; default: now).
    """
    trainer = prepare(paths, resume=resume, **options)
    try:
        trainer.fit(resume=bool(resume))
        trainer.rundir.complete()  # also a run that ended at step 0 (e.g. its budget spent)
    except BaseException:
        trainer.rundir.abandon()
        raise
    finally:
        trainer.rundir.release()
    return Run(trainer.rundir.path, model=trainer.model)


def prepare(
    paths=None,
    *,
    config=None,
    resume: str | bool | None = None,
    force: bool = False,
    log=to_stderr,
    progress: bool | None = None,
    callbacks=(),
    started: float | None = None,
    init_from: str | Path | None = None,
    init_weights: str = "best",
    **overrides,
):
    """Everything :func:`train` does before the first step: read and check the corpus and
    config, write the run directory, build the model, and return the
    :class:`~charlm.training.trainer.Trainer` (not yet fitted). Benchmarks and tools that drive
    the loop themselves start here. The keywords are :func:`train`'s.

    The run folder is locked for this process (``trainer.rundir.release()`` lets it go; the
    end of the process does too), and a new run stays incomplete, not ``latest``, until its
    first checkpoint of a trained step; if this fails, a new run's folder is removed."""
    started = time.monotonic() if started is None else started
    overrides = canonical_keys(overrides)
    if resume and init_from:
        raise CharLMError(
            "--init-from starts a new run from another run's weights and --resume continues "
            "a run; pass only one of them"
        )
    notes = []  # told once the inputs are known good
    init = (init_from, init_weights) if init_from else None
    cfg, rundir, corpus, vocab, sampler, origin = _inputs(
        paths, config, resume, overrides, force, started, notes.append, progress, init
    )
    try:
        if sampler is None:
            sampler = _sampler(cfg, corpus)
        for line in notes:
            log(line)
        rundir.log = log
        return _start_run(
            cfg, rundir, corpus, vocab, sampler, resume, log, progress, callbacks, started, origin
        )
    except BaseException:
        rundir.abandon()
        if not resume:
            corpus.discard()
        raise


def _inputs(paths, config, resume, overrides, force, started, log, progress, init):
    """The config, run folder, encoded corpus, vocabulary, sampler (None on a resume: made
    where a failure releases the run) and origin of the run to train."""
    if resume:
        cfg, rundir, corpus, vocab = resumed_inputs(paths, config, resume, overrides, log, progress)
        return cfg, rundir, corpus, vocab, None, None
    cfg, rundir, corpus, sampler, origin = _new_run(
        paths, config, overrides, force, started, log, progress, init
    )
    return cfg, rundir, corpus, corpus.vocab, sampler, origin


def _start_run(
    cfg, rundir, corpus, vocab, sampler, resume, log, progress, callbacks, started, origin
):
    """Write the run's plain files (a new run's vocabulary, corpus and origin, the config),
    and build its trainer."""
    if not resume:
        cfg = _fill_new_run(cfg, rundir, corpus, origin)
    rundir.write_config(cfg, __version__)
    rundir.mark_latest()  # a resumed run that is complete; a new one once it completes
    log(
        f"run {rundir.path}: {cfg.model} {cfg.layers}x{cfg.units}, {len(vocab)} characters in "
        f"the vocabulary, {corpus.train_chars:,} training and {corpus.val_chars:,} held-out characters"
    )
    return _trainer(
        cfg, rundir, vocab, sampler, corpus.val_ids, log, progress, callbacks, started, origin
    )


def _new_run(paths, config, overrides, force, started, log, progress, init=None):
    """The config, the new run folder (claimed, locked, still incomplete), the encoded corpus, the sampler and the
    :class:`Origin` (``init``: ``(run, weights)``, or None) of a new run; everything that can
    be wrong with the data and the run it starts from is checked before a run file is
    written, and the encoded corpus is removed when something is."""
    cfg = resolve_config(config, **overrides)
    if paths:
        cfg = cfg.replace(paths=[str(p) for p in paths])
    given, origin = given_keys(config, overrides), None
    if init:
        origin = Origin.open(init[0], cfg.runs_dir, init[1])
        cfg, given = origin.shape(cfg, overrides, config), given | set(SHAPE_KEYS)
        origin.check_kept(cfg)
        log(f"starting from {origin.describe()}; the optimizer starts fresh")
    # the corpus is encoded into temporary files beside the runs, moved into the run later
    corpus = encode_corpus(cfg, Path(cfg.runs_dir), log, progress, base=origin and origin.base)
    try:
        if cfg.time_budget_seconds:
            cfg = _within_budget(cfg, given, corpus, started, log, origin)
        sampler = _sampler(cfg, corpus)
        check_fits(cfg, len(corpus.vocab))  # before the run folder: a model too big makes none
        return cfg, RunDir.create(cfg, force=force, log=log), corpus, sampler, origin
    except BaseException:
        corpus.discard()
        raise


def _fill_new_run(cfg, rundir, corpus, origin) -> Config:
    """Write a new run's vocabulary, corpus and origin; its config, named after its folder."""
    rundir.write_vocab(corpus.vocab)
    rundir.write_corpus_info(corpus, corpus.vocab)
    if origin:
        rundir.write_origin(origin.record())
    return cfg.replace(name=rundir.path.name)


def _sampler(cfg: Config, corpus):
    """The batches of the training text, as ``cfg`` cuts them."""
    return make_sampler(cfg.sampler, corpus.train_ids, cfg.seq_len, cfg.batch_size, cfg.cut)


def given_keys(config, overrides: dict) -> set[str]:
    """The settings the user gave: every flag, and every key of the preset (a Config object
    as a preset gives every setting)."""
    if isinstance(config, Config):
        return set(Config().to_dict())
    return set(overrides) | (set(read_preset(config)) if config else set())


def _within_budget(cfg, given, corpus, started, log, origin=None) -> Config:
    """``cfg`` for a run that must end within its time budget: with the settings the user left
    unset (and the weights of ``origin`` leave open) chosen by the budget recipe, or
    (``--recipe fixed``) as it is, once it is clear that start-up has left time to train."""
    left = Clock(cfg.time_budget_seconds, started).left()
    if cfg.recipe == "auto":
        from ..training.recipe import choose

        sizes = len(corpus.vocab), corpus.train_chars, corpus.val_chars
        shape_from = origin.describe() if origin else None
        return choose(cfg, given, *sizes, left, log, shape_from=shape_from)
    check_time_left(cfg.time_budget, left, cfg.recipe)
    return cfg


def _trainer(cfg, rundir, vocab, sampler, val_ids, log, progress, callbacks, started, origin):
    """The trainer and what it is handed from above: the model (with ``origin``'s weights, if
    any), the scorer, the generator and the TensorBoard log. TensorFlow is imported here, once
    the inputs are good (or earlier, to load ``origin``), and the line that says which device
    trains (charlm.models.device) is logged. Under a ``--strategy`` they are built in its
    scope, and a non-chief worker saves into a temporary folder (charlm.training.distribute)."""
    from ..models.device import device_line
    from ..models.lm import build_model
    from ..training import distribute
    from ..training.monitor import LossPlot, RunRecord, TensorBoardLog
    from ..training.trainer import Trainer
    from ..use.evaluate import Scorer
    from ..use.generate import Generator

    strategy = distribute.strategy(cfg.strategy, cfg.peer_timeout)
    if strategy is not None:
        distribute.check_batch(strategy, cfg.batch_size)
        rundir = rundir if distribute.is_chief(strategy) else WorkerRunDir(rundir)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    log(device_line(cfg.precision, replicas, cfg.strategy))
    with distribute.scope(strategy):
        model = build_model(cfg, len(vocab))
        if origin:
            origin.load_into(model)
        generator = Generator(model, vocab)
        return Trainer(
            cfg,
            model,
            sampler,
            val_ids,
            rundir,
            score=Scorer(model),
            generate=functools.partial(generator.generate, warn=log),
            callbacks=[
                TensorBoardLog(rundir.path / "tb", cfg),
                RunRecord(),
                LossPlot(rundir.path, log=log),
                *callbacks,
            ],
            log=log,
            progress=progress,
            started=started,
            strategy=strategy,
        )


def load(run: str | Path | None = None, *, runs_dir: str = "runs", weights: str = "best") -> Run:
    """The run in folder ``run`` (or the newest in ``run``, a folder of runs), or the newest
    one under ``runs_dir``."""
    return Run(resolve_run(str(run) if run else None, runs_dir), weights=weights)
