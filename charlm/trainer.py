"""The training loop, one for Keras and scratch models alike.

Each step is one ``tf.function`` call::

    with tf.GradientTape() as tape:
        logits, state = model(x, state, training=True)
        loss = mean cross-entropy(y, logits)          # nats per character
    g = tape.gradient(loss, θ)
    g ← min(1, clip_norm / ‖g‖) · g                    # global-norm clipping (charlm.clipping)
    optimizer.apply_gradients(g, θ)

With the consecutive sampler the final hidden state of batch b is the initial state of
batch b + 1 (a tensor passed in, so no gradient crosses the boundary), reset at each epoch;
with the random sampler every batch starts from zeros. Perplexity = exp(mean cross-entropy).

Everything that decides what happens next — weights, optimizer slots, step/epoch/batch
counters, the learning-rate scale, the carried state, the random generators — lives in one
``tf.train.Checkpoint``, and the sampler's plan for epoch e depends only on (seed, e), so a
resumed run continues exactly where it stopped. A loss that is not finite rolls the run back
to its last checkpoint and halves the learning rate; the third failure in a row stops it.
"""

from __future__ import annotations

import math
import signal
import sys
import time

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from .clipping import clip_by_global_norm
from .errors import CharLMError
from .evaluate import Scorer
from .generate import Generator
from .models import build_model
from .samplers import dataset

MAX_NAN_RETRIES = 3  # rollbacks in a row (each halving the learning rate) before giving up
NAN_LR_FACTOR = 0.5
DEFAULT_EPOCHS = 10  # when no --epochs, --steps or --time-budget is given


class TrainingInterrupted(Exception):
    """Raised after SIGINT/SIGTERM once the checkpoint is safely written."""

    def __init__(self, step: int, run_path, signum: int):
        super().__init__(f"interrupted at step {step}; checkpoint saved. "
                         f"Resume with: charlm train --resume {run_path}")
        self.step, self.run_path, self.signum = step, run_path, signum


def make_optimizer(name: str, lr: float):
    import keras

    return {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
            "rmsprop": keras.optimizers.RMSprop}[name](learning_rate=lr)


class Trainer:
    """Trains ``cfg``'s model on ``sampler``'s batches, writing into ``run`` (a RunDir)."""

    def __init__(self, cfg, run, vocab, sampler, val_ids: np.ndarray, log=print,
                 progress: bool | None = None):
        self.cfg, self.run, self.vocab, self.sampler = cfg, run, vocab, sampler
        self.val_ids = val_ids
        self.log = log
        self.progress = progress
        self.model = build_model(cfg, len(vocab))
        self.variables = list(self.model.trainable_variables)
        self.optimizer = make_optimizer(cfg.optimizer, cfg.lr)
        self.optimizer.build(self.variables)
        self.ids = tf.constant(sampler.ids)
        self.zero_state = self.model.initial_state(cfg.batch_size)
        self.carry = [tf.Variable(s, trainable=False) for s in self.zero_state]
        self.counters = {  # every number the loop's future depends on, checkpointed
            "step": tf.Variable(0, dtype=tf.int64), "epoch": tf.Variable(0, dtype=tf.int64),
            "batch": tf.Variable(0, dtype=tf.int64),
            "lr_scale": tf.Variable(1.0, dtype=tf.float64),
            "elapsed": tf.Variable(0.0, dtype=tf.float64),
            "best": tf.Variable(math.inf, dtype=tf.float64),
        }
        objects = (self.model.checkpoint_objects() if hasattr(self.model, "checkpoint_objects")
                   else {"model": self.model})
        self.checkpoint = tf.train.Checkpoint(optimizer=self.optimizer, carry=self.carry,
                                              **objects, **self.counters)
        self._train_step = tf.function(self._train_step_impl)
        self.scorer = Scorer(self.model)
        self.generator = Generator(self.model, vocab)
        self._writer = None  # TensorBoard events, opened at the first metrics row
        self._interrupted = 0
        self._saved_step: int | None = None

    # -- one step ----------------------------------------------------------------------------------

    def _train_step_impl(self, x, y, state):
        with tf.GradientTape() as tape:
            logits, new_state = self.model(x, state, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        grads = tape.gradient(loss, self.variables)
        grads, norm = clip_by_global_norm(grads, self.cfg.clip_norm)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return loss, norm, new_state

    # -- schedule and limits ---------------------------------------------------------------------------

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

    def lr_at(self, step: int, elapsed: float) -> float:
        cfg = self.cfg
        lr = cfg.lr * float(self.counters["lr_scale"].numpy())
        if cfg.warmup_steps and step < cfg.warmup_steps:
            lr *= (step + 1) / cfg.warmup_steps
        if cfg.lr_schedule == "cosine":
            total, budget = self.total_steps, cfg.time_budget_seconds
            progress = step / total if total else 0.0
            if budget:
                progress = max(progress, elapsed / budget)
            progress = min(1.0, progress)
            f = cfg.min_lr_fraction
            lr *= f + (1 - f) * 0.5 * (1 + math.cos(math.pi * progress))
        return lr

    # -- the loop ------------------------------------------------------------------------------------

    def fit(self, resume: bool = False) -> dict:
        """Train until a limit is reached; returns the last metrics row."""
        cfg, run = self.cfg, self.run
        restored = run.restore_checkpoint(self.checkpoint, warn=self.log) if resume else -1
        if restored >= 0:
            run.truncate_metrics(restored)
            self.log(f"resuming {run.path} at step {restored} "
                     f"(epoch {int(self.counters['epoch'].numpy()) + 1})")
        else:  # a new run, or one stopped before its first checkpoint: step 0 is the seed's
            if resume:
                self.log(f"{run.path} stopped before its first checkpoint; starting at step 0")
                run.truncate_metrics(0)
            self._save(0)  # a good state to roll back to, and weights to sample from
        step = int(self.counters["step"].numpy())
        epoch = int(self.counters["epoch"].numpy())
        batch = int(self.counters["batch"].numpy())
        elapsed0 = float(self.counters["elapsed"].numpy())
        budget = cfg.time_budget_seconds
        t0 = time.monotonic()
        chars_per_step = cfg.batch_size * cfg.seq_len
        window = {"loss": 0.0, "norm": 0.0, "n": 0, "t": t0}
        nan_failures = 0
        last_row = {}

        def elapsed() -> float:
            return elapsed0 + time.monotonic() - t0

        def sync_counters():
            for k, v in (("step", step), ("epoch", epoch), ("batch", batch)):
                self.counters[k].assign(v)
            self.counters["elapsed"].assign(elapsed())

        def out_of_time() -> bool:
            return bool(budget) and elapsed() >= budget

        def finished() -> bool:
            return bool((cfg.steps and step >= cfg.steps) or
                        (self.max_epochs and epoch >= self.max_epochs) or out_of_time())

        if resume and finished():
            self.log(f"{run.path} already reached its limit at step {step}; to train further, "
                     "pass a larger --steps, --epochs or --time-budget with --resume")
            rows = run.read_metrics()
            return rows[-1] if rows else {}
        old_handlers = self._install_signal_handlers()
        bar = tqdm(total=self.total_steps, initial=step, unit="step", dynamic_ncols=True,
                   disable=(not self.progress) if self.progress is not None else None,
                   file=sys.stderr)
        try:
            while not finished():
                plan = self.sampler.plan(epoch, cfg.seed)
                if batch == 0:
                    for v, z in zip(self.carry, self.zero_state):
                        v.assign(z)
                rolled_back = False
                for x, y in dataset(self.ids, plan, cfg.seq_len, skip=batch):
                    self.optimizer.learning_rate.assign(self.lr_at(step, elapsed()))
                    state = self.carry if self.sampler.carries_state else self.zero_state
                    loss, norm, new_state = self._train_step(x, y, state)
                    loss, norm = float(loss), float(norm)
                    if not (math.isfinite(loss) and math.isfinite(norm)):
                        nan_failures += 1
                        step, epoch, batch = self._roll_back(step, loss, nan_failures)
                        bar.n = step
                        rolled_back = True
                        break
                    if self.sampler.carries_state:
                        for v, s in zip(self.carry, new_state):
                            v.assign(s)
                    step += 1
                    batch += 1
                    window["loss"] += loss
                    window["norm"] += norm
                    window["n"] += 1
                    bar.update(1)
                    if step % 10 == 0 or step == 1:
                        rate = chars_per_step * window["n"] / max(1e-9, time.monotonic() - window["t"])
                        bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{math.exp(min(loss, 50)):.2f}",
                                        chars_s=f"{rate:,.0f}", refresh=False)
                    stop = finished() or self._interrupted
                    log_due = (cfg.eval_every and step % cfg.eval_every == 0) or stop
                    save_due = stop or (step % cfg.checkpoint_every == 0 if cfg.checkpoint_every
                                        else log_due)
                    if log_due or save_due:
                        sync_counters()
                    if log_due:
                        last_row = self._log_row(step, epoch, window, elapsed())
                    if save_due:
                        self._save(step)
                        nan_failures = 0
                    if cfg.sample_every and step % cfg.sample_every == 0:
                        self._print_samples(step, bar)
                    if self._interrupted:
                        raise TrainingInterrupted(step, run.path, self._interrupted)
                    if stop:
                        break
                if rolled_back:
                    continue
                if batch >= len(plan):  # the epoch is complete
                    epoch += 1
                    batch = 0
                    last_epoch = bool(self.max_epochs and epoch >= self.max_epochs)
                    if (cfg.eval_every_epochs and epoch % cfg.eval_every_epochs == 0) or last_epoch:
                        sync_counters()
                        if not last_row or int(last_row["step"]) != step:
                            last_row = self._log_row(step, epoch, window, elapsed())
                        if not cfg.checkpoint_every or last_epoch:
                            self._save(step)
                            nan_failures = 0
                    if cfg.sample_every_epochs and epoch % cfg.sample_every_epochs == 0:
                        self._print_samples(step, bar, f"epoch {epoch}")
            sync_counters()
            if not last_row or int(last_row["step"]) != step:
                last_row = self._log_row(step, epoch, window, elapsed())
            self._save(step)
        finally:
            bar.close()
            self._restore_signal_handlers(old_handlers)
            if self._writer is not None:
                self._writer.flush()
        return last_row

    # -- pieces of the loop ------------------------------------------------------------------------

    def _roll_back(self, step: int, loss: float, failures: int) -> tuple[int, int, int]:
        if failures > MAX_NAN_RETRIES:
            raise CharLMError(
                f"training diverged: the loss was {loss} at step {step + 1} even after "
                f"{MAX_NAN_RETRIES} roll-backs that each halved the learning rate; "
                "lower --lr or --clip-norm and resume or restart")
        scale = float(self.counters["lr_scale"].numpy()) * NAN_LR_FACTOR
        restored = self.run.restore_checkpoint(self.checkpoint, warn=self.log)
        self.counters["lr_scale"].assign(scale)
        lr = self.cfg.lr * float(self.counters["lr_scale"].numpy())
        self.log(f"warning: the loss was {loss} at step {step + 1}; rolled back to the checkpoint "
                 f"at step {restored} and halved the learning rate (base lr now {lr:.3g})")
        return (int(self.counters["step"].numpy()), int(self.counters["epoch"].numpy()),
                int(self.counters["batch"].numpy()))

    def _validate(self) -> dict | None:
        if len(self.val_ids) < 2:
            return None
        ids = self.val_ids[: self.cfg.eval_chars + 1] if self.cfg.eval_chars else self.val_ids
        return self.scorer(ids, batch_size=64, seq_len=min(256, max(self.cfg.seq_len, 64)))

    def _log_row(self, step: int, epoch: int, window: dict, elapsed: float) -> dict:
        now = time.monotonic()
        n = max(1, window["n"])
        train_loss = window["loss"] / n if window["n"] else float("nan")
        rate = self.cfg.batch_size * self.cfg.seq_len * window["n"] / max(1e-9, now - window["t"])
        val = self._validate()
        row = {"step": step, "epoch": epoch, "train_loss": train_loss,
               "train_perplexity": math.exp(min(train_loss, 700)) if window["n"] else float("nan"),
               "val_loss": val["nats_per_char"] if val else None,
               "val_perplexity": val["perplexity"] if val else None,
               "val_bits_per_char": val["bits_per_char"] if val else None,
               "chars_per_sec": rate, "lr": self.lr_at(step, elapsed),
               "grad_norm": window["norm"] / n if window["n"] else None, "wall_time": elapsed}
        self.run.append_metrics(row)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.run.path / "tb"))
        with self._writer.as_default(step=step):
            for key in ("train_loss", "train_perplexity", "val_loss", "val_perplexity",
                        "val_bits_per_char", "chars_per_sec", "lr", "grad_norm"):
                if row[key] is not None and math.isfinite(row[key]):
                    tf.summary.scalar(key, row[key])
        score = row["val_loss"] if val else train_loss
        if math.isfinite(score) and score < float(self.counters["best"].numpy()):
            self.counters["best"].assign(score)
            self.run.save_weights(self.model_for_saving, "best")
        parts = [f"step {step}", f"epoch {epoch}", f"train loss {train_loss:.4f}",
                 f"perplexity {row['train_perplexity']:.3f}"]
        if val:
            parts.append(f"val loss {val['nats_per_char']:.4f} ({val['bits_per_char']:.3f} bits/char)")
        parts.append(f"{rate:,.0f} chars/s")
        tqdm.write(" | ".join(parts), file=sys.stderr)
        window.update(loss=0.0, norm=0.0, n=0, t=time.monotonic())
        return row

    @property
    def model_for_saving(self):
        return getattr(self.model, "keras_model", self.model)

    def _save(self, step: int) -> None:
        """Save the last weights and a resumable checkpoint (once per step)."""
        if self._saved_step == step:
            return
        self.run.save_weights(self.model_for_saving, "last")
        self.run.save_checkpoint(self.checkpoint, step)
        self._saved_step = step

    def _print_samples(self, step: int, bar, when: str | None = None) -> None:
        prefixes = self.cfg.sample_prefixes or [self.vocab.chars[1]]
        temperature = self.cfg.sample_temperature
        texts = self.generator.generate(
            prefixes, self.cfg.sample_length, greedy=temperature == 0,
            temperature=temperature or 1.0, seed=self.cfg.seed, warn=self.log)
        for text in texts:
            tqdm.write(f"[{when or f'step {step}'}] {text}", file=sys.stderr)

    # -- signals -----------------------------------------------------------------------------------

    def _install_signal_handlers(self):
        import threading

        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self._interrupted:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self._interrupted = signum
            self.log("\nstopping: saving a checkpoint (press Ctrl-C again to quit at once)")

        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, handler)
        return old

    @staticmethod
    def _restore_signal_handlers(old) -> None:
        for sig, h in old.items():
            signal.signal(sig, h)
