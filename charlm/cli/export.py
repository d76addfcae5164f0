"""``charlm export``: a run as a SavedModel that generates text, or a one-step TFLite model,
for use without charlm (charlm.use.export).

    charlm export runs/tiny --format tflite --out tiny-tflite
"""

from __future__ import annotations

import click

from .common import (
    RUNS_DIR_OPTION,
    count_option,
    find_run,
    one_run,
    quiet_tensorflow,
    run_argument,
    user_errors,
    weights_option,
)


@click.command(name="export")
@run_argument
@RUNS_DIR_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["savedmodel", "tflite"]),
    default="savedmodel",
    show_default=True,
    help="savedmodel: strings in, generated strings out, sampling in the graph; "
    "tflite: one step, ids and state in, logits and state out.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder to write (default: RUN/export/FORMAT); refused if it exists.",
)
@weights_option("Which saved weights to export.")
@count_option("--batch-size", 1, 1, help="tflite: rows per step (a TFLite model's batch is fixed).")
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@user_errors
def export(run_path, run_option, runs_dir, fmt, out, weights, batch_size, force):
    """Export RUN (default: the newest) for use without charlm: a SavedModel that generates
    text, or a one-step TFLite model."""
    from ..api.catalog import export_target

    run_path = find_run(one_run(run_path, run_option), runs_dir)
    export_target(run_path, fmt, out, force)  # an existing folder: said before TensorFlow loads
    quiet_tensorflow()
    from ..api import load

    path = load(run_path, weights=weights).export(fmt, out=out, force=force, batch_size=batch_size)
    click.echo(f"exported {run_path} ({weights} weights) as {fmt}: {path}", err=True)
