"""``charlm sample``: samples streamed to stdout (or, with ``--json``, one JSON object a line
for scripts), the memorisation check (``--novelty``) on stderr, and the prompt loop
(``--interactive``). The sampling flags are made from SamplingOptions' fields
(common.sampling_options). stderr says first which device samples and, when no ``--seed`` is
given, the seed drawn, so that any sample can be drawn again.

    charlm sample --run runs/tiny --prefix "ROMEO:" --top-p 0.9 --num-samples 3
    charlm sample --prefix-file prompt.txt --stop $'\n\n' --json
    charlm sample -i
"""

from __future__ import annotations

import functools
import json
import sys

import click

from ..errors import CharLMError
from ..options.sampling import SamplingOptions, check_num_samples, check_prefixes
from .common import (
    ESCAPED,
    RUN_OPTION,
    RUNS_DIR_OPTION,
    find_run,
    json_option,
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
    type=ESCAPED,
    help="Text to start from (repeatable: several prompts in one batch; \\n, \\t and \\\\ "
    "are a newline, a tab and a backslash).",
)
@click.option(
    "--prefix-file",
    "prefix_files",
    multiple=True,
    metavar="FILE",
    help="A prompt read from FILE, - for standard input, as the run's corpus was read "
    "(its encoding; a BOM dropped, CRLF as LF); repeatable; instead of --prefix.",
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
@json_option(
    "One JSON object a line per sample, printed when the batch ends: text (what follows the "
    "prefix), prefix, finish_reason (length or stop), seed and settings (--separator unused)."
)
@user_errors
def sample(
    run_path,
    runs_dir,
    weights,
    prefixes,
    prefix_files,
    num_samples,
    separator,
    interactive,
    novelty,
    as_json,
    **fields,
):
    """Generate text from a trained run, streamed to stdout as it is produced."""
    check_modes(
        interactive,
        {"--prefix": prefixes, "--prefix-file": prefix_files},
        {"--num-samples": num_samples != 1, "--json": as_json},
    )
    options = SamplingOptions.of(**fields)  # checked here, before TensorFlow loads
    check_num_samples(num_samples)
    check_prefixes(prefixes)
    run_path = find_run(run_path, runs_dir)
    prefixes = list(prefixes) + prompts_of(prefix_files, run_path)
    report = novelty_reporter(run_path) if novelty else None  # the corpus checked first, too
    quiet_tensorflow()
    from ..api import load
    from ..api.catalog import device_line

    run = load(run_path, runs_dir=runs_dir, weights=weights)
    click.echo(device_line("float32"), err=True)  # generation computes in float32 (Run)
    if interactive:
        return sample_interactively(run, options, report)
    prefixes = prefixes or run.config.sample_prefixes[:1] or [run.generator.default_prefix]
    options, out = seeded(options), sys.stdout
    if as_json:
        texts = write_json(run.samples(prefixes, options=options, num_samples=num_samples), out)
    else:
        texts = write_samples(
            run.stream(prefixes, options=options, num_samples=num_samples), out, separator
        )
    for i, text in enumerate(texts):
        if report:
            report(prefixes[i // num_samples], text, f"sample {i + 1}" if len(texts) > 1 else "")


def check_modes(interactive: bool, prompts: dict, output: dict) -> None:
    """The options given together that cannot be: ``prompts`` from --prefix and from
    --prefix-file, or, with --interactive (which reads its prompts from standard input and
    prints each sample as text), any prompt or ``output`` option; each refused by name."""
    if interactive and any([*prompts.values(), *output.values()]):
        flags = " and ".join(flag for flag, v in {**prompts, **output}.items() if v)
        raise click.UsageError(
            f"--interactive reads its prefixes from standard input, one sample each; drop {flags}"
        )
    if all(prompts.values()):
        raise CharLMError("--prefix and --prefix-file both give the prompts; use one of them")
    if list(prompts["--prefix-file"]).count("-") > 1:
        raise CharLMError("--prefix-file - reads standard input, which can be read only once")


def prompts_of(paths, run_path: str) -> list[str]:
    """The prompt in each --prefix-file (charlm.api.prompts), read before TensorFlow loads."""
    from ..api.prompts import read_prompts

    return read_prompts(list(paths), run_path, warn=lambda line: click.echo(line, err=True))


def seeded(options: SamplingOptions) -> SamplingOptions:
    """``options`` with a seed: the one given, or one drawn and told on stderr (one line), so
    that the same command with that ``--seed`` gives the same samples."""
    if options.seed is None:
        options = options.seeded()
        click.echo(
            f"seed: {options.seed} (pass --seed {options.seed} to get this sample again)", err=True
        )
    return options


def write_samples(chunks, out, separator: str) -> list[str]:
    """Write samples as the batch produces them: the first streams as it grows; the others,
    generated alongside it, follow it whole, each after ``separator``. Returns the samples."""
    texts: list[str] | None = None
    for piece in chunks:
        out.write(piece[0])
        out.flush()
        texts = piece if texts is None else [a + b for a, b in zip(texts, piece, strict=True)]
    assert texts is not None, "a stream yields at least its prefixes"
    out.write("".join(separator + text for text in texts[1:]) + "\n")
    out.flush()
    return texts


def write_json(samples, out) -> list[str]:
    """Write each :class:`~charlm.use.stops.Sample` as one JSON object a line (characters as
    they are, not escaped); returns the samples as printed text would show them."""
    for s in samples:
        out.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
    out.flush()
    return [s.prefix + s.text for s in samples]


def novelty_reporter(run_path: str):
    """A function that prints the memorisation check of one sample (charlm.novelty.index) on stderr."""
    from ..api.novelty import run_index
    from .render import format_report

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
    """The prompt loop of ``sample --interactive`` (charlm.cli.interactive) around ``run``,
    starting from the ``options`` of the command line."""
    from .interactive import Session, lines, run_session

    def generate(prefix, current: SamplingOptions):  # the session's options, as changed
        for piece in run.stream([prefix], options=current):
            yield piece[0]

    say = functools.partial(click.echo, err=True)
    if sys.stdin.isatty():
        say(f"{run.path}: type a prefix, or :help for the commands; Ctrl-D leaves")
    run_session(Session(generate, options, sys.stdout, say, after=report), lines())
