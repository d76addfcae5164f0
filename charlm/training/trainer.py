"""The training loop, one for every :class:`~charlm.models.lm.LanguageModel`.

Each step is one ``tf.function`` call::

    with tf.GradientTape() as tape:
        logits, state = model(x, state, training=True)
        loss = mean cross-entropy(y, logits)          # nats per character
    g = tape.gradient(loss, θ)
    g ← min(1, clip_norm / ‖g‖) · g                    # global-norm clipping (charlm.training.clipping)
    optimizer.apply_gradients(g, θ)

With the consecutive sampler the final hidden state of batch b is the initial state of
batch b + 1 (a tensor passed in, so no gradient crosses the boundary), reset at each epoch;
with the random sampler every batch starts from zeros. Perplexity = exp(mean cross-entropy).

Everything that decides what happens next — weights, optimizer slots, step/epoch/batch
counters, the learning-rate scale, the carried state, the random generators — lives in one
``tf.train.Checkpoint``, and the sampler's plan for epoch e depends only on (seed, e), so a
resumed run continues exactly where it stopped. A loss that is not finite rolls the run back
to its last checkpoint and halves the learning rate; the third failure in a row stops it.

The trainer is given everything from above: the model, the sampler, the run folder it saves
into (anything with the methods of :class:`~charlm.runs.rundir.RunDir` it calls), a ``score``
function for validation and a ``generate`` function for the periodic samples. Code that
wants to watch the loop (TensorBoard, tests, benchmarks) passes :class:`Callback`\\ s.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from ..errors import CharLMError
from ..text.samplers import dataset
from ..training.clipping import clip_by_global_norm
from ..training.clock import Clock, learning_rate, validation_seconds

MAX_NAN_RETRIES = 3  # rollbacks in a row (each halving the learning rate) before giving up
NAN_LR_FACTOR = 0.5
DEFAULT_EPOCHS = 10  # when no --epochs, --steps or --time-budget is given


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


class LossMeter:
    """The mean training loss and gradient norm, and the speed, since the last metrics row."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.loss, self.norm, self.steps, self.since = 0.0, 0.0, 0, time.monotonic()

    def add(self, loss: float, norm: float) -> None:
        self.loss += loss
        self.norm += norm
        self.steps += 1

    def mean_loss(self) -> float:
        return self.loss / self.steps if self.steps else float("nan")

    def mean_norm(self) -> float | None:
        return self.norm / self.steps if self.steps else None

    def steps_per_sec(self) -> float:
        return self.steps / max(1e-9, time.monotonic() - self.since)


def make_train_step(model, optimizer, clip_norm: float):
    """The compiled training step ``(x, y, state) -> (loss, grad_norm, new_state)``: mean
    cross-entropy, gradients clipped to global norm ``clip_norm`` (0 = off), one update."""
    variables = list(model.trainable_variables)

    def step(x, y, state):
        with tf.GradientTape() as tape:
            logits, new_state = model(x, state, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
        grads = tape.gradient(loss, variables)
        grads, norm = clip_by_global_norm(grads, clip_norm)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, norm, new_state

    return tf.function(step)


def make_optimizer(name: str, lr: float) -> keras.optimizers.Optimizer:
    """A Keras optimizer by its lower-case name (config.CHOICES["optimizer"] lists them)."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": lr}})


class Trainer:
    """Trains ``model`` on ``sampler``'s batches, saving into ``rundir``; with a
    ``tf.distribute`` ``strategy`` (under whose scope the model and the trainer are built), each
    step runs over its replicas (:mod:`charlm.training.distribute`)."""

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
        started: float | None = None,
        strategy=None,
    ):
        self.cfg, self.model, self.sampler, self.rundir = cfg, model, sampler, rundir
        self.val_ids, self.score, self.generate = val_ids, score, generate
        self.callbacks = list(callbacks)
        self.log, self.progress = log, progress
        self.variables = list(model.trainable_variables)
        self.optimizer = make_optimizer(cfg.optimizer, cfg.lr)
        self.optimizer.build(self.variables)
        self.ids = (
            sampler.ids
        )  # numpy, memory-mapped: batches are gathered from it, never copied whole
        self.zero_state = model.initial_state(cfg.batch_size)
        self.carry = [tf.Variable(s, trainable=False) for s in self.zero_state]
        self.counters = {  # every number the loop's future depends on, checkpointed
            "step": tf.Variable(0, dtype=tf.int64),
            "epoch": tf.Variable(0, dtype=tf.int64),
            "batch": tf.Variable(0, dtype=tf.int64),
            "lr_scale": tf.Variable(1.0, dtype=tf.float64),
            "elapsed": tf.Variable(0.0, dtype=tf.float64),
            "best": tf.Variable(math.inf, dtype=tf.float64),
        }
        self.checkpoint = tf.train.Checkpoint(
            optimizer=self.optimizer,
            carry=self.carry,
            **model.checkpoint_objects(),
            **self.counters,
        )
        if strategy is None:
            self._train_step = make_train_step(model, self.optimizer, cfg.clip_norm)
        else:  # built under strategy.scope() by the caller, like the model
            from ..training.distribute import distributed_train_step

            self._train_step = distributed_train_step(
                strategy, model, self.optimizer, cfg.clip_norm, cfg.batch_size
            )
        self.step = self.epoch = self.batch = 0
        self.meter = LossMeter()
        self.last_row: dict = {}
        self._interrupted = 0
        self._saved_step: int | None = None
        self._nan_failures = 0
        # the time budget counts from ``started`` (time.monotonic() of the launch), so that
        # start-up, the final validation and the final save all fit in it
        self.clock = Clock(cfg.time_budget_seconds, started)
        self._bar = None

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
        return lr * float(self.counters["lr_scale"].numpy())

    def finished(self) -> bool:
        """A limit is reached. A time budget keeps back what the final validation and save
        will take and the exit (Clock.reserve), so the run ends within it."""
        cfg = self.cfg
        return bool(
            (cfg.steps and self.step >= cfg.steps)
            or (self.max_epochs and self.epoch >= self.max_epochs)
            or self.clock.spent(self._first_validation())
        )

    def _first_validation(self) -> float:
        """Seconds the first validation will take, at the speed trained so far (0 when there
        is nothing to validate or no speed yet); later ones take as long as the last."""
        if self.score is None or not self.meter.steps:
            return 0.0
        chars = len(self.val_ids) if not self.cfg.eval_chars else self.cfg.eval_chars
        rate = self.cfg.batch_size * self.cfg.seq_len * self.meter.steps_per_sec()
        return validation_seconds(chars, rate, first=True)

    # -- the loop ----------------------------------------------------------------------------

    def fit(self, resume: bool = False) -> dict:
        """Train until a limit is reached; returns the last metrics row."""
        self._start(resume)
        if resume and self.finished():
            return self._already_finished()
        with self._session():
            while not self.finished():
                self._run_epoch()
            if self.last_row.get("step") != self.step:
                self._evaluate()
            self._save()
            self._notify("on_train_end", self.last_row)
        return self.last_row

    def _start(self, resume: bool) -> None:
        """Restore the newest checkpoint (``resume``) or save step 0, and read the counters."""
        restored = self.rundir.restore_checkpoint(self.checkpoint, warn=self.log) if resume else -1
        if restored >= 0:
            self.rundir.truncate_metrics(restored)
            self.log(
                f"resuming {self.rundir.path} at step {restored} "
                f"(epoch {int(self.counters['epoch'].numpy()) + 1})"
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
            for v, z in zip(self.carry, self.zero_state, strict=True):
                v.assign(z)
        for x, y in dataset(self.ids, plan, self.cfg.seq_len, skip=self.batch):
            if not self._train_batch(x, y):
                return  # rolled back: the counters now point into an earlier epoch
            if self._after_step():
                return
        if self.batch >= len(plan):
            self._end_epoch()

    def _train_batch(self, x, y) -> bool:
        """One optimizer step; False if its loss was not finite and the run rolled back."""
        self.optimizer.learning_rate.assign(self.lr_at(self.step))
        state = self.carry if self.sampler.carries_state else self.zero_state
        self._notify("on_batch_begin", x, y, state)
        loss, norm, new_state = self._train_step(x, y, state)
        loss, norm = float(loss), float(norm)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            self._roll_back(loss)
            return False
        if self.sampler.carries_state:
            for v, s in zip(self.carry, new_state, strict=True):
                v.assign(s)
        self.step += 1
        self.batch += 1
        self.meter.add(loss, norm)
        self._show_progress(loss)
        self._notify("on_batch_end", loss, norm, new_state)
        return True

    def _after_step(self) -> bool:
        """Validate, save and sample when due; True when training must stop now."""
        cfg, step = self.cfg, self.step
        stop = self.finished() or bool(self._interrupted)
        eval_due = bool(cfg.eval_every and step % cfg.eval_every == 0) or stop
        save_due = stop or (step % cfg.checkpoint_every == 0 if cfg.checkpoint_every else eval_due)
        if eval_due:
            self._evaluate()
        if save_due:
            self._save()
        if cfg.sample_every and step % cfg.sample_every == 0:
            self._sample(f"step {step}")
        if self._interrupted:
            raise TrainingInterrupted(step, self.rundir.path, self._interrupted)
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

    def _validate(self) -> dict | None:
        if self.score is None or len(self.val_ids) < 2:
            return None
        ids = self.val_ids[: self.cfg.eval_chars + 1] if self.cfg.eval_chars else self.val_ids
        return self.score(ids, batch_size=64, seq_len=min(256, max(self.cfg.seq_len, 64)))

    def _evaluate(self) -> dict:
        """Validate, append a metrics row, keep the best weights, and print the row."""
        t0 = time.monotonic()
        val, meter = self._validate(), self.meter
        train_loss = meter.mean_loss()
        row = {
            "step": self.step,
            "epoch": self.epoch,
            "train_loss": train_loss,
            "train_perplexity": math.exp(min(train_loss, 700)) if meter.steps else float("nan"),
            "val_loss": val["nats_per_char"] if val else None,
            "val_perplexity": val["perplexity"] if val else None,
            "val_bits_per_char": val["bits_per_char"] if val else None,
            "chars_per_sec": self.cfg.batch_size * self.cfg.seq_len * meter.steps_per_sec(),
            "lr": self.lr_at(self.step),
            "grad_norm": meter.mean_norm(),
            "wall_time": self.elapsed(),
        }
        self.rundir.append_metrics(row)
        self._notify("on_evaluate", row)
        self._keep_best(row)
        self._say(describe_row(row))
        meter.reset()
        self.last_row = row
        self.clock.record("evaluate", since=t0)
        return row

    def _keep_best(self, row: dict) -> None:
        """Save the weights as "best" when this row's val loss (else train loss) is the lowest."""
        score = row["val_loss"] if row["val_loss"] is not None else row["train_loss"]
        if math.isfinite(score) and score < float(self.counters["best"].numpy()):
            self.counters["best"].assign(score)
            self.rundir.save_weights(self.model, "best")
            self._notify("on_save", "best")

    def _save(self) -> None:
        """Save the last weights and a resumable checkpoint (once per step)."""
        if self._saved_step == self.step:
            return
        t0 = time.monotonic()
        for name in ("step", "epoch", "batch"):
            self.counters[name].assign(getattr(self, name))
        self.counters["elapsed"].assign(self.elapsed())
        self.rundir.save_weights(self.model, "last")
        self.rundir.save_checkpoint(self.checkpoint, self.step)
        self._saved_step = self.step
        self._nan_failures = 0
        self.clock.record("save", since=t0)
        self._notify("on_save", "checkpoint")

    def _sample(self, when: str) -> None:
        if self.generate is None:
            return
        cfg = self.cfg
        options = cfg.sample_options  # a temperature of 0 is greedy there, as everywhere
        texts = self.generate(
            cfg.sample_prefixes or None, options=options, chunk=max(1, options.length)
        )
        for text in texts:
            self._say(f"[{when}] {text}")
        self._notify("on_samples", texts, when)

    def _roll_back(self, loss: float) -> None:
        """Go back to the last checkpoint with half the learning rate (or give up)."""
        self._nan_failures += 1
        if self._nan_failures > MAX_NAN_RETRIES:
            raise CharLMError(
                f"training diverged: the loss was {loss} at step {self.step + 1} even after "
                f"{MAX_NAN_RETRIES} roll-backs that each halved the learning rate; "
                "lower --lr or --clip-norm and resume or restart"
            )
        scale = float(self.counters["lr_scale"].numpy()) * NAN_LR_FACTOR
        restored = self.rundir.restore_checkpoint(self.checkpoint, warn=self.log)
        self.counters["lr_scale"].assign(scale)
        self.log(
            f"warning: the loss was {loss} at step {self.step + 1}; rolled back to the "
            f"checkpoint at step {restored} and halved the learning rate "
            f"(base lr now {self.cfg.lr * scale:.3g})"
        )
        self._read_counters(keep_clock=True)

    def _read_counters(self, keep_clock: bool = False) -> None:
        self.step, self.epoch, self.batch = (
            int(self.counters[k].numpy()) for k in ("step", "epoch", "batch")
        )
        if not keep_clock:  # the saved time (step 0's save holds the start-up), then now on
            self.clock.restart(float(self.counters["elapsed"].numpy()))
        if self._bar is not None:
            self._bar.n = self.step

    # -- progress and signals ----------------------------------------------------------------

    def _show_progress(self, loss: float) -> None:
        self._bar.update(1)
        if self.step % 10 == 0 or self.step == 1:
            rate = self.cfg.batch_size * self.cfg.seq_len * self.meter.steps_per_sec()
            self._bar.set_postfix(
                loss=f"{loss:.3f}",
                ppl=f"{math.exp(min(loss, 50)):.2f}",
                chars_s=f"{rate:,.0f}",
                refresh=False,
            )

    def _say(self, line: str) -> None:
        """A line of the training log: above the progress bar while it shows, else to log."""
        if self._bar is not None and not self._bar.disable:
            tqdm.write(line, file=sys.stderr)
        else:
            self.log(line)

    def _notify(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    @contextlib.contextmanager
    def _session(self):
        """The progress bar, the signal handlers and the callbacks, around the loop."""
        self._bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
            disable=None if self.progress is None else not self.progress,
        )
        handlers = self._install_signal_handlers()
        try:
            self._notify("on_train_begin")
            yield
        finally:
            self._bar.close()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def _install_signal_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self._interrupted:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self._interrupted = signum
            self.log("\nstopping: saving a checkpoint (press Ctrl-C again to quit at once)")

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def describe_row(row: dict) -> str:
    """One line for a metrics row: step, epoch, losses, perplexity, speed."""
    parts = [
        f"step {row['step']}",
        f"epoch {row['epoch']}",
        f"train loss {row['train_loss']:.4f}",
        f"perplexity {row['train_perplexity']:.3f}",
    ]
    if row["val_loss"] is not None:
        parts.append(f"val loss {row['val_loss']:.4f} ({row['val_bits_per_char']:.3f} bits/char)")
    parts.append(f"{row['chars_per_sec']:,.0f} chars/s")
    return " | ".join(parts)
