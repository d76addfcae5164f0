"""The NaN guard: a loss (or gradient norm) that is not finite rolls the run back to its last
checkpoint and halves the learning rate; after three roll-backs in a row with no checkpoint
written between them, the next failure stops the run with a clear message. Example::

    guard = NanGuard(state, rundir, log=print)
    if not math.isfinite(loss):
        guard.roll_back(loss, step, cfg.lr)   # or CharLMError on the fourth in a row
        step, epoch, batch = state.position()
    ...
    guard.reset()                              # after each checkpoint written
"""

from __future__ import annotations

from ..errors import CharLMError

MAX_NAN_RETRIES = 3  # rollbacks in a row (each halving the learning rate) before giving up
NAN_LR_FACTOR = 0.5


class NanGuard:
    """Rolls ``state`` (a :class:`~charlm.training.checkpoint.TrainState`) back to the newest
    checkpoint of ``rundir``, counting the failures since the last checkpoint written."""

    def __init__(self, state, rundir, log):
        self.state, self.rundir, self.log = state, rundir, log
        self.failures = 0

    def reset(self) -> None:
        """A checkpoint was written: the failures before it no longer count."""
        self.failures = 0

    def roll_back(self, loss: float, step: int, base_lr: float) -> None:
        """Restore the last checkpoint with half the learning-rate scale it had before the
        failure at step ``step + 1`` (or give up); the caller reads the restored position."""
        self.failures += 1
        if self.failures > MAX_NAN_RETRIES:
            raise CharLMError(
                f"training diverged: the loss was {loss} at step {step + 1} even after "
                f"{MAX_NAN_RETRIES} roll-backs that each halved the learning rate; "
                "lower --lr or --clip-norm and resume or restart"
            )
        scale = self.state.lr_scale() * NAN_LR_FACTOR  # before the restore overwrites it
        restored = self.state.restore(self.rundir, self.log)
        self.state.counters["lr_scale"].assign(scale)
        self.log(
            f"warning: the loss was {loss} at step {step + 1}; rolled back to the "
            f"checkpoint at step {restored} and halved the learning rate "
            f"(base lr now {base_lr * scale:.3g})"
        )
