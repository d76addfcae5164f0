"""``charlm train``: the training flags, made from Config's fields, checked before TensorFlow
loads, then one charlm.api.train call.

    charlm train corpora/tinyshakespeare.txt --config configs/tiny.toml --time-budget 5m
"""

from __future__ import annotations

import sys

import click

from ..config import Config
from .common import complete_runs, config_options, quiet_tensorflow, user_errors


@click.command()
@click.argument("paths", nargs=-1, metavar="CORPUS...")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="A TOML preset (e.g. configs/tiny.toml); flags override it.",
)
@click.option(
    "--resume",
    is_flag=False,
    flag_value="latest",
    default=None,
    metavar="[RUN]",
    shell_complete=complete_runs,
    help="Continue a run (the newest if no folder is named).",
)
@click.option("--force", is_flag=True, help="Replace an existing run of the same --name.")
@config_options
@user_errors
def train(paths, config_path, resume, force, **options):
    """Train a model on CORPUS (files, folders, .zip, .gz, or - for stdin)."""
    from . import LAUNCHED  # read at each call: the launch of this command

    overrides = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in options.items()
        if v is not None and v != ()
    }
    # check the flags (named as flags), the preset, then both together, before TensorFlow loads
    Config.from_dict(overrides, source="")
    cfg = (Config.load(config_path) if config_path else Config()).replace(**overrides)
    if cfg.strategy == "multi-worker":  # it must exist before TensorFlow's devices do
        quiet_tensorflow(devices=False)
        from ..training.distribute import at_startup

        at_startup(cfg)
    quiet_tensorflow()  # before anything imports TensorFlow, or its start-up chatter shows
    from ..api import train as train_run
    from ..training.trainer import TrainingInterrupted

    try:
        run = train_run(
            list(paths) or None,
            config=config_path,
            resume=(True if resume == "latest" else resume),
            force=force,
            started=LAUNCHED,
            **overrides,
        )
    except TrainingInterrupted as e:
        click.echo(str(e), err=True)
        sys.exit(130 if e.signum == 2 else 143)
    say_done(run)


def say_done(run) -> None:
    """The last line of ``charlm train`` (stderr): where the run is, its latest loss, and how
    to sample from it."""
    rows = run.metrics()
    if rows:
        last = rows[-1]
        shown = last["val_loss"] or last["train_loss"]
        which = "val" if last["val_loss"] else "train"
        click.echo(
            f"done: {run.path} (step {last['step']}, {which} loss {float(shown):.4f} "
            f"nats/char). Sample with: charlm sample --run {run.path}",
            err=True,
        )
