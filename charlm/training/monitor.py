"""Watching a run train: the :class:`~charlm.training.trainer.Callback`\\ s that ``charlm train`` attaches.

* :class:`TensorBoardLog` writes real TensorBoard event files into ``RUN/tb``: every metrics
  row as scalars, the periodic samples as text (in a code block, so TensorBoard's Markdown
  shows them as written), and the run's settings to the HParams dashboard with the val loss
  as its metric.
* :class:`LossPlot` draws ``RUN/loss.png`` (train and val loss against step and time, in
  nats and bits per character: :func:`charlm.training.plot.plot_losses`) after each validation.
* :class:`RunRecord` keeps ``RUN/run.json``: the model's parameter count, and whether the run
  reached its limit (``charlm runs`` reads it without loading TensorFlow).

    trainer = Trainer(cfg, model, sampler, val_ids, rundir, callbacks=[TensorBoardLog(path, cfg)])
"""

from __future__ import annotations

import math
from pathlib import Path

import tensorflow as tf

from ..errors import CharLMError
from ..metrics import COUNTERS, FIELDS
from .trainer import Callback

LOSS_PLOT = "loss.png"

SCALARS = tuple(f for f in FIELDS if f not in COUNTERS)  # each row as TensorBoard scalars


def hparams_of(cfg) -> dict:
    """The settings shown in TensorBoard's HParams dashboard: every scalar setting of the run
    (lists and the corpus paths are left out, as HParams takes only numbers, strings, bools)."""
    return {
        k: v
        for k, v in cfg.to_dict().items()
        if isinstance(v, (bool, int, float, str)) and k not in ("name",)
    }


class TensorBoardLog(Callback):
    """Scalars, samples and hyperparameters of a run, as TensorBoard event files in ``folder``."""

    def __init__(self, folder, cfg=None):
        self.folder = Path(folder)
        self.cfg = cfg
        self._writer = None

    @property
    def writer(self):
        if self._writer is None:  # opened lazily: a run that never logs leaves no empty file
            self._writer = tf.summary.create_file_writer(str(self.folder))
        return self._writer

    def on_train_begin(self, trainer) -> None:
        if self.cfg is None:
            return
        from tensorboard.plugins.hparams import api as hp

        values = hparams_of(self.cfg)
        with self.writer.as_default(step=trainer.step):
            hp.hparams_config(
                hparams=[hp.HParam(k) for k in values],
                metrics=[hp.Metric("val_loss", display_name="val loss (nats/char)")],
            )
            hp.hparams(values, trial_id=self.folder.parent.name)

    def on_evaluate(self, trainer, row: dict) -> None:
        with self.writer.as_default(step=int(row["step"])):
            for key in SCALARS:
                value = row.get(key)
                if value is not None and math.isfinite(value):
                    tf.summary.scalar(key, value)

    def on_samples(self, trainer, texts: list[str], when: str) -> None:
        body = "\n\n".join(f"```\n{t}\n```" for t in texts)  # code blocks: shown as written
        with self.writer.as_default(step=trainer.step):
            tf.summary.text("samples", f"**{when}**\n\n{body}")

    def on_train_end(self, trainer, row: dict) -> None:
        self.writer.flush()


class LossPlot(Callback):
    """``folder/loss.png``, redrawn from the run's metrics after each validation (so an
    interrupted run has one too) and at the end. A picture that cannot be drawn is a warning,
    never a reason to stop training."""

    def __init__(self, folder, log=print):
        self.path = Path(folder) / LOSS_PLOT
        self.log = log
        self._broken = False

    def on_evaluate(self, trainer, row: dict) -> None:
        self.draw(trainer.rundir.read_metrics())

    def draw(self, rows: list[dict]) -> None:
        if self._broken:
            return
        try:
            from .plot import plot_losses

            plot_losses(rows, self.path)
        except (ImportError, OSError, ValueError, CharLMError) as e:
            self._broken = True
            self.log(f"warning: cannot draw {self.path} ({e}); training goes on without it")


class RunRecord(Callback):
    """The run folder's ``run.json``: ``{"parameters": N, "finished": bool, "step": N}``;
    ``finished`` turns true only when the loop ends at its limit (not when it is interrupted
    or crashes)."""

    def on_train_begin(self, trainer) -> None:
        self._write(trainer, finished=False)

    def on_train_end(self, trainer, row: dict) -> None:
        self._write(trainer, finished=True)

    def _write(self, trainer, finished: bool) -> None:
        trainer.rundir.write_record(trainer.model.count_params(), finished, trainer.step)
