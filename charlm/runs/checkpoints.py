"""What a run folder keeps of the model: resumable checkpoints and the best and last weights.

A checkpoint (``checkpoints/step-000000123/``: weights, optimizer, counters, carried state)
is written under a temporary name, synced, and renamed into place only once complete; the
one before it is deleted only after that, so a crash at any moment leaves a loadable run.
The weights ``sample`` and ``eval`` load (``best.keras``/``last.keras``, or ``best/``/``last/``
for scratch models) are replaced the same way. :class:`~charlm.runs.rundir.RunDir` has
these methods::

    rundir.save_checkpoint(tf.train.Checkpoint(model=..., optimizer=...), step=123)
    step = rundir.restore_checkpoint(checkpoint)     # the newest readable one; -1 if none
    path, way_out = rundir.find_weights("best", ".keras")
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..errors import CharLMError, tf_reason
from ..fsio import (
    fault_point,
    fsync_dir,
    fsync_tree,
    readable_path,
    removed_on_failure,
    replace_path,
    temp_name,
    tf_path,
)
from ..options.config import (
    WEIGHTS,  # the weights a run keeps (best, last): the choices of --weights
)

CHECKPOINT_RE = re.compile(r"^step-(\d+)$")
KEEP_CHECKPOINTS = 2


class SavedModel:
    """The checkpoints and weights in the run folder ``path`` (a base of ``RunDir``)."""

    path: Path

    # -- checkpoints, for --resume -----------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, oldest first; a file in the folder's place is one CharLMError
        (resuming would otherwise start again from step 0 over the run's weights)."""
        if not self.checkpoint_dir.is_dir():
            if self.checkpoint_dir.exists():
                raise CharLMError(
                    f"{self.checkpoint_dir} is a file, not the run's checkpoints folder; "
                    "restore the folder, or start a new run"
                )
            return []
        found = []
        for p in self.checkpoint_dir.iterdir():
            m = CHECKPOINT_RE.match(p.name)
            if m and p.is_dir():
                found.append((int(m.group(1)), p))
        return sorted(found)

    def save_checkpoint(self, tf_checkpoint, step: int) -> Path:
        """Write a ``tf.train.Checkpoint`` as ``checkpoints/step-N`` atomically; keep the previous one."""
        self.checkpoint_dir.mkdir(exist_ok=True)
        final = self.checkpoint_dir / f"step-{step:09d}"
        tmp = self.checkpoint_dir / f".tmp-step-{step:09d}-{os.getpid()}"
        with removed_on_failure(tmp, named=final):  # a full disk, a signal: no half checkpoint
            tmp.mkdir()
            with tf_path(tmp) as plain:
                tf_checkpoint.write(str(plain / "ckpt"))
            fault_point("checkpoint-written")
            fsync_tree(tmp)
            fault_point("checkpoint-synced")
        if final.exists():  # the same step saved again (e.g. on interrupt right after a save)
            shutil.rmtree(tmp)
            return final
        os.rename(tmp, final)
        fsync_dir(self.checkpoint_dir)
        fault_point("checkpoint-renamed")
        for _, old in self.checkpoints()[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in self.checkpoint_dir.glob(".tmp-step-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return final

    def restore_checkpoint(self, tf_checkpoint, warn=print) -> int:
        """Restore the newest readable checkpoint into ``tf_checkpoint``; its step, or -1 if none."""
        errors = []
        for step, path in reversed(self.checkpoints()):
            try:
                with tf_path(path) as readable:
                    tf_checkpoint.read(str(readable / "ckpt")).assert_existing_objects_matched()
            except Exception as e:  # TF raises OpError, ValueError, IndexError, ... on bad files
                errors.append(f"{path.name}: {tf_reason(e)}")
                warn(
                    f"warning: checkpoint {path} is unreadable ({errors[-1]}); trying an older one"
                )
                continue
            return step
        if errors:
            raise CharLMError(
                f"{self.path}: no readable checkpoint ({'; '.join(errors)}); start a new run"
            )
        return -1

    # -- weights, for sample / eval --------------------------------------------------------------

    def weights_path(self, which: str, suffix: str) -> Path:
        """Where the ``which`` ("best" or "last") weights of a model saving ``suffix`` files live."""
        return self.path / f"{which}{suffix}"

    def save_weights(self, model, which: str) -> None:
        """Save ``model``'s ``best`` or ``last`` weights atomically, in the model's own format."""
        final = self.weights_path(which, model.weights_suffix)
        tmp = temp_name(final, model.weights_suffix)  # Keras insists on the .keras ending
        with removed_on_failure(tmp, named=final):  # a full disk, a signal: no .last.keras.tmp-*
            model.save(tmp)
            fault_point("weights-written")
            fsync_tree(tmp)
            replace_path(tmp, final)

    def find_weights(self, which: str, suffix: str, flag: str = "--weights") -> tuple[Path, str]:
        """The saved ``which`` weights, and the way out to name if they cannot be loaded;
        ``flag`` is the option that chose them."""
        if which not in WEIGHTS:
            raise CharLMError(f"{flag} must be {' or '.join(WEIGHTS)}, not '{which}'")
        other = next(w for w in WEIGHTS if w != which)
        way_out = (
            f"try {flag} {other}, or retrain the run"
            if self.weights_path(other, suffix).exists()
            else "retrain the run"
        )
        path = readable_path(self.weights_path(which, suffix))
        if not path.exists():
            raise CharLMError(f"{path} is missing; the run has no {which} weights; {way_out}")
        return path, way_out
