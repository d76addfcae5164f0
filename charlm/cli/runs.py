"""The commands that read runs: ``runs`` (the list), ``info`` (one run) and ``eval`` (a run's
loss on a text).

    charlm runs --json
    charlm info runs/tiny
    charlm eval --run runs/tiny corpora/tinyshakespeare.txt --window 256
"""

from __future__ import annotations

import json

import click

from ..options.config import CHOICES
from .common import (
    RUN_OPTION,
    RUNS_DIR_OPTION,
    count_option,
    find_run,
    json_option,
    one_run,
    quiet_tensorflow,
    run_argument,
    user_errors,
    weights_option,
)


@click.command()
@RUNS_DIR_OPTION
@json_option("Print a JSON list, one object per run.")
@user_errors
def runs(runs_dir, as_json):
    """List the runs under --runs-dir, newest first: model, parameters, steps, training time,
    best val loss, and whether each finished or can be resumed."""
    from ..api.catalog import list_runs
    from .render import format_runs

    rows = list_runs(runs_dir)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
    elif rows:
        click.echo(format_runs(rows))
    else:
        click.echo(f"no runs in {runs_dir}/ yet; train one with `charlm train CORPUS`", err=True)


@click.command()
@run_argument
@RUNS_DIR_OPTION
@json_option()
@user_errors
def info(run_path, run_option, runs_dir, as_json):
    """Describe RUN (default: the newest): its settings, vocabulary, corpus and latest metrics."""
    from ..api.catalog import describe, resolve_run
    from .render import format_info

    described = describe(resolve_run(one_run(run_path, run_option), runs_dir))
    click.echo(
        json.dumps(described, ensure_ascii=False, indent=1) if as_json else format_info(described)
    )


@click.command(name="eval")
@click.argument("files", nargs=-1, metavar="[FILE...]")
@RUN_OPTION
@RUNS_DIR_OPTION
@weights_option()
@click.option(
    "--perplexity",
    is_flag=True,
    help="Score the run's held-out text (the default when no FILE is named).",
)
@count_option("--batch-size", 64, 1, help="Streams scored side by side.")
@count_option(
    "--seq-len",
    256,
    1,
    help="Characters per call; the state is carried between calls (a transformer's: the "
    "key/value cache of its last --context characters, a sliding window).",
)
@count_option(
    "--window",
    0,
    0,
    help="Score in independent N-character windows, each from a zero state (what a "
    "block-N transformer sees); 0 carries the state through the whole text.",
)
@click.option("--encoding", default=None, help="Encoding of FILE (default: the run's).")
@click.option(
    "--errors",
    type=click.Choice(CHOICES["errors"]),
    default=None,
    help="Invalid bytes in FILE: strict, replace or ignore (default: the run's).",
)
@json_option()
@user_errors
def eval_(
    files,
    run_path,
    runs_dir,
    weights,
    perplexity,
    batch_size,
    seq_len,
    window,
    encoding,
    errors,
    as_json,
):
    """Mean nats/char, bits/char and perplexity of a run on FILE(s) or its held-out text."""
    run_path = find_run(run_path, runs_dir)
    quiet_tensorflow()
    from ..api import load

    run = load(run_path, runs_dir=runs_dir, weights=weights)
    result = run.evaluate(
        paths=list(files) or None,
        batch_size=batch_size,
        seq_len=window or seq_len,
        carry_state=not window,
        encoding=encoding,
        errors=errors,
    )
    result = {
        "run": str(run.path),
        "text": ", ".join(files) if files else "held-out (val.txt)",
        "state": f"reset every {window} characters" if window else "carried",
        **result,
    }
    click.echo(json.dumps(result) if as_json else format_eval(result))


def format_eval(result: dict) -> str:
    """``charlm eval``'s report for a person: one figure a line, the values aligned."""
    return (
        f"run:                {result['run']}\n"
        f"text:               {result['text']}\n"
        f"state:              {result['state']}\n"
        f"nats/char:          {result['nats_per_char']:.4f}\n"
        f"bits/char:          {result['bits_per_char']:.4f}\n"
        f"perplexity:         {result['perplexity']:.4f}\n"
        f"characters scored:  {result['chars']}\n"
        f"unknown characters: {result['unknown_chars']}"
    )
