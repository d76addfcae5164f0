"""The training loop, one for every :class:`~charlm.models.lm.LanguageModel`.

Each step is one call of the compiled step (:mod:`charlm.training.step`): mean cross-entropy,
gradients clipped by global norm, one optimizer update. With the consecutive sampler the final
hidden state of batch b is the initial state of batch b + 1 (a tensor passed in, so no gradient
crosses the boundary), reset at each epoch; with the random sampler every batch starts from
zeros. Perplexity = exp(mean cross-entropy).

The loop is here; each job around it has its own module: the resumable state in one
``tf.train.Checkpoint`` (:mod:`~charlm.training.checkpoint`), so that a resumed run continues
exactly where it stopped; the roll-back on a loss that is not finite
(:mod:`~charlm.training.rollback`); the metrics rows, validation and periodic samples
(:mod:`~charlm.training.report`); the progress bar and Ctrl-C (:mod:`~charlm.training.console`);
the time budget and learning-rate schedule (:mod:`~charlm.training.clock`).

The trainer is given everything from above: the model, the sampler, the run folder it saves
into (anything with the methods of :class:`~charlm.runs.rundir.RunDir` it calls), a ``score``
function for validation and a ``generate`` function for the periodic samples. Code that
wants to watch the loop (TensorBoard, tests, benchmarks) passes :class:`Callback`\\ s.
Example::

    trainer = Trainer(cfg, model, sampler, val_ids, rundir, score=scorer, callbacks=[...])
    last_row = trainer.fit(resume=False)
"""

from __future__ import annotations

import collections
import math
import statistics
import time

import numpy as np

from ..say import format_seconds
from ..text.samplers import dataset
from .checkpoint import TrainState
from .clock import Clock, learning_rate, validation_seconds
from .console import Console
from .report import LossMeter, describe_row, metrics_row, periodic_samples, validate
from .rollback import NanGuard
from .step import make_optimizer, step_for

DEFAULT_EPOCHS = 10  # when no --epochs, --steps or --time-budget is given
ETA_AFTER_STEPS = 10  # timed steps after which a run with a step limit says how long it takes


class TrainingInterrupted(Exception):
    """Raised after SIGINT/SIGTERM once the checkpoint is safely written."""

    def __init__(self, step: int, run_path, signum: int):
        super().__init__(
            f"interrupted at step {step}; checkpoint saved. "
            f"Resume with: charlm train --resume {run_path}"
        )
        self.step, self.run_path, self.signum = step, run_path, signum


class Callback:
    """Hooks the trainer calls; override the ones you need. ``trainer.step`` is the number of
    optimizer steps done so far, ``trainer.model`` the model being trained."""

    def on_train_begin(self, trainer) -> None:
        """Before the first step (of this process: also after a resume)."""

    def on_batch_begin(self, trainer, x, y, state) -> None:
        """Before a step, with its inputs, targets and initial state."""

    def on_batch_end(self, trainer, loss: float, grad_norm: float, state) -> None:
        """After a step whose loss was finite, with the state it ended in."""

    def on_evaluate(self, trainer, row: dict) -> None:
        """After each validation, with its metrics row (the columns of metrics.csv)."""

    def on_samples(self, trainer, texts: list[str], when: str) -> None:
        """After the periodic samples were generated."""

    def on_save(self, trainer, what: str) -> None:
        """After ``what`` ("best" weights, or a resumable "checkpoint") was written."""

    def on_train_end(self, trainer, row: dict) -> None:
        """After the last step and the last save."""


class Trainer:
    """Trains ``model`` on ``sampler``'s batches, saving into ``rundir``, against ``clock``
    (the run's :class:`~charlm.training.clock.Clock`, which holds its budget; made from
    ``cfg`` and now when not given); with a ``tf.distribute`` ``strategy`` (under whose scope
    the model and the trainer are built), each step runs over its replicas
    (:mod:`charlm.training.distribute`)."""

    def __init__(
        self,
        cfg,
        model,
        sampler,
        val_ids: np.ndarray,
        rundir,
        *,
        score=None,
        generate=None,
        callbacks=(),
        log=print,
        progress: bool | None = None,
        clock: Clock | None = None,
        strategy=None,
    ):
        self.cfg, self.model, self.sampler, self.rundir = cfg, model, sampler, rundir
        self.val_ids, self.score, self.generate = val_ids, score, generate
        self.callbacks, self.log = list(callbacks), log
        self.variables = list(model.trainable_variables)
        self.optimizer = make_optimizer(cfg.optimizer, cfg.lr)
        self.optimizer.build(self.variables)
        self.ids = sampler.ids  # numpy, memory-mapped: batches are gathered, never copied whole
        self.train_state = TrainState(model, self.optimizer, cfg.batch_size)
        self._train_step = self._compiled_step(strategy)
        self.step = self.epoch = self.batch = 0
        self.meter = LossMeter(cfg.batch_size * cfg.seq_len)
        self.last_row: dict = {}
        self._saved_step: int | None = None
        self._restored: int | None = None  # the step restore() read, once it has run
        self.nan_guard = NanGuard(self.train_state, rundir, log)
        # the launch's clock, which the budget recipe read too: it counts from the launch, so
        # that start-up, the final validation and the final save all fit in the budget
        self.clock = clock if clock is not None else Clock(cfg.time_budget_seconds)
        self.console = Console(log, progress, self.clock.budget_left if cfg.time_budget else None)
        # the last steps' seconds, this process's first (which traces the graph) left out
        self._step_seconds: collections.deque[float] = collections.deque(maxlen=15)
        self._traced = False

    def _compiled_step(self, strategy):
        """The training step on one device, or over ``strategy``'s replicas (built under its
        scope by the caller, like the model)."""
        cfg = self.cfg
        if strategy is None:
            return step_for(cfg, self.model, self.optimizer)
        from .distribute import distributed_train_step

        return distributed_train_step(
            strategy, self.model, self.optimizer, cfg, not self.sampler.carries_state
        )

    # -- schedule and limits -----------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds of training, resumed runs included."""
        return self.clock.elapsed()

    @property
    def max_epochs(self) -> int:
        cfg = self.cfg
        return cfg.epochs or (0 if (cfg.steps or cfg.time_budget) else DEFAULT_EPOCHS)

    @property
    def total_steps(self) -> int | None:
        """The planned number of steps, when a step or epoch limit fixes it."""
        per_epoch = self.sampler.min_batches()
        limits = [n for n in (self.cfg.steps, self.max_epochs * per_epoch) if n]
        return min(limits) if limits else None

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step + 1``: the schedule (charlm.training.clock) at the
        run's progress by steps and clock, times the roll-backs' scale."""
        cfg = self.cfg
        lr = learning_rate(
            self.clock.progress(step, self.total_steps),
            step,
            cfg.lr,
            cfg.lr_schedule,
            cfg.warmup_steps,
            cfg.min_lr_fraction,
        )
        return lr * self.train_state.lr_scale()

    def finished(self) -> bool:
        """A limit is reached. A time budget stops when one more step would leave less than
        what the final validation and save will take and the exit (Clock.reserve)."""
        cfg = self.cfg
        return bool(
            (cfg.steps and self.step >= cfg.steps)
            or (self.max_epochs and self.epoch >= self.max_epochs)
            or self.clock.spent(self._first_validation(), self.step_seconds())
        )

    def step_seconds(self) -> float:
        """A step's seconds: the median of the last ones (0 before a step past the first,
        whose time is mostly tracing)."""
        return statistics.median(self._step_seconds) if self._step_seconds else 0.0

    def _first_validation(self) -> float:
        """Seconds the first validation will take, at the speed of the last steps (0 when
        there is nothing to validate or no speed yet); later ones take as long as the last."""
        if self.score is None or not self._step_seconds:
            return 0.0
        chars = len(self.val_ids) if not self.cfg.eval_chars else self.cfg.eval_chars
        rate = self.cfg.batch_size * self.cfg.seq_len / max(1e-9, self.step_seconds())
        return validation_seconds(chars, rate, first=True)

    # -- the loop ----------------------------------------------------------------------------

    def fit(self, resume: bool = False) -> dict:
        """Train until a limit is reached; returns the last metrics row."""
        self._start(resume)
        if resume and self.finished():
            return self._already_finished()
        with self.console.session(self.total_steps or self.clock.planned_steps, self.step):
            self._notify("on_train_begin")
            while not self.finished():
                self._run_epoch()
            if self.last_row.get("step") != self.step:
                self._evaluate()
            self._save()
            if self.cfg.time_budget:
                self.log(self.clock.account(self.step))
            self._notify("on_train_end", self.last_row)
        return self.last_row

    def restore(self) -> int:
        """Read the run's newest readable checkpoint into the model and optimizer (what
        ``fit(resume=True)`` starts from): its step, or -1 if it has none. A resume calls it
        before it writes anything to the run, since no readable checkpoint is its last
        refusal; ``fit`` calls it if nobody has."""
        if self._restored is None:
            self._restored = self.train_state.restore(self.rundir, self.log)
        return self._restored

    def _start(self, resume: bool) -> None:
        """Restore the newest checkpoint (``resume``) or save step 0, and read the counters."""
        restored = self.restore() if resume else -1
        if restored >= 0:
            self.rundir.truncate_metrics(restored)
            self.log(
                f"resuming {self.rundir.path} at step {restored} "
                f"(epoch {self.train_state.position()[1] + 1})"
            )
        else:  # a new run, or one stopped before its first checkpoint: step 0 is the seed's
            if resume:
                self.log(
                    f"{self.rundir.path} stopped before its first checkpoint; starting at step 0"
                )
                self.rundir.truncate_metrics(0)
            self._save()  # a good state to roll back to, and weights to sample from
        self._read_counters()

    def _already_finished(self) -> dict:
        self.log(
            f"{self.rundir.path} already reached its limit at step {self.step}; to train "
            "further, pass a larger --steps, --epochs or --time-budget with --resume"
        )
        rows = self.rundir.read_metrics()
        return rows[-1] if rows else {}

    def _run_epoch(self) -> None:
        """Train on the rest of the current epoch's batches, or until a limit or a roll-back."""
        plan = self.sampler.plan(self.epoch, self.cfg.seed)
        if self.batch == 0:
            self.train_state.reset_carry()
        for x, y in dataset(self.ids, plan, self.cfg.seq_len, skip=self.batch):
            if not self._train_batch(x, y):
                return  # rolled back: the counters now point into an earlier epoch
            if self._after_step():
                return
        if self.batch >= len(plan):
            self._end_epoch()

    def _train_batch(self, x, y) -> bool:
        """One optimizer step; False if its loss was not finite and the run rolled back."""
        t0 = time.monotonic()
        self.optimizer.learning_rate.assign(self.lr_at(self.step))
        state = self.train_state.initial_state(self.sampler.carries_state)
        self._notify("on_batch_begin", x, y, state)
        loss, norm, new_state = self._train_step(x, y, state)
        loss, norm = float(loss), float(norm)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            self._roll_back(loss)
            return False
        if self.sampler.carries_state:
            self.train_state.keep_carry(new_state)
        self.step += 1
        self.batch += 1
        self.meter.add(loss, norm)
        self.console.show(self.step, loss, self.meter)
        self._notify("on_batch_end", loss, norm, new_state)
        if self._traced:
            self._step_seconds.append(time.monotonic() - t0)
            if len(self._step_seconds) == ETA_AFTER_STEPS:
                self._say_eta()
        self._traced = True
        self.clock.record("step", since=t0)
        return True

    def _say_eta(self) -> None:
        """Once, early: the steps planned and about how long they take at this pace (a run
        with no budget; a budget says its own end)."""
        total = self.total_steps
        if total is None or self.cfg.time_budget:
            return
        seconds = (total - self.step) * self.step_seconds()
        self.console.say(
            f"eta: {total:,} steps planned, {total - self.step:,} to go: about "
            f"{format_seconds(seconds)} at {self.step_seconds() * 1e3:,.0f} ms a step, "
            "validation and saving not counted (--time-budget sets an end instead)"
        )

    def _after_step(self) -> bool:
        """Validate, save and sample when due; True when training must stop now."""
        cfg, step = self.cfg, self.step
        stop = self.finished() or bool(self.console.interrupted)
        eval_due = bool(cfg.eval_every and step % cfg.eval_every == 0) or stop
        save_due = stop or (step % cfg.checkpoint_every == 0 if cfg.checkpoint_every else eval_due)
        if eval_due:
            self._evaluate()
        if save_due:
            self._save()
        if cfg.sample_every and step % cfg.sample_every == 0:
            self._sample(f"step {step}")
        if self.console.interrupted:
            raise TrainingInterrupted(step, self.rundir.path, self.console.interrupted)
        return stop

    def _end_epoch(self) -> None:
        cfg = self.cfg
        self.epoch += 1
        self.batch = 0
        last_epoch = bool(self.max_epochs and self.epoch >= self.max_epochs)
        if (cfg.eval_every_epochs and self.epoch % cfg.eval_every_epochs == 0) or last_epoch:
            if self.last_row.get("step") != self.step:
                self._evaluate()
            if not cfg.checkpoint_every or last_epoch:
                self._save()
        if cfg.sample_every_epochs and self.epoch % cfg.sample_every_epochs == 0:
            self._sample(f"epoch {self.epoch}")

    # -- the steps between optimizer steps ---------------------------------------------------

    def _evaluate(self) -> dict:
        """Validate, append a metrics row, keep the best weights, and print the row."""
        t0 = time.monotonic()
        val = validate(self.score, self.val_ids, self.cfg)
        row = metrics_row(
            self.step, self.epoch, self.meter, val, self.lr_at(self.step), self.elapsed()
        )
        self.rundir.append_metrics(row)
        self._notify("on_evaluate", row)
        self._keep_best(row)
        self.console.say(describe_row(row))
        self.meter.reset()
        self.last_row = row
        self.clock.record("evaluate", since=t0)
        return row

    def _keep_best(self, row: dict) -> None:
        """Save the weights as "best" when this row's val loss (else train loss) is the lowest."""
        score = row["val_loss"] if row["val_loss"] is not None else row["train_loss"]
        if self.train_state.beats_best(score):
            self.rundir.save_weights(self.model, "best")
            self._notify("on_save", "best")

    def _save(self) -> None:
        """Save the last weights and a resumable checkpoint (once per step)."""
        if self._saved_step == self.step:
            return
        t0 = time.monotonic()
        self.train_state.save(
            self.rundir, self.model, (self.step, self.epoch, self.batch), self.elapsed()
        )
        self._saved_step = self.step
        self.nan_guard.reset()
        self.clock.record("save", since=t0)
        self._notify("on_save", "checkpoint")

    def _sample(self, when: str) -> None:
        if self.generate is None:
            return
        texts = periodic_samples(self.generate, self.cfg)
        for text in texts:
            self.console.say(f"[{when}] {text}")
        self._notify("on_samples", texts, when)

    def _roll_back(self, loss: float) -> None:
        """Go back to the last checkpoint with half the learning rate (or give up)."""
        self.nan_guard.roll_back(loss, self.step, self.cfg.lr)
        self._read_counters(keep_clock=True)

    def _read_counters(self, keep_clock: bool = False) -> None:
        self.step, self.epoch, self.batch = self.train_state.position()
        if not keep_clock:  # the saved time (step 0's save holds the start-up), then now on
            self.clock.restart(self.train_state.elapsed())
        self.console.move_to(self.step)

    def _notify(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)
