"""One launch of a training: when it started, its clock, and what it trains on, as one record.

A :class:`Launch` is made once, where the training starts: ``charlm train`` makes it from its
flags and the start of its process (a ``--time-budget`` counts from there: start-up, the final
validation and save and the exit all fit in it); :func:`charlm.api.train` and
:func:`charlm.api.prepare` make it from their keywords and ``started``. It then travels, the
one argument, down to the trainer, and its :attr:`~Launch.clock` is the one
:class:`~charlm.training.clock.Clock` of the run: the budget recipe reads it to choose, the
trainer to stop in time and to drive the schedule. Example::

    launch = Launch(paths=["corpora/tinyshakespeare.txt"], overrides={"time_budget": "5m"})
    run = charlm.api.train_launch(launch)

No TensorFlow here: the command line makes a launch before TensorFlow loads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..fsio import to_stderr
from ..options.config import Config
from ..options.toml import canonical_keys
from ..training.clock import Clock, process_started

__all__ = ["Launch", "process_started"]

if TYPE_CHECKING:
    from ..training.trainer import Callback


@dataclass(frozen=True)
class Launch:
    """What one training is asked to do, and the clock it runs against.

    Args:
        paths: The corpus: files, folders, .zip, .gz, or ``-`` for standard input; None or
            empty for the preset's (or, on a resume, the run's own).
        config: A TOML preset's path, or a :class:`~charlm.options.config.Config`; None for
            the defaults.
        overrides: Settings that override the preset, by name (``{"steps": 500}``); old names
            are read as today's.
        resume: True (the newest run) or a run folder, to continue that run; None for a new run.
        force: Replace an existing run of the same name.
        init_from: A run folder (or a run's name under ``runs_dir``) whose model shape and
            weights a new run starts from.
        init_weights: Which of ``init_from``'s weights: "best" or "last".
        log: Where the lines about the run go (one string a call).
        progress: Show a progress bar (None: when stderr is a terminal).
        callbacks: :class:`~charlm.training.trainer.Callback`\\ s that watch the loop.
        started: The ``time.monotonic()`` a time budget counts from (default: now).

    The :attr:`clock` is made from ``started``; its budget is set once the run's config,
    which says it, is read (:meth:`~charlm.training.clock.Clock.set_budget`).
    """

    paths: Sequence[str | Path] | None = None
    config: str | Path | Config | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    resume: str | Path | bool | None = None
    force: bool = False
    init_from: str | Path | None = None
    init_weights: str = "best"
    log: Callable[[str], None] = to_stderr
    progress: bool | None = None
    callbacks: Sequence[Callback] = ()
    started: float = field(default_factory=time.monotonic)
    clock: Clock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # a frozen record's own fields, set once as it is made
        object.__setattr__(self, "overrides", canonical_keys(dict(self.overrides)))
        object.__setattr__(self, "clock", Clock(None, self.started))
