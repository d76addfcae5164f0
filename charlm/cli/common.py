"""What the ``charlm`` subcommands share: the error boundary, TensorFlow's quiet start, the
run a command reads, and the options that stand in several commands or are made from a record's
fields (Config, SamplingOptions), so that each flag is declared once.

    @click.command()
    @RUN_OPTION
    @RUNS_DIR_OPTION
    @weights_option("Which saved weights to use.")
    @user_errors
    def command(run_path, runs_dir, weights): ...
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys

import click

from ..api.families import names as family_names
from ..errors import CharLMError, os_error_line, resource_line
from ..fsio import quiet_tensorflow  # noqa: F401  (the commands import it from here)
from ..options.config import RUNS_DIR, WEIGHTS, Config
from ..options.limits import Limits
from ..options.sampling import SamplingOptions
from ..options.setting import OptionError
from .interactive import unescape


def user_errors(fn):
    """Run a subcommand; what the user can fix becomes one line on stderr (``Error: ...``)
    and exit status 1: a CharLMError; an OSError (a full disk, no permission, a name too
    long, a file where a folder should be: charlm.errors.os_error_line); running out of
    memory or disk (TensorFlow's ResourceExhaustedError, MemoryError). Anything else is a bug and
    keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OptionError as e:
            raise click.ClickException(e.worded(flag_of(e.field))) from None
        except CharLMError as e:
            raise click.ClickException(str(e)) from None
        except BrokenPipeError:  # the reader went away (charlm sample | head): nothing to say
            raise
        except OSError as e:
            raise click.ClickException(os_error_line(e)) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            sys.exit(130)
        except Exception as e:
            line = resource_line(e)
            if line is None:
                raise
            raise click.ClickException(line) from None

    return wrapper


def find_run(run_path: str | None, runs_dir: str, flag: str = "--run") -> str:
    """The run folder, its config and vocabulary checked before TensorFlow loads
    (:func:`charlm.api.catalog.find_run`; ``flag``: how the command names one)."""
    from ..api.catalog import find_run as found

    return found(run_path, runs_dir, flag)


def field_options(record, skip=(), show_defaults: bool = False):
    """A decorator that adds one option per field of the dataclass ``record`` (``--seq-len``,
    ``--sample-prefix``, ``--top-k`` ...); the help, choices and flag names come from the field
    (charlm.options.setting.setting). An option not typed is None (or ``()``), so that the record's
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


def flag_of(field: str) -> str:
    """The command-line flag of the setting ``field`` (of Config, SamplingOptions or Limits):
    the one it declares (``--sample-prefix``), else ``--`` and its name with dashes."""
    for record in (Config, SamplingOptions, Limits):
        for f in dataclasses.fields(record):
            if f.name == field and f.metadata["flag"]:
                return f.metadata["flag"]
    return "--" + field.replace("_", "-")


def _declarations(f) -> list[str]:
    flag = flag_of(f.name)
    return [f"{flag}/--no-{flag[2:]}"] if f.type == "bool" else [flag, *f.metadata["aliases"]]


class Escaped(click.ParamType):
    """Text whose escapes are read as the interactive prompt reads them (``\\n`` a newline,
    ``\\t`` a tab, ``\\\\`` a backslash, ``\\s``, ``\\xNN``, ``\\uNNNN``): what ``--stop``
    and ``--prefix`` take, so that ``--stop '\\n\\n'`` means a blank line."""

    name = "text"

    def convert(self, value, param, ctx):
        try:
            return unescape(value) if isinstance(value, str) else value
        except ValueError:
            self.fail(
                f"{value!r} has a backslash that starts no escape (\\n, \\t, \\s, \\xNN, "
                "\\uNNNN are read; write \\\\ for a backslash)",
                param,
                ctx,
            )


ESCAPED = Escaped()


def _kind(f, show_defaults: bool) -> dict:
    """click's type and default for field ``f`` (its type is a string: annotations are lazy)."""
    if f.type in ("list[str]", "tuple[str, ...]"):
        return {"multiple": True, **({"type": ESCAPED} if f.metadata["escapes"] else {})}
    if f.type == "bool":
        return {"default": None}
    choices = family_names() if f.name == "model" else f.metadata["choices"]
    kind = (
        click.Choice(choices)
        if choices
        else {"int": int, "int | None": int, "float": float}.get(f.type, str)
    )
    if show_defaults:
        shown: bool | str = f.default is not None  # None: its help says what it means
    else:  # None, so that a preset's value or the recipe's choice applies; the field's shown
        shown = str(f.default) if f.default not in (None, "", (), []) else False
    return {"type": kind, "default": f.default if show_defaults else None, "show_default": shown}


class Sectioned(click.Command):
    """A command whose ``--help`` lists its options in sections: ``sections`` maps a title to
    the names of its options (Config.SECTIONS for ``train``); the others come first, under
    ``first``."""

    def __init__(self, *args, sections: dict, first: str = "Options", **kwargs):
        super().__init__(*args, **kwargs)
        self.sections, self.first = sections, first

    def format_options(self, ctx, formatter) -> None:
        where = {name: title for title, names in self.sections.items() for name in names}
        grouped: dict[str, list] = {self.first: [], **{title: [] for title in self.sections}}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record:
                grouped[where.get(param.name or "", self.first)].append(record)
        for title, records in grouped.items():
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


config_options = field_options(Config, skip=("paths",))
sampling_options = field_options(SamplingOptions, show_defaults=True)


def count_option(flag: str, default: int, low: int, high: int | None = None, help=None):
    """An integer option bounded to ``low``..``high`` (None: no upper bound), its default shown
    in the help: ``count_option("--batch-size", 64, 1, help="Streams scored side by side.")``.
    click refuses a value out of range in one line, naming the flag."""
    return click.option(
        flag, default=default, show_default=True, type=click.IntRange(low, high), help=help
    )


def weights_option(help=None):
    """``--weights best|last``: which of a run's saved weights a command loads."""
    return click.option(
        "--weights",
        type=click.Choice(WEIGHTS),
        default="best",
        show_default=True,
        help=help,
    )


def json_option(help: str = "Print one JSON object."):
    """``--json``: print what a command finds as JSON rather than for a person to read."""
    return click.option("--json", "as_json", is_flag=True, help=help)


RUNS_DIR_OPTION = click.option(
    "--runs-dir",
    "--run-dir",
    "runs_dir",
    default=RUNS_DIR,
    show_default=True,
    help=Config.help("runs_dir"),
)


def complete_runs(ctx, param, incomplete: str):
    """Shell completion of a run folder: the runs under --runs-dir (as typed so far, else
    runs/), or folders when what is typed is no run's path."""
    from click.shell_completion import CompletionItem

    from ..api.catalog import run_names

    runs_dir = ctx.params.get("runs_dir") or RUNS_DIR
    paths = [os.path.join(runs_dir, name) for name in run_names(runs_dir)]
    found = [CompletionItem(p) for p in paths if p.startswith(incomplete)]
    return found or [CompletionItem(incomplete, type="dir")]


def run_argument(fn):
    """``[RUN]`` or ``--run RUN``, the same either way (``info``, ``export``): the run a
    command reads, found by the one rule of every command (a folder, or a name under
    --runs-dir). :func:`one_run` reads the two."""
    fn = click.option(
        "--run",
        "run_option",
        metavar="RUN",
        shell_complete=complete_runs,
        help="The same as RUN.",
    )(fn)
    return click.argument(
        "run_path", required=False, metavar="[RUN]", shell_complete=complete_runs
    )(fn)


def one_run(run_path: str | None, run_option: str | None) -> str | None:
    """The run named by ``[RUN]`` or ``--run`` (not both)."""
    if run_path and run_option and run_path != run_option:
        raise click.UsageError("name the run once: RUN or --run RUN, not both")
    return run_path or run_option


RUN_OPTION = click.option(
    "--run",
    "run_path",
    shell_complete=complete_runs,
    help="Run folder, or a folder of runs for its newest (default: the newest under --runs-dir).",
)
