"""Specification of charlm.training.plot: loss.png from the rows of metrics.csv."""

import math
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from charlm.training.plot import DPI, FIGSIZE, LN2, draw_losses, loss_points, plot_losses

# as read back from metrics.csv: strings, val_loss empty between validations
CSV_ROWS = [
    {"step": "0", "epoch": "0", "train_loss": "4.17", "val_loss": "4.16", "wall_time": "0.5"},
    {"step": "50", "epoch": "0", "train_loss": "3.10", "val_loss": "", "wall_time": "31"},
    {"step": "100", "epoch": "0", "train_loss": "2.55", "val_loss": "2.60", "wall_time": "62"},
    {"step": "150", "epoch": "1", "train_loss": "2.31", "val_loss": "", "wall_time": "93"},
    {"step": "200", "epoch": "1", "train_loss": "2.12", "val_loss": "2.25", "wall_time": "125"},
]
WIDTH, HEIGHT = round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI)


def png_size(path):
    """Width and height from the PNG's IHDR chunk."""
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_losses_writes_a_png_of_figsize_times_dpi_pixels(tmp_path):
    plot_losses(CSV_ROWS, tmp_path / "loss.png")
    assert png_size(tmp_path / "loss.png") == (WIDTH, HEIGHT)
    assert imread(tmp_path / "loss.png").shape[:2] == (HEIGHT, WIDTH)


def test_the_picture_has_curves_not_one_flat_colour(tmp_path):
    plot_losses(CSV_ROWS, tmp_path / "loss.png")
    pixels = imread(tmp_path / "loss.png")[..., :3].reshape(-1, 3)
    rgb = (pixels * 255).round().astype(np.int64)
    assert len(np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2])) > 20
    blue = np.array([0x1F, 0x77, 0xB4]) / 255  # the train curve
    orange = np.array([0xFF, 0x7F, 0x0E]) / 255  # the validation curve
    assert (np.abs(pixels - blue).max(axis=1) < 0.02).sum() > 100
    assert (np.abs(pixels - orange).max(axis=1) < 0.02).sum() > 100


def test_numbers_work_as_well_as_strings(tmp_path):
    rows = [{k: float(v) if v else None for k, v in row.items()} for row in CSV_ROWS]
    plot_losses(rows, tmp_path / "loss.png")
    assert png_size(tmp_path / "loss.png") == (WIDTH, HEIGHT)


@pytest.mark.parametrize(
    "rows",
    [[], CSV_ROWS[:1], [{"step": "5", "train_loss": "3.0", "val_loss": ""}]],
    ids=["no rows", "one row", "no wall time"],
)
def test_a_run_that_has_just_started_still_gets_a_picture(tmp_path, rows):
    plot_losses(rows, tmp_path / "loss.png")
    assert png_size(tmp_path / "loss.png") == (WIDTH, HEIGHT)


def test_the_write_is_atomic_and_replaces_the_old_picture(tmp_path):
    path = tmp_path / "loss.png"
    path.write_bytes(b"old")
    plot_losses(CSV_ROWS, path)
    assert png_size(path) == (WIDTH, HEIGHT)
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]  # no temporary file left


def test_validation_points_are_only_the_rows_that_have_a_val_loss():
    assert loss_points(CSV_ROWS, "val_loss") == {
        "step": [0.0, 100.0, 200.0],
        "minutes": [0.5 / 60, 62 / 60, 125 / 60],
        "loss": [4.16, 2.60, 2.25],
    }
    assert len(loss_points(CSV_ROWS, "train_loss")["loss"]) == 5


def test_the_left_panel_is_against_step_and_the_right_against_minutes():
    step_ax, time_ax = draw_losses(CSV_ROWS).axes
    assert (step_ax.get_xlabel(), time_ax.get_xlabel()) == ("step", "training time (minutes)")
    assert step_ax.lines[0].get_xdata().tolist() == [0, 50, 100, 150, 200]
    assert time_ax.lines[0].get_xdata().tolist() == pytest.approx(
        [0.5 / 60, 31 / 60, 62 / 60, 93 / 60, 125 / 60]
    )


def test_the_right_axis_reads_the_same_losses_in_bits_per_char():
    fig = draw_losses(CSV_ROWS)
    FigureCanvasAgg(fig).draw()
    step_ax, time_ax = fig.axes
    (bits,) = time_ax.child_axes
    assert step_ax.get_ylabel() == "loss (nats/char)" and bits.get_ylabel() == "loss (bits/char)"
    assert bits.get_ylim() == pytest.approx(tuple(y / LN2 for y in time_ax.get_ylim()))


def test_the_title_gives_the_best_validation_loss_in_both_units():
    assert draw_losses(CSV_ROWS).get_suptitle() == (
        f"best validation loss 2.2500 nats/char ({2.25 / math.log(2):.4f} bits/char) at step 200"
    )
    assert draw_losses(CSV_ROWS, title="run x").get_suptitle() == "run x"


def test_drawing_leaves_pyplot_and_the_global_backend_alone(tmp_path):
    code = (
        "import sys, matplotlib; before = matplotlib.get_backend(); "
        "from charlm.training.plot import plot_losses; "
        f"plot_losses([{{'step': 1, 'train_loss': 2.0, 'val_loss': 2.1, 'wall_time': 9}}], {str(tmp_path / 'l.png')!r}); "
        "print('matplotlib.pyplot' in sys.modules, matplotlib.get_backend() == before)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MPLBACKEND": "svg"},
    ).stdout
    assert out.split() == ["False", "True"]
