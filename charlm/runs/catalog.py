"""What the run folders hold, read without TensorFlow: ``charlm runs`` lists a folder of
runs, ``charlm info`` describes one::

    rows = list_runs("runs")
    print(format_runs(rows))

    NAME                  MODEL      PARAMS  STEPS  TIME   BEST VAL  BITS/CHAR  FROM  STATUS
    20261124-042300-lstm  lstm 1x64  23,713    150    21s    2.4120     3.4798  -     finished

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
import json
import time
from pathlib import Path

from ..errors import CharLMError
from ..metrics import LN2, number
from .folders import incomplete_reason, newest_run
from .rundir import RunDir

METRIC_ROWS = 5  # the last rows of metrics.csv that `charlm info` shows
TOP_CHARS = 10  # the most frequent characters that `charlm info` shows
COLUMNS = [
    ("name", "NAME", "<"),
    ("size", "MODEL", "<"),
    ("parameters", "PARAMS", ">"),
    ("steps", "STEPS", ">"),
    ("seconds_trained", "TIME", ">"),
    ("best_val_loss", "BEST VAL", ">"),
    ("best_bits_per_char", "BITS/CHAR", ">"),
    ("origin", "FROM", "<"),
    ("status", "STATUS", "<"),
]


# -- a folder of runs ----------------------------------------------------------------------------


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
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and p.name != "latest"
    ]


def run_names(runs_dir) -> list[str]:
    """The names of the runs under ``runs_dir``, for shell completion (never raises)."""
    try:
        return sorted(p.name for p in run_folders(runs_dir) if (p / "config.toml").is_file())
    except (CharLMError, OSError):
        return []


def list_runs(runs_dir) -> list[dict]:
    """One summary (:func:`summarise`) per folder under ``runs_dir``, newest first."""
    newest = newest_run(Path(runs_dir))
    newest = newest.resolve() if newest is not None else None
    folders = sorted(run_folders(runs_dir), key=lambda p: (_created(p), p.name), reverse=True)
    rows = [summarise(p) for p in folders]
    for row, path in zip(rows, folders, strict=True):
        row["latest"] = path.resolve() == newest
    return rows


def summarise(path) -> dict:
    """What a run is and how far it got: a dict of plain data (the row of `charlm runs`).
    A folder that is not a readable run gets ``status`` "broken" and a ``note`` saying why."""
    run = RunDir(path)
    row = {
        "name": run.path.name,
        "path": str(run.path),
        "model": None,
        "size": None,
        "parameters": None,
        "steps": None,
        "seconds_trained": None,
        "best_val_loss": None,
        "best_bits_per_char": None,
        "origin": None,
        "status": "broken",
        "started": _started(run.path),
        "note": None,
    }
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


# -- as text ---------------------------------------------------------------------------------------


def format_runs(rows: list[dict]) -> str:
    """The table `charlm runs` prints (broken runs: the note in the status column)."""
    cells = [[title for _, title, _ in COLUMNS]]
    for row in rows:
        cells.append([_cell(key, row) for key, _, _ in COLUMNS])
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS) - 1)]
    lines = []
    for r in cells:
        parts = [
            f"{c:{align}{w}}"
            for c, w, (_, _, align) in zip(r[:-1], widths, COLUMNS[:-1], strict=True)
        ]
        lines.append("  ".join([*parts, r[-1]]).rstrip())
    return "\n".join(lines)


def _cell(key: str, row: dict) -> str:
    value = row.get(key)
    if key == "name" and row.get("latest"):
        return f"{value} (latest)"
    if key == "status" and row.get("note"):
        return f"{value}: {row['note']}"
    if value is None:
        return "?" if key == "parameters" or row["status"] == "broken" else "-"
    if key == "origin":
        return f"{value.get('name')}@{value.get('step')}"
    if key == "seconds_trained":
        return format_duration(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def format_duration(seconds: float) -> str:
    """``1h02m``, ``3m07s`` or ``12s``.

    >>> format_duration(3725), format_duration(187.4), format_duration(12.2)
    ('1h02m', '3m07s', '12s')
    """
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


# -- one run ---------------------------------------------------------------------------------------


def describe(path) -> dict:
    """Everything `charlm info` shows about the run in ``path``, as plain data: its summary,
    settings, vocabulary (with the most frequent characters of the held-out text, counted
    from val.txt: the run keeps no training text), corpus sizes and hashes, and the last
    rows of its metrics."""
    run = RunDir(path)
    cfg = run.read_config()  # a run whose settings cannot be read is an error, not a row
    info = summarise(run.path)
    info["settings"] = cfg.to_dict()
    info["corpus"] = _corpus_info(run)
    info["vocabulary"] = _vocabulary(run)
    rows = run.read_metrics()
    info["metrics"] = {"rows": len(rows), "last": rows[-METRIC_ROWS:]}
    return info


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


def format_info(info: dict) -> str:
    """The text `charlm info` prints."""
    lines = [
        f"run:          {info['path']}",
        f"status:       {info['status']}" + (f": {info['note']}" if info["note"] else ""),
        f"model:        {info['size']}, {_cell('parameters', info)} parameters",
        f"trained:      {_cell('steps', info)} steps in {_cell('seconds_trained', info)}"
        + _best(info),
        *_origin_lines(info.get("origin")),
        *_corpus_lines(info["corpus"]),
        *_vocabulary_lines(info["vocabulary"]),
        "settings:",
        *[f"  {k} = {_setting(v)}" for k, v in info["settings"].items()],
        *_metrics_lines(info["metrics"]),
    ]
    return "\n".join(lines)


def _best(info: dict) -> str:
    if info["best_val_loss"] is None:
        return ", no validation yet"
    return (
        f", best val loss {info['best_val_loss']:.4f} nats/char "
        f"({info['best_bits_per_char']:.4f} bits/char)"
    )


def _origin_lines(origin: dict | None) -> list[str]:
    """The line naming the run this one started from (``--init-from``), if any."""
    if not origin:
        return []
    return [
        f"started from: {origin.get('run')}, its {origin.get('weights')} weights at step "
        f"{origin.get('step')}"
    ]


def _setting(value) -> str:
    return (
        json.dumps(value, ensure_ascii=False) if not isinstance(value, bool) else str(value).lower()
    )


def _corpus_lines(corpus: dict | None) -> list[str]:
    if not corpus:
        return ["corpus:       corpus.json is missing or unreadable"]
    return [
        f"corpus:       {corpus['train_chars']:,} training characters, sha256 "
        f"{corpus['train_sha256']}",
        f"              {corpus['val_chars']:,} held-out characters, sha256 {corpus['val_sha256']}",
    ]


def _vocabulary_lines(vocab: dict) -> list[str]:
    if vocab["size"] is None:
        return [f"vocabulary:   {vocab['note']}"]
    lines = [f"vocabulary:   {vocab['size'] - 1} characters + <unk>"]
    if vocab["most_frequent"]:
        shown = ", ".join(
            f"{json.dumps(c, ensure_ascii=False)} {100 * share:.1f}%"
            for c, share in vocab["most_frequent"]
        )
        lines.append(
            f"most frequent in the held-out text (val.txt, "
            f"{vocab['counted_chars']:,} chars): {shown}"
        )
    return lines


def _metrics_lines(metrics: dict) -> list[str]:
    if not metrics["rows"]:
        return ["metrics:      none yet (metrics.csv is empty)"]
    keys = [
        "step",
        "epoch",
        "train_loss",
        "val_loss",
        "val_bits_per_char",
        "chars_per_sec",
        "wall_time",
    ]
    shown = min(metrics["rows"], METRIC_ROWS)
    cells = [keys] + [[_metric(k, r.get(k)) for k in keys] for r in metrics["last"]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    return [
        f"metrics:      the last {shown} of {metrics['rows']} rows of metrics.csv",
        *["  " + "  ".join(f"{c:>{w}}" for c, w in zip(row, widths, strict=True)) for row in cells],
    ]


def _metric(key: str, value) -> str:
    x = number(value)
    if x is None:
        return "-"
    if key == "wall_time":
        return format_duration(x)
    return f"{x:,.0f}" if key in ("step", "epoch", "chars_per_sec") else f"{x:.4f}"
