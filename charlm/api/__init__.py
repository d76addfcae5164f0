"""The Python API: the three jobs of the command line, as functions; the one door to the
engine for every face (the CLI, the server, the Python caller).

    import charlm
    run = charlm.train(["corpora/tinyshakespeare.txt"], config="configs/tiny.toml", steps=200)
    print(run.generate("ROMEO:", length=200, temperature=0.8)[0])
    print(run.evaluate(text="To be, or not to be")["perplexity"])

    run = charlm.load()            # the newest run under ./runs
    run = charlm.load("runs/my-run", weights="last")

:func:`prepare` is :func:`train` up to the first step, for tools that drive the loop
themselves. Both put their keywords into one :class:`~charlm.api.launch.Launch` (``charlm
train`` makes its own and calls :func:`train_launch`), which travels whole down to the
trainer: what to train on, how it reports, and the one clock of its time budget
(:mod:`charlm.api.training`). :mod:`charlm.api.inputs` reads what a run trains on,
:mod:`charlm.api.run` is the :class:`Run` a training returns and :func:`load` loads; the
faces' other doors are :mod:`.catalog` (the runs), :mod:`.families` (the model families),
:mod:`.prompts`, :mod:`.novelty`, :mod:`.serving` and :mod:`.launch`.

This ``__init__`` imports nothing: each name is imported from its module when first asked
for, so that a face that needs one door (``--model``'s choices, the launch time) does not
pay for every other (numpy, the corpus readers: a tenth of a second on every command).
No TensorFlow is imported until a model is built, after the inputs are checked.
"""

from __future__ import annotations

import importlib
from typing import Any

# each public name, and the module (of this package) it comes from
_DOORS = {
    "train": ".training",
    "prepare": ".training",
    "train_launch": ".training",
    "prepare_launch": ".training",
    "load": ".training",
    "given_keys": ".training",
    "at_startup": ".training",
    "Run": ".run",
    "Launch": ".launch",
    "TrainingInterrupted": "..training.trainer",  # imports TensorFlow: only when asked
}
__all__ = sorted(_DOORS)


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported from its module at the first asking.

    Raises:
        AttributeError: no such name.
    """
    if name not in _DOORS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_DOORS[name], __name__), name)
    globals()[name] = value
    return value
