"""The run folders as the faces see them, read without TensorFlow: which run a name means,
the runs there are, and what each holds (the facts; the command line renders them).

    find_run(None, "runs")        # "runs/20261124-042300-lstm": the newest, checked
    list_runs("runs")             # one dict per run folder
"""

from __future__ import annotations

from ..options.config import WEIGHTS
from ..runs.catalog import baselines, describe, list_runs, summarise
from ..runs.folders import export_target, resolve_run, run_names
from ..runs.rundir import RunDir

__all__ = [
    "WEIGHTS",
    "baselines",
    "describe",
    "device_line",
    "export_target",
    "find_run",
    "list_runs",
    "resolve_run",
    "run_names",
    "summarise",
]


def find_run(run_path: str | None, runs_dir: str, flag: str = "--run") -> str:
    """The run folder a command reads, its config and vocabulary checked before TensorFlow
    loads (a few seconds).

    Args:
        run_path: A run folder, a folder of runs (its newest), or None (the newest under
            ``runs_dir``).
        runs_dir: The folder of runs.
        flag: How the command is told a run folder, for the message when there is none.

    Returns:
        The run folder's path.

    Raises:
        CharLMError: there is no such run, or its config or vocabulary cannot be read.
    """
    run = RunDir(resolve_run(run_path, runs_dir, flag))
    run.read_config()
    run.read_vocab()
    return str(run.path)


def device_line(precision: str, replicas: int | None = None, strategy: str = "none") -> str:
    """The line that says which device computes, in which precision (imports TensorFlow:
    :func:`charlm.models.device.device_line`).

    Args:
        precision: The run's ``precision`` setting.
        replicas: The devices a training runs on (None: sampling, which has no strategy).
        strategy: The run's ``strategy`` setting.

    Returns:
        ``"device: ...; precision float32"``, with the replicas when given.
    """
    from ..models.device import device_line as line

    return line(precision, replicas, strategy)
