"""Where runs live: a new run folder's name, the ``latest`` link, and which run a command means.

A run's life: ``charlm train`` claims ``runs/<time>-<model>`` (or ``runs/<--name>``)
atomically and holds its lock (:mod:`.lock`) while it trains; the folder holds an
``INCOMPLETE`` marker until the first checkpoint of a trained step is on disk, and only then
does ``runs/latest`` point at it. ``sample``, ``eval``, ``info`` and ``--resume`` take a run
folder, a folder of runs (its newest run), or nothing (the newest run under ``--runs-dir``);
"newest" is never an incomplete run::

    path, lock = claim_run_folder(cfg)    # runs/20261123-121500-lstm, locked, INCOMPLETE
    complete_run(path)                    # after its first checkpoint: runs/latest -> it
    resolve_run(None, "runs") == path     # True (relative to the working folder)
"""

from __future__ import annotations

import difflib
import os
import shutil
import time
from pathlib import Path

from ..errors import CharLMError
from ..fsio import atomic_write, fsync_dir, real_path
from ..options.config import RUNS_DIR, Config
from .lock import LOCK_FILE, RunLock, busy, holder_name

LATEST = "latest"  # the link in a folder of runs to its newest run
CONFIG = "config.toml"  # the file that makes a folder a run
INCOMPLETE = "INCOMPLETE"  # the marker of a run not yet at its first checkpoint
MARKER_TEXT = (
    "This run is incomplete: charlm train made it and has not saved its first checkpoint.\n"
    "If no process trains it (see `charlm runs`), `charlm train --name {name}` replaces it.\n"
)


def named_run(run: str, runs_dir: str, flag: str) -> Path:
    """``run`` as a folder: a path, else a run's name under ``runs_dir``; else one line that
    says the likeliest run meant and the runs there."""
    path = Path(run)
    if path.is_dir():
        return path
    if not path.is_absolute() and (Path(runs_dir) / path).is_dir():
        return Path(runs_dir) / path
    names = run_names(runs_dir)
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.5)
    meant = f"did you mean {Path(runs_dir) / close[0]}? " if close else ""
    shown = ", ".join(names[:SHOWN]) + (
        f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    )
    there = (
        f"the runs under {runs_dir}/: {shown}"
        if names
        else f"there is no run under {runs_dir}/ (charlm train CORPUS makes one)"
    )
    raise CharLMError(
        f"{flag} {run}: no such run folder, here or under {runs_dir}/; {meant}{there}"
    )


SHOWN = 10  # the runs a message lists at most


def run_folders(runs_dir) -> list[Path]:
    """The folders under ``runs_dir`` that may be runs (not ``latest``, not hidden)."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise CharLMError(
            f"{runs_dir}: no such folder of runs; train one with `charlm train "
            "CORPUS`, or name the folder: --runs-dir DIR"
        )
    try:
        entries = list(root.iterdir())
    except OSError as e:
        raise CharLMError(f"{runs_dir}: cannot list the folder ({e.strerror})") from None
    return [
        p
        for p in entries
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and p.name != LATEST
    ]


def run_names(runs_dir: str | os.PathLike[str]) -> list[str]:
    """The names of the runs in a folder of runs, for shell completion (never raises).

    Args:
        runs_dir: The folder of runs.

    Returns:
        The names of its folders that hold a config.toml, sorted; [] if it cannot be read.
    """
    try:
        return sorted(p.name for p in run_folders(runs_dir) if (p / CONFIG).is_file())
    except (CharLMError, OSError):
        return []


def resolve_run(run: str | None, runs_dir: str = RUNS_DIR, flag: str = "--run") -> Path:
    """The run folder a command means.

    Every option that names a run asks this one function (``--run``, ``--resume``,
    ``--init-from``, ``info RUN``, ``export RUN``, ``serve RUN...``), so a name means the
    same everywhere and a mistyped one gets the same "did you mean".

    Args:
        run: A run folder, a run's name under ``runs_dir``, a folder of runs (its newest), or
            None (the newest under ``runs_dir``).
        runs_dir: The folder of runs.
        flag: The option that names a run folder, for the message when there is none.

    Returns:
        The run folder: it holds a config.toml.

    Raises:
        CharLMError: no such folder (with the runs there and the likeliest meant), no run in
            it, or a folder that is not a run.
    """
    if run:
        path = named_run(run, runs_dir, flag)
        if not (path / CONFIG).exists() and (path / LATEST).is_symlink():
            path = newest_run(path) or path  # a folder of runs, e.g. the --runs-dir of a train
    else:
        newest = newest_run(Path(runs_dir))
        if newest is None:
            verb = "to resume" if flag == "--resume" else "found"
            raise CharLMError(
                f"no run {verb} in {runs_dir}/; train one first with `charlm "
                f"train CORPUS`, or name the run folder: {flag} DIR"
            )
        path = newest
    if not (path / CONFIG).is_file():
        raise CharLMError(
            f"{path}: not a charlm run (no {CONFIG}); name a run folder "
            "written by `charlm train`, or a folder of runs"
        )
    return path


def newest_run(runs_dir: Path) -> Path | None:
    """The run ``runs_dir/latest`` points at or, if there is no such link of charlm's or its
    run was deleted or is incomplete, the complete run written most recently (relative to the
    working folder if inside it); None if there is none."""
    link = runs_dir / LATEST
    path = real_path(link) if is_our_link(link) else None
    if path is None or not path.exists() or is_incomplete(path):
        try:
            runs = [real_path(p) for p in runs_dir.iterdir() if _may_be_run(p)]
        except OSError:
            return None
        runs = [p for p in runs if is_complete_run(p)]
        if not runs:
            return None
        path = max(runs, key=lambda p: (p / CONFIG).stat().st_mtime)
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def _may_be_run(path: Path) -> bool:
    return path.name != LATEST and not path.name.startswith(".") and path.is_dir()


def is_complete_run(path: Path) -> bool:
    """A run that has reached its first checkpoint (or was made before runs had markers)."""
    return (path / CONFIG).is_file() and not is_incomplete(path)


def is_incomplete(path: Path) -> bool:
    """Claimed by ``charlm train`` and not yet at its first checkpoint of a trained step."""
    return (Path(path) / INCOMPLETE).exists()


def incomplete_reason(path: Path) -> str:
    """Why the incomplete run ``path`` is so: still training, or stopped."""
    pid = RunLock.holder(path)
    if pid is not None:
        return f"{holder_name(pid)} trains it and has not reached its first checkpoint"
    return "its training stopped before its first checkpoint"


# -- a new run ------------------------------------------------------------------------------------


def claim_run_folder(cfg: Config, force: bool = False, log=print) -> tuple[Path, RunLock]:
    """A new run folder for ``cfg`` (``cfg.name``, or the time and model, under
    ``cfg.runs_dir``), marked incomplete and locked by this process. Of two processes that
    claim one name, exactly one gets it. An existing folder is taken over only when it is an
    incomplete run no process trains, or (``force``) a run no process trains; anything else
    is refused before it is touched, so that a typo never deletes a folder that is not a run."""
    if not cfg.name:
        path = _new_name(Path(cfg.runs_dir), f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.model}")
        return path, _take_free(path, force)
    path = Path(cfg.runs_dir) / cfg.name
    path.mkdir(parents=True, exist_ok=True)  # an OSError: the CLI says it in one line
    lock = _take_free(path, force) if _is_free(path) else _take_over(path, force, log)
    return path, lock


def _new_name(runs_dir: Path, stem: str) -> Path:
    """A folder under ``runs_dir`` made by this process alone: ``stem``, or ``stem-2``,
    ``stem-3`` ... when runs started in the same second took the names before (``mkdir``
    fails for all but one claimant of a name, so the first free one is this process's)."""
    runs_dir.mkdir(parents=True, exist_ok=True)  # an OSError: the CLI says it in one line
    for n in range(1, 10_000):
        path = runs_dir / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise CharLMError(f"{runs_dir}: 10,000 runs named {stem}*; choose a --name")


def _is_free(path: Path) -> bool:
    """Empty, or holding only a lock file (of a claim that stopped right after making it)."""
    return not (set(os.listdir(path)) - {LOCK_FILE})


def _take_free(path: Path, force: bool) -> RunLock:
    """The lock of the free folder ``path``, marked incomplete: made anew (of two processes,
    one makes it), or taken (of two, one takes it); refused if another process filled the
    folder meanwhile."""
    try:
        lock = RunLock.take(path, new=True)
    except FileExistsError:
        lock = RunLock.take(path)
    try:
        if not _is_free(path):
            raise CharLMError(_refusal(path, force, held=True) or busy(path, None))
        _mark_incomplete(path)
    except BaseException:
        lock.release()
        raise
    return lock


def _mark_incomplete(path: Path) -> None:
    atomic_write(path / INCOMPLETE, MARKER_TEXT.format(name=path.name))


def _take_over(path: Path, force: bool, log) -> RunLock:
    """The lock of the existing folder ``path``, emptied but for it and the marker, when it
    may be replaced (:func:`claim_run_folder`); else the one line why not."""
    _replaceable(path, force)  # refused before the lock file is touched
    lock = RunLock.take(path)
    try:
        note = _replaceable(path, force, held=True)  # again: another process may have finished it
        _mark_incomplete(path)  # first: a crash while emptying leaves an incomplete run
        for entry in path.iterdir():
            if entry.name not in (LOCK_FILE, INCOMPLETE):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    except BaseException:
        lock.release()
        raise
    if note:
        log(note)
    return lock


def _replaceable(path: Path, force: bool, held: bool = False) -> str | None:
    """None or a note when the folder ``path`` may be replaced; raises the refusal if not."""
    refusal = _refusal(path, force, held)
    if refusal:
        raise CharLMError(refusal)
    if is_incomplete(path):
        return f"replacing {path}: its training stopped before its first checkpoint"
    return None


def _refusal(path: Path, force: bool, held: bool = False) -> str | None:
    """Why the existing folder ``path`` may not become a new run, or None (``held``: its lock
    is this process's)."""
    pid = None if held else RunLock.holder(path)
    if pid is not None:
        return busy(path, pid)
    if not path.is_dir() or (not (path / CONFIG).is_file() and not is_incomplete(path)):
        if not force:
            return f"{path} already exists and is not a charlm run; choose another --name"
        return f"{path} is not a charlm run; --force replaces only runs; choose another --name"
    if not force and not is_incomplete(path):
        return (
            f"{path} already holds a run; pass --resume to continue it, "
            "--force to replace it, or choose another --name"
        )
    return None


# -- latest ---------------------------------------------------------------------------------------


def complete_run(path: Path, log=print) -> bool:
    """The run ``path`` has its first checkpoint: remove its marker and point ``latest`` at it.
    True if it was incomplete."""
    marker = Path(path) / INCOMPLETE
    if not marker.exists():
        return False
    marker.unlink()
    fsync_dir(path)
    mark_latest(path, log)
    return True


def is_our_link(link: Path) -> bool:
    """``link`` is charlm's ``latest``: a symbolic link to a name in its own folder."""
    return link.is_symlink() and os.sep not in os.readlink(link)


def mark_latest(path: Path, log=print) -> None:
    """Point ``latest`` beside the complete run ``path`` at it (atomically, by renaming a new
    symlink), unless a file of that name is there that is not charlm's link: it is left as it
    is (``log`` says so)."""
    link = path.parent / LATEST
    if is_incomplete(path):
        return
    if os.path.lexists(link) and not is_our_link(link):
        log(f"note: {link} was not updated: a file of that name is there that is not charlm's")
        return
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
    if is_our_link(link) and real_path(link) == real_path(path):
        link.unlink()


def export_target(run: Path, fmt: str, out=None, force: bool = False) -> Path:
    """The folder ``charlm export`` writes: ``out``, or ``RUN/export/FORMAT``; an existing one
    is refused unless ``force`` (which replaces only a folder). Asked before TensorFlow loads
    (the CLI) and again by the export itself.

    Raises:
        CharLMError: the folder exists, or ``out`` is empty, in one line with the way out.
    """
    if out is not None and not str(out).strip():
        raise CharLMError("--out is empty; name the folder to write, or leave --out out")
    final = Path(out) if out is not None else Path(run) / "export" / fmt
    if final.exists() and not (force and final.is_dir()):
        how = "pass --force to replace it, or " if final.is_dir() else ""
        raise CharLMError(f"{final} already exists; {how}choose another --out")
    return final
