"""The run a new run starts from: ``charlm train NEW_TEXT --init-from RUN``.

The new run takes RUN's model shape (:data:`charlm.options.config.SHAPE_KEYS`) and weights, grows
RUN's vocabulary by the characters of the new text it lacks (their rows start as a fresh
model's do), and starts a fresh optimizer; everything else (learning rate, schedule, batch,
window, dropout, limits) is its own. Everything about RUN is read and checked, its weights
loaded, before the new run writes a file::

    origin = Origin.open("runs/shakespeare", runs_dir="runs", weights="best")
    cfg = origin.shape(cfg, overrides, preset)   # RUN's shape; a flag that disagrees: error
    origin.load_into(model)                      # old rows copied bit for bit
    rundir.write_origin(origin.record())         # run.json: where the run came from

The best weights are the default: the ones that scored lowest on RUN's held-out text, the
least overfitted start for new text; ``--init-weights last`` takes the newest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CharLMError
from ..fsio import real_path
from ..metrics import number
from ..options.config import RUNS_DIR, SHAPE_KEYS, Config
from ..options.toml import read_preset
from ..runs.folders import resolve_run
from ..runs.rundir import RunDir
from ..text.vocab import Vocab

if TYPE_CHECKING:
    import numpy as np

    from ..models.lm import LanguageModel

FLAG = "--init-from"


class Origin:
    """A run's config, vocabulary and loaded weights, and which of its weights they are, at
    which step (made by :meth:`open`).

    Args:
        rundir: The run's folder.
        config: Its config.
        vocab: Its vocabulary.
        weights: ``"best"`` or ``"last"``.
        step: The training step of those weights.
        values: The weights, numpy, in the order of its model's trainable variables.
    """

    def __init__(
        self,
        rundir: RunDir,
        config: Config,
        vocab: Vocab,
        weights: str,
        step: int,
        values: list[np.ndarray],
    ) -> None:
        self.rundir, self.config, self.vocab = rundir, config, vocab
        self.weights, self.step, self.values = weights, step, values

    @classmethod
    def open(
        cls, run: str | os.PathLike[str], runs_dir: str = RUNS_DIR, weights: str = "best"
    ) -> Origin:
        """A run, its weights loaded (imports TensorFlow).

        Args:
            run: A run folder, a folder of runs (its newest), or a run's name under
                ``runs_dir``.
            runs_dir: The folder of runs.
            weights: ``"best"`` or ``"last"``.

        Returns:
            The origin.

        Raises:
            CharLMError: no such run, or a damaged one (config, vocabulary or weights), in
                one line.
        """
        rundir = RunDir(resolve_run(str(run), runs_dir, FLAG))
        cfg, vocab = rundir.read_config(), rundir.read_vocab()
        from ..models.lm import load_model, weights_suffix

        path, way_out = rundir.find_weights(weights, weights_suffix(cfg), "--init-weights")
        model = load_model(cfg, len(vocab), path, way_out)
        values = [v.numpy() for v in model.trainable_variables]
        return cls(rundir, cfg, vocab, weights, _step_of(rundir, weights), values)

    @property
    def name(self) -> str:
        """The run's folder name."""
        return self.rundir.path.name

    @property
    def base(self) -> tuple[Vocab, str]:
        """What the corpus encoder grows (:func:`charlm.text.idfile.encode`'s ``base``)."""
        return self.vocab, self.name

    def shape(
        self,
        cfg: Config,
        overrides: dict[str, Any],
        preset: str | Path | Config | None = None,
    ) -> Config:
        """A new run's config with this run's model shape (:data:`SHAPE_KEYS`).

        Args:
            cfg: The new run's config.
            overrides: The settings given as flags.
            preset: The TOML preset ``cfg`` was read from, if any (a Config object: none of
                its settings counts as given).

        Returns:
            ``cfg`` with this run's shape.

        Raises:
            CharLMError: a shape setting in ``overrides`` or ``preset`` that disagrees with
                this run's, naming it and this run's value.
        """
        theirs = self.config
        keys = set(read_preset(preset)) if preset and not isinstance(preset, Config) else set()
        for key in SHAPE_KEYS:
            if key in overrides and overrides[key] != getattr(theirs, key):
                given = _flag(key, overrides[key])
            elif key in keys and key not in overrides and getattr(cfg, key) != getattr(theirs, key):
                given = f"{preset} sets {key} = {_shown(getattr(cfg, key))}, which"
            else:
                continue
            raise CharLMError(
                f"{given} disagrees with {self.rundir.path}, whose model has "
                f"{key.replace('_', '-')} {_shown(getattr(theirs, key))}: {FLAG} takes the "
                "model's shape from the run; leave it out"
            )
        return cfg.replace(**{k: getattr(theirs, k) for k in SHAPE_KEYS})

    def check_kept(self, cfg: Config) -> None:
        """Refuse a new run folder (``--name`` with ``--force``) that would replace this run.

        Args:
            cfg: The new run's config.

        Raises:
            CharLMError: its folder is this run's.
        """
        if cfg.name and real_path(Path(cfg.runs_dir) / cfg.name) == real_path(self.rundir.path):
            raise CharLMError(
                f"--name {cfg.name} would replace {self.rundir.path}, the run {FLAG} starts "
                "from; choose another --name"
            )

    def describe(self) -> str:
        """Which weights these are, in words.

        Returns:
            ``"runs/x's best weights from step 200 (lstm 1x64, embedding 16)"``.
        """
        c = self.config
        embedding = f"embedding {c.embedding_dim}" if c.embedding_dim else "one-hot input"
        return (
            f"{self.rundir.path}'s {self.weights} weights from step {self.step} ("
            f"{c.model} {c.layers}x{c.units}, {embedding})"
        )

    def record(self) -> dict[str, Any]:
        """What ``run.json`` keeps of the origin (:meth:`RunDir.write_origin`).

        Returns:
            The run's resolved path, its name, the step and which weights.
        """
        return {
            "run": str(real_path(self.rundir.path)),
            "name": self.name,
            "step": self.step,
            "weights": self.weights,
        }

    def load_into(self, model: LanguageModel) -> None:
        """Copy the weights into the new run's model.

        Args:
            model: A model of this run's shape and the grown vocabulary; the rows of new ids
                keep its own fresh initial values.

        Raises:
            CharLMError: a weight of another shape than the model's.
        """
        from ..models.transfer import copy_grown

        copy_grown(model, self.values, len(self.vocab))


def _step_of(rundir: RunDir, weights: str) -> int:
    """The step of the run's ``weights``: the validation that scored lowest (val loss, else
    train loss, as the trainer keeps "best"), or the newest checkpoint ("last")."""
    rows = rundir.read_metrics()
    if weights == "last":
        checkpoints = rundir.checkpoints()
        return checkpoints[-1][0] if checkpoints else int(rows[-1]["step"]) if rows else 0
    scores = [
        (number(r.get("val_loss")), number(r.get("train_loss")), int(r["step"])) for r in rows
    ]
    scored = [
        (score, step)
        for val, train, step in scores
        if (score := val if val is not None else train) is not None
    ]
    return min(scored, key=lambda x: x[0])[1] if scored else 0


def _flag(key: str, value) -> str:
    """The flag that gives setting ``key`` this ``value``: ``--units 64``, ``--no-reset-after``."""
    flag = key.replace("_", "-")
    if isinstance(value, bool):
        return f"--{'' if value else 'no-'}{flag}"
    return f"--{flag} {value}"


def _shown(value) -> str:
    """A setting's value as a flag takes it."""
    return str(value).lower() if isinstance(value, bool) else str(value)
