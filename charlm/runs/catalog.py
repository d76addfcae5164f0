"""What the run folders hold, read without TensorFlow, as plain data: ``charlm runs`` lists a
folder of runs (:func:`list_runs`), ``charlm info`` describes one (:func:`describe`), the
server's ``/v1/models`` summarises each (:func:`summarise`); the command line renders them as
text (:mod:`charlm.cli.render`)::

    rows = list_runs("runs")    # [{"name": ..., "size": "lstm 1x64", "steps": 150, ...}]

A run started from another's weights (``charlm train --init-from``) names it in FROM, as
``name@step`` of the weights it started from.

A run's status: **finished** when training ended at its limit (``run.json``, written by
:class:`charlm.training.monitor.RunRecord`), **resumable** when it has a checkpoint but did not reach
its limit (interrupted, crashed, or still training), **incomplete** while a new run has not
reached its first checkpoint (being trained, or stopped: the note says which; no command takes
it for the newest run), **no checkpoint** when a run has none. Folders that are not readable
runs are listed with a note, never skipped.
"""

from __future__ import annotations

import collections
import csv
import os
import time
from pathlib import Path
from typing import Any

from ..errors import CharLMError
from ..fsio import real_path
from ..metrics import LN2, number
from .folders import incomplete_reason, newest_run, run_folders
from .rundir import RunDir

METRIC_ROWS = 5  # the last rows of metrics.csv that `charlm info` shows
TOP_CHARS = 10  # the most frequent characters that `charlm info` shows
# the keys of a run's summary (the row of `charlm runs`), in the order it is printed
ROW_KEYS = (
    "name",
    "path",
    "model",
    "size",
    "parameters",
    "steps",
    "seconds_trained",
    "best_val_loss",
    "best_bits_per_char",
    "bigram",
    "unigram",
    "origin",
    "status",
    "started",
    "note",
)


# -- a folder of runs ----------------------------------------------------------------------------


def list_runs(runs_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """What ``charlm runs`` lists: every folder in a folder of runs.

    Args:
        runs_dir: The folder of runs.

    Returns:
        One summary (:func:`summarise`) per folder, newest first, each with ``latest``:
        whether it is the run ``latest`` means.

    Raises:
        CharLMError: ``runs_dir`` is no folder, or cannot be listed.
    """
    newest = newest_run(Path(runs_dir))
    newest = real_path(newest) if newest is not None else None
    folders = sorted(run_folders(runs_dir), key=lambda p: (_created(p), p.name), reverse=True)
    rows = [summarise(p) for p in folders]
    for row, path in zip(rows, folders, strict=True):
        row["latest"] = real_path(path) == newest
    return rows


def summarise(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What a run is and how far it got (never raises for a damaged run).

    Args:
        path: The run folder.

    Returns:
        The row of ``charlm runs`` (:data:`ROW_KEYS`), plain data. A folder that is not a
        readable run gets ``status`` "broken" and a ``note`` saying why.
    """
    run = RunDir(path)
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)  # None until known
    row.update(name=run.path.name, path=str(run.path), status="broken", started=_started(run.path))
    if not (run.path / "config.toml").is_file():
        if run.incomplete():  # claimed a moment ago: its files are still to come
            row.update(status="incomplete", note=incomplete_reason(run.path))
        else:
            row["note"] = "not a charlm run (no config.toml)"
        return row
    try:
        cfg = run.read_config()
        rows = run.read_metrics()
        steps, state = _steps(run, rows), status(run)
    except (CharLMError, OSError, ValueError, csv.Error) as e:
        row["note"] = str(e)
        return row
    best = _best_val_loss(rows)
    row.update(
        model=cfg.model,
        size=f"{cfg.model} {cfg.layers}x{cfg.units}",
        parameters=run.read_record().get("parameters"),
        steps=steps,
        seconds_trained=number(rows[-1].get("wall_time")) if rows else 0.0,
        best_val_loss=best,
        best_bits_per_char=best / LN2 if best is not None else None,
        origin=_origin(run.read_record()),
        status=state,
        **baselines(run.path),
    )
    if row["status"] == "incomplete":
        row["note"] = incomplete_reason(run.path)
    return row


def _origin(record: dict) -> dict | None:
    """The run this one started from, as run.json keeps it (None if none, or not readable)."""
    origin = record.get("origin")
    return origin if isinstance(origin, dict) else None


def status(run: RunDir) -> str:
    """finished, resumable, incomplete or no checkpoint (see the module's docstring)."""
    if run.incomplete():
        return "incomplete"
    if run.read_record().get("finished") is True:
        return "finished"
    return "resumable" if run.checkpoints() else "no checkpoint"


def _steps(run: RunDir, rows: list[dict]) -> int:
    """Steps trained: the newest checkpoint's, else the last metrics row's."""
    checkpoints = run.checkpoints()
    if checkpoints:
        return checkpoints[-1][0]
    return int(rows[-1]["step"]) if rows else 0


def _best_val_loss(rows: list[dict]) -> float | None:
    losses = [v for v in (number(r.get("val_loss")) for r in rows) if v is not None]
    return min(losses) if losses else None


def _created(path: Path) -> float:
    """When the run was created: its vocabulary is written once, first (else the folder's time)."""
    for name in ("vocab.json", "config.toml", "."):
        try:
            return (path / name).stat().st_mtime
        except OSError:
            continue
    return 0.0


def _started(path: Path) -> str:
    """:func:`_created` as local ISO time."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(_created(path)))


# -- one run ---------------------------------------------------------------------------------------


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Everything ``charlm info`` shows about a run, as plain data.

    Args:
        path: The run folder.

    Returns:
        Its summary (:func:`summarise`) with ``settings``, ``vocabulary`` (with the most
        frequent characters of the held-out text, counted from val.txt: the run keeps no
        training text), ``corpus`` (sizes and hashes) and ``metrics`` (its last rows).

    Raises:
        CharLMError: its config, corpus.json or metrics.csv cannot be read.
    """
    run = RunDir(path)
    cfg = run.read_config()  # a run whose settings cannot be read is an error, not a row
    info = summarise(run.path)
    info["settings"] = cfg.to_dict()
    info["corpus"] = _corpus_info(run)
    info["vocabulary"] = _vocabulary(run)
    rows = run.read_metrics()
    info["metrics"] = {"rows": len(rows), "last": rows[-METRIC_ROWS:]}
    return info


def baselines(path: str | os.PathLike[str]) -> dict:
    """What counting scores on the held-out text of the run in ``path``: ``{"bigram":
    nats/char, "unigram": nats/char}`` from corpus.json (None each for a run made before
    charlm counted them, or whose corpus.json is missing or damaged)."""
    try:
        counted = (RunDir(path).corpus_info(missing_ok=True) or {}).get("baselines") or {}
    except CharLMError:
        counted = {}
    return {k: number(counted.get(k)) for k in ("bigram", "unigram")}


def _corpus_info(run: RunDir) -> dict | None:
    """corpus.json, None if the run has none; a damaged one is an error (it names the file)."""
    return run.corpus_info(missing_ok=True)


def _vocabulary(run: RunDir) -> dict:
    """The vocabulary's size and the most frequent characters of the held-out text."""
    try:
        size = len(run.read_vocab())
    except CharLMError as e:
        return {"size": None, "note": str(e), "most_frequent": []}
    text = run.read_val_text(missing_ok=True)  # a damaged one is an error (it names the file)
    counts = collections.Counter(text).most_common(TOP_CHARS)
    return {
        "size": size,
        "note": None,
        "counted_chars": len(text),
        "most_frequent": [[c, n / len(text)] for c, n in counts],
    }
