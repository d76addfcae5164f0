"""``charlm train``: the training flags, made from Config's fields, checked before TensorFlow
loads, then one :class:`~charlm.api.launch.Launch` (the flags, and the launch of this process
that a ``--time-budget`` counts from) and one charlm.api.train_launch call.

    charlm train corpora/tinyshakespeare.txt --config configs/tiny.toml --time-budget 5m
    charlm train corpora/timemachine.txt --init-from runs/shakespeare --time-budget 2m
"""

from __future__ import annotations

import sys

import click

from ..api.families import checked
from ..errors import CharLMError
from ..fsio import to_stderr
from ..options.config import SECTIONS, WEIGHTS, Config
from ..say import is_detail
from .common import (
    Sectioned,
    complete_runs,
    config_options,
    find_run,
    quiet_tensorflow,
    user_errors,
)

# what the command returns once every file of its run is written: the charlm process may end
# at once, skipping the interpreter's teardown (charlm.cli.Main)
QUICK_EXIT = "quick exit"


@click.command(cls=Sectioned, sections=SECTIONS, first="Run")
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
@click.option(
    "--init-from",
    metavar="RUN",
    shell_complete=complete_runs,
    help="Start a new run from RUN's weights (a run folder, or a run's name under --runs-dir): "
    "its model shape, its vocabulary grown by the new text's characters, a fresh optimizer.",
)
@click.option(
    "--init-weights",
    type=click.Choice(WEIGHTS),
    default=None,
    help="Which of RUN's weights --init-from starts from: best (the lowest held-out loss; "
    "the default) or last.",
)
@click.option("--force", is_flag=True, help="Replace an existing run of the same --name.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Say why the recipe chose what it chose (by default: one line, its choice).",
)
@config_options
@click.pass_obj
@user_errors
def train(launched, paths, config_path, resume, init_from, init_weights, force, verbose, **options):
    """Train a model on CORPUS (files, folders, .zip, .gz, or - for stdin); with --init-from,
    keep training another run's model on it."""
    if init_weights and not init_from:
        raise CharLMError("--init-weights chooses the weights of --init-from RUN; name the RUN")

    overrides = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in options.items()
        if v is not None and v != ()
    }
    # check the flags (named as flags), the preset, then both together, before TensorFlow loads
    Config.from_dict(overrides)
    cfg = (Config.load(config_path) if config_path else Config()).replace(**overrides)
    if not (resume or init_from):  # their model is the run's: checked once that is read
        checked(cfg, config_path, overrides)
    named_runs(resume, init_from, cfg.runs_dir)
    if not resume:  # a missing corpus file, told before TensorFlow loads (3.6 s, Intel Xeon)
        from ..api.inputs import corpus_sources  # numpy: not at the command line's start

        corpus_sources(cfg.replace(paths=list(paths)) if paths else cfg)
    if cfg.strategy == "multi-worker":  # it must exist before TensorFlow's devices do
        quiet_tensorflow(devices=False)
        from ..api import at_startup

        at_startup(cfg)
    quiet_tensorflow()  # before anything imports TensorFlow, or its start-up chatter shows
    from ..api import TrainingInterrupted, train_launch
    from ..api.launch import Launch

    launch = Launch(
        paths=list(paths) or None,
        config=config_path,
        overrides=overrides,
        resume=(True if resume == "latest" else resume),
        force=force,
        init_from=init_from,
        init_weights=init_weights or "best",
        started=launched,  # from the group (charlm.cli): the start of this process
        log=to_stderr if verbose else without_details,  # fsio's, the default's
    )
    try:
        run = train_launch(launch)
    except TrainingInterrupted as e:
        click.echo(str(e), err=True)
        sys.exit(130 if e.signum == 2 else 143)
    say_done(run)
    return QUICK_EXIT  # every file of the run is written


def named_runs(resume, init_from, runs_dir: str) -> None:
    """The runs --resume and --init-from name, found (or one line) before TensorFlow loads."""
    if resume:
        find_run(None if resume == "latest" else resume, runs_dir, "--resume")
    if init_from:
        find_run(init_from, runs_dir, "--init-from")


def without_details(line: str) -> None:
    """stderr, the reasoning behind the recipe's choice left out (``-v`` shows it)."""
    if not is_detail(line):
        to_stderr(line)


def say_done(run) -> None:
    """The last line of ``charlm train`` (stderr): where the run is, its latest loss, and how
    to sample from it."""
    from ..api.catalog import baselines
    from .render import above_counting, counting

    rows = run.metrics()
    if rows:
        last, counted = rows[-1], baselines(run.path)  # corpus.json alone: no second read
        shown = float(last["val_loss"] or last["train_loss"])
        which = "val" if last["val_loss"] else "train"
        click.echo(
            f"done: {run.path}: step {last['step']}, {which} loss {shown:.4f} nats/char"
            f"{counting(counted) if last['val_loss'] else ''}. Sample with: charlm sample --run "
            f"{run.path}",
            err=True,
        )
        note = above_counting(counted, shown) if last["val_loss"] else ""
        if note:
            click.echo(note, err=True)
