"""A non-chief worker's run folder (``--strategy multi-worker``): TensorFlow's multi-worker
checkpointing pattern, in which every worker saves and only the chief keeps what it saved.

    rundir = WorkerRunDir(None)        # a new run's worker: a temporary folder, no run claimed
    rundir = WorkerRunDir(RunDir(p))   # a resume's worker: reads the chief's checkpoints at p
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from .folders import CONFIG
from .rundir import RunDir


class WorkerRunDir(RunDir):
    """A non-chief worker's run folder: a temporary folder that every save writes into and
    then deletes. On a resume it starts as a copy of the run's plain files (config,
    vocabulary, corpus sizes, held-out text) and reads checkpoints from ``source``, the run
    folder it was given; on a new run (``source`` None) it is all the worker has: the chief
    alone makes the run folder. The folder goes when the process exits; this worker never
    makes, marks or deletes a run folder of ``--runs-dir``."""

    PLAIN_FILES = (CONFIG, "vocab.json", "corpus.json", "val.txt")

    def __init__(self, source: RunDir | None):
        super().__init__(tempfile.mkdtemp(prefix="charlm-worker-"))
        self.source = source
        if source is not None:
            for name in self.PLAIN_FILES:
                if (source.path / name).is_file():
                    shutil.copyfile(source.path / name, self.path / name)
        atexit.register(self.cleanup)

    def restore_checkpoint(self, tf_checkpoint, warn=print) -> int:
        return self.source.restore_checkpoint(tf_checkpoint, warn=warn) if self.source else -1

    def save_checkpoint(self, tf_checkpoint, step: int) -> Path:
        final = super().save_checkpoint(tf_checkpoint, step)
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        return final

    def save_weights(self, model, which: str) -> None:
        super().save_weights(model, which)
        final = self.weights_path(which, model.weights_suffix)
        if final.is_dir():  # a scratch model's checkpoint folder
            shutil.rmtree(final, ignore_errors=True)
        else:
            final.unlink(missing_ok=True)

    def mark_latest(self) -> None:
        """Nothing: ``latest`` is the chief's to point."""

    def release(self) -> None:
        if self.source:
            self.source.release()

    def abandon(self) -> None:
        if self.source:
            self.source.abandon()

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
