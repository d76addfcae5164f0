"""The ``charlm`` command: ``train``, ``sample`` and ``eval``.

Only option parsing lives here; each subcommand turns its options into library calls.
Problems the user can fix are printed as one line (``Error: ...``) with a non-zero exit.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time

import click

LAUNCHED = time.monotonic()  # a --time-budget counts from here: launch to exit

from .config import CHOICES, Config  # noqa: E402 (after LAUNCHED)
from .errors import CharLMError  # noqa: E402 (after LAUNCHED)
from .fsio import quiet_stderr  # noqa: E402 (after LAUNCHED)
from .sampling import SamplingOptions, check_num_samples  # noqa: E402 (after LAUNCHED)


def quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up chatter (CUDA probes, oneDNN notes) kept off stderr."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ notes; Python errors still raise
    with quiet_stderr():
        import tensorflow as tf

        tf.config.list_logical_devices()  # the CUDA probe prints here too
        import keras  # noqa: F401


def user_errors(fn):
    """Run a subcommand; a CharLMError becomes one line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CharLMError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            sys.exit(130)

    return wrapper


def find_run(run_path: str | None, runs_dir: str) -> str:
    """The run folder, its config and vocabulary checked before TensorFlow loads (a few seconds)."""
    from .runs.folders import resolve_run
    from .runs.rundir import RunDir

    run = RunDir(resolve_run(run_path, runs_dir))
    run.read_config()
    run.read_vocab()
    return str(run.path)


def field_options(record, skip=(), show_defaults: bool = False):
    """A decorator that adds one option per field of the dataclass ``record`` (``--seq-len``,
    ``--sample-prefix``, ``--top-k`` ...); the help, choices and flag names come from the field
    (charlm.config.setting). An option not typed is None (or ``()``), so that the record's
    defaults, or a preset's, apply; with ``show_defaults`` it is the field's default, shown in
    the help."""

    def decorate(fn):
        for f in reversed(dataclasses.fields(record)):
            if f.name not in skip:
                fn = click.option(
                    *_declarations(f), f.name, help=f.metadata["help"], **_kind(f, show_defaults)
                )(fn)
        return fn

    return decorate


def _declarations(f) -> list[str]:
    flag = f.metadata["flag"] or "--" + f.name.replace("_", "-")
    return [f"{flag}/--no-{flag[2:]}"] if f.type == "bool" else [flag, *f.metadata["aliases"]]


def _kind(f, show_defaults: bool) -> dict:
    """click's type and default for field ``f`` (its type is a string: annotations are lazy)."""
    if f.type in ("list[str]", "tuple[str, ...]"):
        return {"multiple": True}
    if f.type == "bool":
        return {"default": None}
    kind = (
        click.Choice(f.metadata["choices"])
        if f.metadata["choices"]
        else {"int": int, "int | None": int, "float": float}.get(f.type, str)
    )
    shown = show_defaults and f.default is not None  # None: its help says what it means
    return {"type": kind, "default": f.default if show_defaults else None, "show_default": shown}


config_options = field_options(Config, skip=("paths",))
sampling_options = field_options(SamplingOptions, show_defaults=True)


RUNS_DIR_OPTION = click.option(
    "--runs-dir",
    "--run-dir",
    "runs_dir",
    default="runs",
    show_default=True,
    help=Config.help("runs_dir"),
)


def complete_runs(ctx, param, incomplete: str):
    """Shell completion of a run folder: the runs under --runs-dir (as typed so far, else
    runs/), or folders when what is typed is no run's path."""
    from click.shell_completion import CompletionItem

    from .runs.catalog import run_names

    runs_dir = ctx.params.get("runs_dir") or "runs"
    paths = [os.path.join(runs_dir, name) for name in run_names(runs_dir)]
    found = [CompletionItem(p) for p in paths if p.startswith(incomplete)]
    return found or [CompletionItem(incomplete, type="dir")]


RUN_OPTION = click.option(
    "--run",
    "run_path",
    shell_complete=complete_runs,
    help="Run folder, or a folder of runs for its newest (default: the newest under --runs-dir).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="charlm")
def main():
    """charlm: train character-level language models, sample from them, measure them."""


@main.command()
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
    overrides = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in options.items()
        if v is not None and v != ()
    }
    # check the flags (named as flags), the preset, then both together, before TensorFlow loads
    Config.from_dict(overrides, source="")
    cfg = (Config.load(config_path) if config_path else Config()).replace(**overrides)
    if cfg.strategy == "multi-worker":  # it must exist before TensorFlow's devices do
        from .training.distribute import at_startup

        at_startup(cfg.strategy)
    quiet_tensorflow()  # before anything imports TensorFlow, or its start-up chatter shows
    from .api import train as train_run
    from .training.trainer import TrainingInterrupted

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


@main.command()
@RUN_OPTION
@RUNS_DIR_OPTION
@click.option(
    "--weights",
    type=click.Choice(["best", "last"]),
    default="best",
    show_default=True,
    help="Which saved weights to use.",
)
@click.option(
    "--prefix",
    "prefixes",
    multiple=True,
    help="Text to start from (repeatable: several prompts in one batch).",
)
@sampling_options
@click.option(
    "--num-samples",
    default=1,
    show_default=True,
    type=int,
    help="Samples per prefix (generated together in one batch).",
)
@click.option(
    "--separator",
    default="\n\n",
    show_default=repr("\n\n"),
    help="Printed between samples when there are several.",
)
@click.option(
    "--interactive",
    "-i",
    is_flag=True,
    help="A prompt loop: each line typed is a prefix; :help lists the commands that "
    "change the settings. Ctrl-D or Ctrl-C leaves.",
)
@click.option(
    "--novelty",
    is_flag=True,
    help="Memorisation check: for each sample, the longest text it copies verbatim "
    "from the training corpus and the share of its 20-grams that are copied "
    "(on stderr; needs the run's corpus, unchanged).",
)
@user_errors
def sample(
    run_path, runs_dir, weights, prefixes, num_samples, separator, interactive, novelty, **fields
):
    """Generate text from a trained run, streamed to stdout as it is produced."""
    if interactive and (prefixes or num_samples != 1):
        raise click.UsageError(
            "--interactive reads its prefixes from standard input, one "
            "sample each; drop --prefix and --num-samples"
        )
    options = SamplingOptions.of(**fields)  # checked here, before TensorFlow loads
    check_num_samples(num_samples)
    run_path = find_run(run_path, runs_dir)
    report = novelty_reporter(run_path) if novelty else None  # the corpus checked first, too
    quiet_tensorflow()
    from .api import load

    run = load(run_path, runs_dir=runs_dir, weights=weights)
    if interactive:
        return sample_interactively(run, options, report)
    prefixes = list(prefixes) or run.config.sample_prefixes[:1] or [run.generator.default_prefix]
    texts = write_samples(
        run.stream(prefixes, options=options, num_samples=num_samples), sys.stdout, separator
    )
    for i, text in enumerate(texts):
        if report:
            report(prefixes[i // num_samples], text, f"sample {i + 1}" if len(texts) > 1 else "")


def write_samples(chunks, out, separator: str) -> list[str]:
    """Write samples as the batch produces them: the first streams as it grows; the others,
    generated alongside it, follow it whole, each after ``separator``. Returns the samples."""
    texts = None
    for piece in chunks:
        out.write(piece[0])
        out.flush()
        texts = piece if texts is None else [a + b for a, b in zip(texts, piece, strict=True)]
    out.write("".join(separator + text for text in texts[1:]) + "\n")
    out.flush()
    return texts


def novelty_reporter(run_path: str):
    """A function that prints the memorisation check of one sample (charlm.use.novelty) on stderr."""
    from .use.novelty import format_report, run_index

    index = run_index(run_path, warn=lambda m: click.echo(m, err=True))

    def report(prefix: str, text: str, label: str = "") -> None:
        generated = text[len(prefix) :]  # the prefix is the user's, not the model's
        click.echo(
            f"novelty{' of ' + label if label else ''} (the {len(generated)} characters "
            f"after the prefix): {format_report(index.report(generated))}",
            err=True,
        )

    return report


def sample_interactively(run, options: SamplingOptions, report=None) -> None:
    """The prompt loop of ``sample --interactive`` (charlm.use.interactive) around ``run``,
    starting from the ``options`` of the command line."""
    from .use.interactive import Session, lines, run_session

    def generate(prefix, current: SamplingOptions):  # the session's options, as changed
        for piece in run.stream([prefix], options=current):
            yield piece[0]

    say = functools.partial(click.echo, err=True)
    if sys.stdin.isatty():
        say(f"{run.path}: type a prefix, or :help for the commands; Ctrl-D leaves")
    run_session(Session(generate, options, sys.stdout, say, after=report), lines())


@main.command()
@RUNS_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per run.")
@user_errors
def runs(runs_dir, as_json):
    """List the runs under --runs-dir, newest first: model, parameters, steps, training time,
    best val loss, and whether each finished or can be resumed."""
    from .runs.catalog import format_runs, list_runs

    rows = list_runs(runs_dir)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
    elif rows:
        click.echo(format_runs(rows))
    else:
        click.echo(f"no runs in {runs_dir}/ yet; train one with `charlm train CORPUS`", err=True)


@main.command()
@click.argument("run_path", required=False, metavar="[RUN]", shell_complete=complete_runs)
@RUNS_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@user_errors
def info(run_path, runs_dir, as_json):
    """Describe RUN (default: the newest): its settings, vocabulary, corpus and latest metrics."""
    from .runs.catalog import describe, format_info
    from .runs.folders import resolve_run

    described = describe(resolve_run(run_path, runs_dir))
    click.echo(
        json.dumps(described, ensure_ascii=False, indent=1) if as_json else format_info(described)
    )


@main.command(name="eval")
@click.argument("files", nargs=-1, metavar="[FILE...]")
@RUN_OPTION
@RUNS_DIR_OPTION
@click.option("--weights", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option(
    "--perplexity",
    is_flag=True,
    help="Score the run's held-out text (the default when no FILE is named).",
)
@click.option(
    "--batch-size",
    default=64,
    show_default=True,
    type=click.IntRange(min=1),
    help="Streams scored side by side.",
)
@click.option(
    "--seq-len",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Characters per call; the state is carried between calls.",
)
@click.option(
    "--window",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
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
    from .api import load

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
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(
        f"run:                {result['run']}\n"
        f"text:               {result['text']}\n"
        f"state:              {result['state']}\n"
        f"nats/char:          {result['nats_per_char']:.4f}\n"
        f"bits/char:          {result['bits_per_char']:.4f}\n"
        f"perplexity:         {result['perplexity']:.4f}\n"
        f"characters scored:  {result['chars']}\n"
        f"unknown characters: {result['unknown_chars']}"
    )


@main.command(name="export")
@click.argument("run_path", required=False, metavar="[RUN]")
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
@click.option(
    "--weights",
    type=click.Choice(["best", "last"]),
    default="best",
    show_default=True,
    help="Which saved weights to export.",
)
@click.option(
    "--batch-size",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="tflite: rows per step (a TFLite model's batch is fixed).",
)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@user_errors
def export(run_path, runs_dir, fmt, out, weights, batch_size, force):
    """Export RUN (default: the newest) for use without charlm: a SavedModel that generates
    text, or a one-step TFLite model."""
    run_path = find_run(run_path, runs_dir)
    quiet_tensorflow()
    from .api import load
    from .use.export import export_run

    path = export_run(
        load(run_path, weights=weights), fmt, out=out, force=force, batch_size=batch_size
    )
    click.echo(f"exported {run_path} ({weights} weights) as {fmt}: {path}", err=True)


def limit_options(fn):
    """One option per limit of the server (``--max-streams`` ...): help and default from
    charlm.use.serve.protocol.Limits, where each limit is decided."""
    from .use.serve.protocol import Limits

    for f in reversed(dataclasses.fields(Limits)):
        fn = click.option(
            "--" + f.name.replace("_", "-"),
            f.name,
            default=f.default,
            show_default=True,
            type=int,
            help=f.metadata["help"],
        )(fn)
    return fn


@main.command()
@click.argument("run_paths", nargs=-1, metavar="[RUN...]", shell_complete=complete_runs)
@RUNS_DIR_OPTION
@click.option(
    "--weights",
    type=click.Choice(["best", "last"]),
    default="best",
    show_default=True,
    help="Which saved weights to serve.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; any but a loopback one lets other machines in, "
    "with no authentication (a warning says so).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: a free one, printed at start).",
)
@click.option(
    "--chunk",
    default=16,
    show_default=True,
    type=click.IntRange(1, 512),
    help="Characters per turn of the shared batch: requests join and leave between "
    "turns, so a smaller chunk starts a request sooner.",
)
@click.option(
    "--compile-ahead",
    default="1,2,4,8,16,32,64",
    show_default=True,
    help="Batch sizes compiled before serving (comma-separated; '' for none); "
    "the batch is padded to a power of two.",
)
@limit_options
@user_errors
def serve(run_paths, runs_dir, weights, host, port, chunk, compile_ahead, **limits):
    """Serve RUN(s) (default: the newest) over HTTP until Ctrl-C: a page to play with at /,
    OpenAI's completions API at /v1 (a request's "model" is a run's folder name).
    Needs the extra charlm[serve]."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise CharLMError(
            "charlm serve needs Starlette and uvicorn: pip install 'charlm[serve]'"
        ) from None
    from .use.serve.protocol import Limits

    limits = Limits(**limits)
    try:
        sizes = [int(s) for s in compile_ahead.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(
            f"not a list of batch sizes: {compile_ahead!r}", param_hint="--compile-ahead"
        ) from None
    from .use.serve.server import listen
    from .use.serve.server import serve as serve_runs

    paths = [find_run(p, runs_dir) for p in (run_paths or [None])]  # checked before TensorFlow
    sock = listen(host, port)  # a port in use is said before TensorFlow loads, too
    quiet_tensorflow()
    from .api import load

    serve_runs(
        [load(p, runs_dir=runs_dir, weights=weights) for p in paths],
        limits=limits,
        chunk=chunk,
        compile_ahead=sizes,
        sock=sock,
    )
