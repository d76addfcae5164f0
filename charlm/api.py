"""The Python API: the three jobs of the command line, as functions.

import charlm
run = charlm.train(["corpora/tinyshakespeare.txt"], config="configs/tiny.toml", steps=200)
print(run.generate("ROMEO:", length=200, temperature=0.8)[0])
print(run.evaluate(text="To be, or not to be")["perplexity"])

run = charlm.load()            # the newest run under ./runs
run = charlm.load("runs/my-run", weights="last")
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

from . import __version__
from .config import Config, canonical_keys, read_preset
from .errors import CharLMError
from .runs.folders import resolve_run
from .runs.rundir import RunDir, WorkerRunDir
from .sampling import SamplingOptions, check_num_samples
from .text.corpus import read_chunks, read_corpus, source_signature
from .text.idfile import IDS_FILE, VAL_FILE, EncodedCorpus, encode
from .text.samplers import make_sampler
from .text.texts import corpus_options, read_options, read_texts  # noqa: F401 (API)
from .training.clock import Clock, check_time_left

# settings that may change when a run is resumed: limits and monitoring, never the model or data
RESUMABLE_KEYS = {
    "epochs",
    "steps",
    "time_budget",
    "eval_every",
    "eval_every_epochs",
    "eval_chars",
    "checkpoint_every",
    "sample_every",
    "sample_every_epochs",
    "sample_prefixes",
    "sample_length",
    "sample_temperature",
    "paths",
    "max_input_bytes",
    "runs_dir",
    "name",
}


def _warn(msg: str) -> None:
    print(msg, file=sys.stderr)


def resolve_config(config=None, **overrides) -> Config:
    """Defaults, then the TOML preset ``config`` (a path or a Config), then ``overrides``."""
    if isinstance(config, Config):
        cfg = config
    elif config:
        cfg = Config.load(config)
    else:
        cfg = Config()
    return cfg.replace(**overrides) if overrides else cfg


def encode_corpus(cfg: Config, folder, log=_warn, progress: bool | None = None) -> EncodedCorpus:
    """The corpus ``cfg`` describes, streamed twice and encoded into an id file in ``folder``
    (:mod:`charlm.text.idfile`): train and held-out ids equal ``vocab.encode`` of :func:`read_texts`."""
    sources = corpus_sources(cfg)  # before reading: a file changed meanwhile shows next time
    source = _source(list(cfg.paths), corpus_options(cfg), log)
    val_source = _source([cfg.val_file], read_options(cfg), log) if cfg.val_file else None
    corpus = encode(source, val_source, cfg.val_fraction, folder, log=log, progress=progress)
    corpus.sources = sources
    return corpus


def corpus_sources(cfg: Config) -> list | None:
    """The size and modification time of every file the corpus of ``cfg`` reads."""
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


def train(
    paths=None,
    *,
    config=None,
    resume: str | bool | None = None,
    force: bool = False,
    log=_warn,
    progress: bool | None = None,
    callbacks=(),
    started: float | None = None,
    **overrides,
) -> Run:
    """Train a model and return the :class:`Run`.

    ``paths``: corpus files/folders/.zip/.gz; ``config``: a TOML preset path or a Config;
    ``overrides``: any config key, e.g. ``model="gru", steps=500``. ``resume=True`` (the
    newest run) or a run folder continues that run; ``force`` replaces an existing run.
    ``callbacks``: :class:`~charlm.training.trainer.Callback`\\ s that watch the loop. A time
    budget counts from ``started`` (a ``time.monotonic()``; default: now).
    """
    started = time.monotonic() if started is None else started
    trainer = prepare(
        paths,
        config=config,
        resume=resume,
        force=force,
        log=log,
        progress=progress,
        callbacks=callbacks,
        started=started,
        **overrides,
    )
    trainer.fit(resume=bool(resume))
    return Run(trainer.rundir.path, model=trainer.model)


def prepare(
    paths=None,
    *,
    config=None,
    resume: str | bool | None = None,
    force: bool = False,
    log=_warn,
    progress: bool | None = None,
    callbacks=(),
    started: float | None = None,
    **overrides,
):
    """Everything :func:`train` does before the first step: read and check the corpus and
    config, write the run directory, build the model, and return the
    :class:`~charlm.training.trainer.Trainer` (not yet fitted). Benchmarks and tools that drive the
    loop themselves start here."""
    overrides = canonical_keys(overrides)
    notes = []  # told once the inputs are known good, so that a bad one is the only line
    if resume:
        cfg, rundir, corpus, vocab = _resumed_inputs(
            paths, config, resume, overrides, notes.append, progress
        )
    else:
        cfg = resolve_config(config, **overrides)
        if paths:
            cfg = cfg.replace(paths=[str(p) for p in paths])
        # the corpus is encoded into temporary files beside the runs, moved into the run below
        corpus = encode_corpus(cfg, Path(cfg.runs_dir), notes.append, progress)
        vocab = corpus.vocab
    try:  # everything that can be wrong with the data is checked before a run file is written
        if not resume and cfg.time_budget_seconds:
            cfg = _within_budget(
                cfg,
                given_keys(config, overrides),
                len(vocab),
                corpus.train_chars,
                corpus.val_chars,
                started,
                notes.append,
            )
        sampler = make_sampler(cfg.sampler, corpus.train_ids, cfg.seq_len, cfg.batch_size, cfg.cut)
        if not resume:
            rundir = RunDir.create(cfg, force=force)
    except BaseException:
        if not resume:
            corpus.discard()
        raise
    for line in notes:
        log(line)
    if not resume:
        cfg = cfg.replace(name=rundir.path.name)
        rundir.write_vocab(vocab)
        rundir.write_corpus_info(corpus, vocab)
    rundir.write_config(cfg, __version__)
    rundir.mark_latest()
    log(
        f"run {rundir.path}: {cfg.model} {cfg.layers}x{cfg.units}, {len(vocab)} characters in "
        f"the vocabulary, {corpus.train_chars:,} training and {corpus.val_chars:,} held-out characters"
    )
    return _trainer(cfg, rundir, vocab, sampler, corpus.val_ids, log, progress, callbacks, started)


def given_keys(config, overrides: dict) -> set[str]:
    """The settings the user gave: every flag, and every key of the preset (a Config object
    as a preset gives every setting)."""
    if isinstance(config, Config):
        return set(Config().to_dict())
    return set(overrides) | (set(read_preset(config)) if config else set())


def _within_budget(cfg, given, vocab_size, train_chars, val_chars, started, log) -> Config:
    """``cfg`` for a run that must end within its time budget: with the settings the user left
    unset chosen by the budget recipe, or (``--recipe fixed``) as it is, once it is clear that
    start-up has left time to train."""
    left = Clock(cfg.time_budget_seconds, started).left()
    if cfg.recipe == "auto":
        from .training.recipe import choose

        return choose(cfg, given, vocab_size, train_chars, val_chars, left, log)
    check_time_left(cfg.time_budget, left, cfg.recipe)
    return cfg


def _resumed_inputs(paths, config, resume, overrides, log, progress):
    """The config, run folder, encoded corpus and vocabulary of a run to resume, each checked
    against what the run was started with."""
    runs_dir = overrides.get("runs_dir", "runs")
    rundir = RunDir(resolve_run(None if resume is True else str(resume), runs_dir, "--resume"))
    saved = rundir.read_config()
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
    cfg = cfg.replace(runs_dir=saved.runs_dir, name=saved.name)
    vocab = rundir.read_vocab()
    return cfg, rundir, _resumed_corpus(cfg, rundir, vocab, log, progress), vocab


def _resumed_corpus(cfg, rundir, vocab, log, progress) -> EncodedCorpus:
    """The run's own id file when the corpus files are unchanged since the run encoded them
    (the same sizes and modification times), else the corpus encoded again and checked
    against the run's hashes."""
    info, sources = rundir.corpus_info(), corpus_sources(cfg)
    kept = all((rundir.path / name).is_file() for name in (IDS_FILE, VAL_FILE))
    if kept and sources is not None and info.get("sources") == sources:
        log(
            f"corpus: unchanged since {rundir.path.name} encoded it (the same files, sizes and "
            f"modification times): training on its {IDS_FILE} as it is"
        )
        return EncodedCorpus.placed(rundir.path, vocab, info)
    corpus = encode_corpus(cfg, rundir.path, log, progress)
    try:
        rundir.check_corpus(corpus)
    except BaseException:
        corpus.discard()
        raise
    rundir.write_corpus_info(corpus, vocab)  # the same text: note its files anew
    return corpus


def _trainer(cfg, rundir, vocab, sampler, val_ids, log, progress, callbacks, started):
    """The trainer and what it is handed from above: the model, the scorer, the generator and
    the TensorBoard log. TensorFlow is imported only here, once the inputs are good. Under a
    ``--strategy`` they are built in its scope, and a non-chief worker saves into a temporary
    folder (charlm.training.distribute)."""
    from .models.lm import build_model
    from .training import distribute
    from .training.monitor import LossPlot, RunRecord, TensorBoardLog
    from .training.trainer import Trainer
    from .use.evaluate import Scorer
    from .use.generate import Generator

    strategy = distribute.strategy(cfg.strategy)
    if strategy is not None:
        distribute.check_batch(strategy, cfg.batch_size)
        rundir = rundir if distribute.is_chief(strategy) else WorkerRunDir(rundir)
    with distribute.scope(strategy):
        model = build_model(cfg, len(vocab))
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


class Run:
    """A trained run: its config, vocabulary and model, ready to generate and evaluate."""

    def __init__(self, path, weights: str = "best", model=None):
        self.dir = RunDir(path)
        self.path = self.dir.path
        self.config = self.dir.read_config()
        self.vocab = self.dir.read_vocab()
        self.model = model if model is not None else self._load_model(weights)
        self._generator = None
        self._generation_model = None
        self._scorer = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def _load_model(self, weights: str):
        from .models.lm import load_model, weights_suffix

        path, way_out = self.dir.find_weights(weights, weights_suffix(self.config))
        return load_model(self.config, len(self.vocab), path, way_out)

    @property
    def generation_model(self):
        """The model that generates, for ``charlm sample`` and ``charlm export`` alike: the
        run's weights computing in float32 (see ``LanguageModel.in_float32``), so that an
        export of a mixed_bfloat16 run writes what ``charlm sample`` writes."""
        if self._generation_model is None:
            self._generation_model = self.model.in_float32()
        return self._generation_model

    @property
    def generator(self):
        if self._generator is None:
            from .use.generate import Generator

            self._generator = Generator(self.generation_model, self.vocab)
        return self._generator

    def generate(
        self,
        prefixes: str | list[str] | None,
        length: int | None = None,
        *,
        options: SamplingOptions | None = None,
        num_samples: int = 1,
        warn=_warn,
        chunk: int | None = None,
        **fields,
    ) -> list[str]:
        """``num_samples`` samples for each prefix, each starting with its prefix, drawn with
        ``options`` (a :class:`~charlm.sampling.SamplingOptions`; default: its defaults) and
        ``length`` and any of its fields as keywords on top, as ``charlm sample`` takes them::

            run.generate("ROMEO:", length=200, temperature=0.8, stop=["\\n\\n"])
            run.generate(["A", "B"], options=SamplingOptions(top_p=0.9, seed=1))
        """
        options = SamplingOptions.of(options, length=length, **fields)
        check_num_samples(num_samples)
        return self.generator.generate(
            prefixes,
            options=options,
            num_samples=num_samples,
            warn=warn,
            chunk=chunk or max(1, options.length),
        )

    def stream(
        self,
        prefixes: list[str] | None,
        length: int | None = None,
        *,
        options: SamplingOptions | None = None,
        num_samples: int = 1,
        warn=_warn,
        chunk: int | None = None,
        **fields,
    ):
        """Like :meth:`generate`, but yields the new text of every sample chunk by chunk (the
        first yield: the prefixes); a bad option raises before the first yield."""
        options = SamplingOptions.of(options, length=length, **fields)
        check_num_samples(num_samples)
        return self.generator.stream(
            prefixes, options=options, num_samples=num_samples, warn=warn, chunk=chunk
        )

    def evaluate(
        self,
        text: str | None = None,
        paths=None,
        batch_size: int = 64,
        seq_len: int = 256,
        carry_state: bool = True,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> dict:
        """nats/char, bits/char and perplexity on ``text``, on files ``paths`` (read with the
        run's corpus options, or ``encoding``/``errors``), or, with neither, on the run's
        held-out text."""
        if text is None and paths:
            cfg = self.config
            text = read_corpus(
                list(paths),
                encoding=encoding or cfg.encoding,
                errors=errors or cfg.errors,
                newlines=cfg.newlines,
                lowercase=cfg.lowercase,
                max_input_bytes=cfg.max_input_bytes,
            )
        elif text is None:
            text = self.dir.read_val_text()
            if len(text) < 2:
                raise CharLMError(
                    f"{self.path} has no held-out text (val-fraction 0); "
                    "name a file to score: charlm eval FILE"
                )
        if self._scorer is None:
            from .use.evaluate import Scorer

            self._scorer = Scorer(self.model)
        ids = self.vocab.encode(text)
        result = self._scorer(ids, batch_size=batch_size, seq_len=seq_len, carry_state=carry_state)
        result["unknown_chars"] = int((ids[1:] == 0).sum())
        return result

    def metrics(self) -> list[dict]:
        """The metrics history (one dict per row of metrics.csv)."""
        return self.dir.read_metrics()


def load(run: str | Path | None = None, *, runs_dir: str = "runs", weights: str = "best") -> Run:
    """The run in folder ``run`` (or the newest in ``run``, a folder of runs), or the newest
    one under ``runs_dir``."""
    return Run(resolve_run(str(run) if run else None, runs_dir), weights=weights)
