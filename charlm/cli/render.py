"""The facts of the run catalog (:mod:`charlm.runs.catalog`) as text for a person: the table
of ``charlm runs`` and the page of ``charlm info``::

    NAME                  MODEL      PARAMS  STEPS  TIME   BEST VAL  BITS/CHAR  FROM  STATUS
    20261124-042300-lstm  lstm 1x64  23,713    150    21s    2.4120     3.4798  -     finished
"""

from __future__ import annotations

import json

from ..metrics import number
from ..say import format_seconds

COLUMNS = [
    ("name", "NAME", "<"),
    ("size", "MODEL", "<"),
    ("parameters", "PARAMS", ">"),
    ("steps", "STEPS", ">"),
    ("seconds_trained", "TIME", ">"),
    ("best_val_loss", "BEST VAL", ">"),
    ("best_bits_per_char", "BITS/CHAR", ">"),
    ("bigram", "BIGRAM", ">"),
    ("origin", "FROM", "<"),
    ("status", "STATUS", "<"),
]


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
        return format_seconds(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


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
        f"({info['best_bits_per_char']:.4f} bits/char)" + counting(info)
    )


def counting(row: dict) -> str:
    """`` (bigram 2.72, unigram 3.35)``: what counting scores on the run's held-out text, to
    read a val loss beside ("" for a run that has no such figures)."""
    if row.get("bigram") is None or row.get("unigram") is None:
        return ""
    return f" (bigram {row['bigram']:.2f}, unigram {row['unigram']:.2f})"


def above_counting(row: dict, loss: float) -> str:
    """One line when ``loss`` is no better than the bigram count model ("" otherwise)."""
    if row.get("bigram") is None or loss <= row["bigram"]:
        return ""
    return (
        f"note: val loss {loss:.2f} is above the {row['bigram']:.2f} of a bigram count model "
        "(each character from the one before it): the model has not yet learnt what counting "
        "pairs knows; train longer (e.g. --time-budget 5m, or --resume with more --steps)"
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
    shown = len(metrics["last"])
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
        return format_seconds(x)
    return f"{x:,.0f}" if key in ("step", "epoch", "chars_per_sec") else f"{x:.4f}"


def format_report(report: dict) -> str:
    """One line for a person, from :meth:`NoveltyIndex.report`.

    >>> from charlm.novelty.index import NoveltyIndex
    >>> format_report(NoveltyIndex("to be or not to be").report("not to see", n=4))
    'longest copy 7 chars (line 1, column 10 of the training text): "not to "; 4 of 7 4-grams copied (57.1%)'
    """
    share = (
        f"{report['copied_ngrams']} of {report['ngrams']} {report['n']}-grams copied "
        f"({100 * report['copied_ngram_share']:.1f}%)"
    )
    if not report["longest_match"]:
        return f"no character of the sample occurs in the training text; {share}"
    text = report["longest_match_text"]
    shown = json.dumps(text if len(text) <= 60 else text[:57] + "...", ensure_ascii=False)
    return (
        f"longest copy {report['longest_match']} chars (line {report['line']}, column "
        f"{report['column']} of the training text): {shown}; {share}"
    )
