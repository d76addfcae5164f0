"""``charlm sample``: samples streamed to stdout, the memorisation check (``--novelty``) on
stderr, and the prompt loop (``--interactive``). The sampling flags are made from
SamplingOptions' fields (common.sampling_options).

    charlm sample --run runs/tiny --prefix "ROMEO:" --top-p 0.9 --num-samples 3
    charlm sample -i
"""

from __future__ import annotations

import functools
import sys

import click

from ..sampling import SamplingOptions, check_num_samples
from .common import (
    RUN_OPTION,
    RUNS_DIR_OPTION,
    find_run,
    quiet_tensorflow,
    sampling_options,
    user_errors,
    weights_option,
)


@click.command()
@RUN_OPTION
@RUNS_DIR_OPTION
@weights_option("Which saved weights to use.")
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
    from ..api import load

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
    from ..use.novelty import format_report, run_index

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
    from ..use.interactive import Session, lines, run_session

    def generate(prefix, current: SamplingOptions):  # the session's options, as changed
        for piece in run.stream([prefix], options=current):
            yield piece[0]

    say = functools.partial(click.echo, err=True)
    if sys.stdin.isatty():
        say(f"{run.path}: type a prefix, or :help for the commands; Ctrl-D leaves")
    run_session(Session(generate, options, sys.stdout, say, after=report), lines())
