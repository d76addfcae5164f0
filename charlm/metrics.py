"""The numbers of metrics.csv, written and read one way: its columns, a value as a cell, a
cell as a float, and nats as bits.

``charlm info`` and ``charlm runs`` (charlm.runs.catalog) and the loss picture
(charlm.training.plot) read the same file; what counts as a number is decided here.

    >>> cell(0.123456789), cell(None), cell(12)
    ('0.123457', '', 12)
    >>> number("2.5"), number(""), number("nan"), number(None), number(3)
    (2.5, None, None, None, 3.0)
    >>> round(number("0.6931471805599453") / LN2, 6)   # nats per character to bits
    1.0
"""

from __future__ import annotations

import math
from typing import Any

LN2 = math.log(2)  # a loss in nats / LN2 = bits

# The columns of metrics.csv, one row per validation: the run folder writes them
# (charlm.runs.rundir) and TensorBoard logs the same values (charlm.training.monitor).
FIELDS = (
    "step",
    "epoch",
    "train_loss",
    "train_perplexity",
    "val_loss",
    "val_perplexity",
    "val_bits_per_char",
    "chars_per_sec",
    "lr",
    "grad_norm",
    "wall_time",
)
COUNTERS = ("step", "epoch", "wall_time")  # where a row stands, not a value to chart


def cell(value: Any) -> Any:
    """A row's value as metrics.csv keeps it: a float to 6 significant digits, None as an
    empty cell, anything else as it is (the csv writer makes it text)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def number(value: Any) -> float | None:
    """A metrics.csv cell as a float; None for an empty or missing cell, text that is no
    number, a NaN or an infinity (a row written without that metric, or a diverged loss)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
