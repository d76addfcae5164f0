"""The training loop's resumable state: everything that decides what happens next, in one
``tf.train.Checkpoint``.

That is the weights, the optimizer's slots, the step/epoch/batch counters, the learning-rate
scale the roll-backs lower, the best score so far, the seconds trained, the hidden state carried
between batches and the dropout seed generators. The sampler's plan for epoch e depends only
on (seed, e), so restoring this is enough for a resumed run to continue bit for bit where it
stopped. Example::

    state = TrainState(model, optimizer, batch_size=32)
    state.save(rundir, model, (step, epoch, batch), elapsed)   # weights "last" + checkpoint
    restored_step = state.restore(rundir, warn=print)          # -1: nothing to restore
    step, epoch, batch = state.position()
"""

from __future__ import annotations

import math

import tensorflow as tf

POSITION = ("step", "epoch", "batch")  # where the loop is, in the order position() gives it


class TrainState:
    """The checkpointed variables of a run of ``model`` trained by ``optimizer`` (already built)
    on batches of ``batch_size`` rows; ``zero_state`` is the state every epoch starts from."""

    def __init__(self, model, optimizer, batch_size: int):
        self.zero_state = model.initial_state(batch_size)
        self.carry = [tf.Variable(s, trainable=False) for s in self.zero_state]
        self.counters = {
            "step": tf.Variable(0, dtype=tf.int64),
            "epoch": tf.Variable(0, dtype=tf.int64),
            "batch": tf.Variable(0, dtype=tf.int64),
            "lr_scale": tf.Variable(1.0, dtype=tf.float64),
            "elapsed": tf.Variable(0.0, dtype=tf.float64),
            "best": tf.Variable(math.inf, dtype=tf.float64),
        }
        self.checkpoint = tf.train.Checkpoint(
            optimizer=optimizer,
            carry=self.carry,
            **model.checkpoint_objects(),
            **self.counters,
        )

    def position(self) -> tuple[int, int, int]:
        """(step, epoch, batch) as last saved or restored."""
        step, epoch, batch = (int(self.counters[k].numpy()) for k in POSITION)
        return step, epoch, batch

    def elapsed(self) -> float:
        """Seconds trained when the state was saved (step 0's save holds the start-up)."""
        return float(self.counters["elapsed"].numpy())

    def lr_scale(self) -> float:
        """The factor the roll-backs have left on the learning rate (1 until the first)."""
        return float(self.counters["lr_scale"].numpy())

    def beats_best(self, score: float) -> bool:
        """True, and ``score`` becomes the best, when it is finite and lower than the best."""
        if math.isfinite(score) and score < float(self.counters["best"].numpy()):
            self.counters["best"].assign(score)
            return True
        return False

    def initial_state(self, carries_state: bool) -> list:
        """The state a batch starts from: the carried one, or zeros (random batches)."""
        return self.carry if carries_state else self.zero_state

    def reset_carry(self) -> None:
        """Zeros in the carried state: an epoch starts from them."""
        for v, z in zip(self.carry, self.zero_state, strict=True):
            v.assign(z)

    def keep_carry(self, new_state) -> None:
        """Carry the state a batch ended in into the next one (no gradient crosses)."""
        for v, s in zip(self.carry, new_state, strict=True):
            v.assign(s)

    def save(self, rundir, model, position: tuple[int, int, int], elapsed: float) -> None:
        """Write the weights as "last" and a resumable checkpoint at ``position``."""
        for name, value in zip(POSITION, position, strict=True):
            self.counters[name].assign(value)
        self.counters["elapsed"].assign(elapsed)
        rundir.save_weights(model, "last")
        rundir.save_checkpoint(self.checkpoint, position[0])

    def restore(self, rundir, warn) -> int:
        """Load the newest readable checkpoint of ``rundir``; its step, or -1 if none."""
        return rundir.restore_checkpoint(self.checkpoint, warn=warn)
