"""Where runs live: a new run folder's name, the ``latest`` link, and which run a command means.

``charlm train`` makes ``runs/<time>-<model>`` (or ``runs/<--name>``) and points
``runs/latest`` at it; ``sample``, ``eval``, ``info`` and ``--resume`` take a run folder, a
folder of runs (its newest run), or nothing (the newest run under ``--runs-dir``)::

    path = new_run_folder(cfg)            # runs/20261123-121500-lstm, empty
    mark_latest(path)                     # runs/latest -> 20261123-121500-lstm
    resolve_run(None, "runs") == path     # True (relative to the working folder)
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from ..config import Config
from ..errors import CharLMError

LATEST = "latest"  # the link in a folder of runs to its newest run
CONFIG = "config.toml"  # the file that makes a folder a run


def resolve_run(run: str | None, runs_dir: str = "runs", flag: str = "--run") -> Path:
    """The run folder named by ``run``, the newest run in ``run`` when it is a folder of runs,
    or, with no ``run``, the newest run under ``runs_dir``. ``flag`` names the option that
    takes a run folder, for the message when there is none."""
    if run:
        path = Path(run)
        if not path.is_dir():
            raise CharLMError(
                f"{run}: no such run folder; check the path, or leave it out "
                f"for the newest run under {runs_dir}/"
            )
        if not (path / CONFIG).exists() and (path / LATEST).is_symlink():
            path = newest_run(path) or path  # a folder of runs, e.g. the --runs-dir of a train
    else:
        path = newest_run(Path(runs_dir))
        if path is None:
            verb = "to resume" if flag == "--resume" else "found"
            raise CharLMError(
                f"no run {verb} in {runs_dir}/; train one first with `charlm "
                f"train CORPUS`, or name the run folder: {flag} DIR"
            )
    if not (path / CONFIG).is_file():
        raise CharLMError(
            f"{path}: not a charlm run (no {CONFIG}); name a run folder "
            "written by `charlm train`, or a folder of runs"
        )
    return path


def newest_run(runs_dir: Path) -> Path | None:
    """The run ``runs_dir/latest`` points at or, if that run was deleted, the run written most
    recently (relative to the working folder if inside it); None if there is no run."""
    if not (runs_dir / LATEST).is_symlink():
        return None
    path = (runs_dir / LATEST).resolve()
    if not path.exists():  # the newest run was deleted
        runs = [p.resolve() for p in runs_dir.iterdir() if (p / CONFIG).is_file()]
        if not runs:
            return None
        path = max(runs, key=lambda p: (p / CONFIG).stat().st_mtime)
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def new_run_folder(cfg: Config, force: bool = False) -> Path:
    """A new, empty folder for a run of ``cfg``: ``cfg.name``, or the time and model, under
    ``cfg.runs_dir``. An existing non-empty one is refused, unless ``force`` and it is a run,
    so that a typo never deletes a folder that is not a run."""
    path = Path(cfg.runs_dir) / (cfg.name or time.strftime("%Y%m%d-%H%M%S") + f"-{cfg.model}")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        if not force:
            raise CharLMError(
                f"{path} already holds a run; pass --resume to continue it, "
                "--force to replace it, or choose another --name"
            )
        if not (path / CONFIG).is_file():
            raise CharLMError(
                f"{path} is not a charlm run; --force replaces only runs; choose another --name"
            )
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CharLMError(
            f"cannot create the run folder {path}: {e.strerror}; "
            "choose another --runs-dir or --name"
        ) from None
    return path


def mark_latest(path: Path) -> None:
    """Point ``latest`` beside the run ``path`` at it (atomically, by renaming a new symlink)."""
    link = path.parent / LATEST
    tmp = path.parent / f".{LATEST}.tmp-{os.getpid()}"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(path.name)
        os.replace(tmp, link)
    except OSError:
        pass  # no symlinks here: `--run DIR` still works


def unmark_latest(path: Path) -> None:
    """Remove ``latest`` beside the run ``path`` if it points at that run."""
    link = path.parent / LATEST
    if link.is_symlink() and link.resolve() == path.resolve():
        link.unlink()
