"""Loss curves of a run, drawn as ``loss.png`` from the rows of its ``metrics.csv``.

Two panels side by side share one loss axis: train and validation loss against the step
(left) and against training time in minutes (right). Loss is in nats per character on the
left edge and in bits per character (nats / ln 2) on the right edge; the best validation
loss is starred::

    >>> rows = [{"step": "100", "train_loss": "2.1", "val_loss": "", "wall_time": "30"},
    ...         {"step": "200", "train_loss": "1.8", "val_loss": "1.9", "wall_time": "61"}]
    >>> path = getfixture("tmp_path") / "loss.png"
    >>> plot_losses(rows, path)
    >>> path.read_bytes()[1:4]
    b'PNG'

Headless: it draws on a ``matplotlib.figure.Figure`` with the Agg canvas and never imports
``pyplot`` or changes matplotlib's global backend or settings. No TensorFlow.
"""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..fsio import atomic_write
from ..metrics import LN2, number

FIGSIZE = (11.0, 4.0)  # inches
DPI = 100  # so loss.png is 1100 x 400 pixels
TRAIN_COLOR, VAL_COLOR = "tab:blue", "tab:orange"


def loss_points(rows, loss: str) -> dict[str, list[float]]:
    """The rows that have ``loss`` (``"train_loss"`` or ``"val_loss"``), as lists of
    ``step``, ``minutes`` (wall_time / 60, NaN where a row has none) and ``loss``.

    >>> loss_points([{"step": "10", "val_loss": "", "wall_time": "6"},
    ...              {"step": 20, "val_loss": 1.5, "wall_time": 12.0}], "val_loss")
    {'step': [20.0], 'minutes': [0.2], 'loss': [1.5]}
    """
    out: dict[str, list[float]] = {"step": [], "minutes": [], "loss": []}
    for row in rows:
        value, step = number(row.get(loss)), number(row.get("step"))
        if value is None or step is None:
            continue
        seconds = number(row.get("wall_time"))
        out["step"].append(step)
        out["minutes"].append(math.nan if seconds is None else seconds / 60)
        out["loss"].append(value)
    return out


def draw_losses(rows, *, title: str | None = None, figsize=FIGSIZE) -> Figure:
    """The figure :func:`plot_losses` writes (not yet rendered), for callers that want to
    show or change it.

    >>> fig = draw_losses([{"step": 1, "train_loss": 4.2, "val_loss": 4.1, "wall_time": 3}])
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['step', 'training time (minutes)']
    """
    fig = Figure(figsize=figsize, layout="constrained")
    by_step, by_time = fig.subplots(1, 2, sharey=True)
    train, val = loss_points(rows, "train_loss"), loss_points(rows, "val_loss")
    for ax, x in ((by_step, "step"), (by_time, "minutes")):
        _draw_curve(ax, train[x], train["loss"], "train", TRAIN_COLOR)
        _draw_curve(ax, val[x], val["loss"], "validation", VAL_COLOR)
        _star_best(ax, val[x], val["loss"])
        ax.grid(True, alpha=0.3)
    by_step.set_xlabel("step")
    by_time.set_xlabel("training time (minutes)")
    by_step.set_ylabel("loss (nats/char)")
    bits = by_time.secondary_yaxis("right", functions=(lambda nats: nats / LN2, lambda b: b * LN2))
    bits.set_ylabel("loss (bits/char)")
    if train["loss"] or val["loss"]:
        by_step.legend(loc="upper right")
    else:
        by_step.text(
            0.5, 0.5, "no losses logged yet", transform=by_step.transAxes, ha="center", va="center"
        )
    fig.suptitle(title or _summary(val["loss"], val["step"]))
    return fig


def _draw_curve(ax, x, y, label: str, color: str) -> None:
    """One loss curve; points marked while there are few enough to see them."""
    marker = "o" if len(x) <= 50 else None
    ax.plot(x, y, label=label, color=color, marker=marker, markersize=3, linewidth=1.2)


def _star_best(ax, x, y) -> None:
    """A star on the lowest validation loss."""
    if y:
        best = min(range(len(y)), key=y.__getitem__)
        ax.plot(
            [x[best]],
            [y[best]],
            marker="*",
            markersize=12,
            color=VAL_COLOR,
            markeredgecolor="black",
            linestyle="none",
        )


def _summary(val_loss: list[float], steps: list[float]) -> str:
    """The default title: the best validation loss, in both units, and its step."""
    if not val_loss:
        return "training loss"
    best = min(range(len(val_loss)), key=val_loss.__getitem__)
    return (
        f"best validation loss {val_loss[best]:.4f} nats/char "
        f"({val_loss[best] / LN2:.4f} bits/char) at step {steps[best]:,.0f}"
    )


def render_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, rendered by the Agg canvas."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def plot_losses(rows, path, *, title: str | None = None, dpi: int = DPI) -> None:
    """Draw the loss curves of ``rows`` (metrics.csv rows: dicts of strings or numbers with
    ``step``, ``train_loss``, ``val_loss`` (may be empty) and ``wall_time`` in seconds) and
    write them to ``path`` as a PNG, atomically: a crash leaves the old picture or the new.
    For a run::

        plot_losses(RunDir("runs/latest").read_metrics(), "runs/latest/loss.png")
    """
    atomic_write(path, render_png(draw_losses(rows, title=title), dpi))
