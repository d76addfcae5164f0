"""The ``charlm`` command: the click group ``main`` and its subcommands, one module a group.

    train.py   train                 sample.py  sample (and sample --interactive)
    runs.py    runs, info, eval      export.py  export
    serve.py   serve                 common.py  the error boundary and the shared options

Only option parsing lives here; each subcommand turns its options into library calls
(charlm.api). Problems the user can fix are printed as one line (``Error: ...``) with a
non-zero exit (common.user_errors).
"""

from __future__ import annotations

import atexit
import os
import sys

import click

from ..api.launch import process_started
from ..fsio import ended_cleanly
from ..say import one_line

LAUNCHED = process_started()  # a --time-budget counts from here: launch to exit

from . import export, runs, sample, serve, train  # noqa: E402 (after LAUNCHED)


class Main(click.Group):
    """The command group. It hands its commands the launch a ``--time-budget`` counts from
    (``ctx.obj``: LAUNCHED, as it is when the group runs). As the ``charlm`` process (called,
    not invoked in-process by a test runner), it ends at once after a command that returns
    ``train.QUICK_EXIT``: the exit handlers run and the streams are flushed, but the
    interpreter's teardown with TensorFlow loaded (1-2 s, counted in a --time-budget) is
    skipped."""

    def invoke(self, ctx: click.Context):
        """What the subcommand returned where it is QUICK_EXIT, else None: a command's return
        value means nothing else here."""
        try:
            with ended_cleanly():  # SIGTERM, SIGHUP: every command's cleanup runs, then it ends
                returned = super().invoke(ctx)
        except click.ClickException as e:  # every error line of every command, and click's
            e.message = one_line(e.message)  # type: ignore[misc]  # Final to click, set once here
            raise
        return returned if returned is train.QUICK_EXIT else None

    def __call__(self, *args, **kwargs):
        """Run as click's standalone mode runs (an error shown as its line and exit status;
        every end a SystemExit), but see what the command returned."""
        try:
            returned = self.main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:  # Ctrl-C or end of input at a prompt
            click.echo("Aborted!", err=True)
            sys.exit(1)
        if returned is train.QUICK_EXIT:
            quick_exit(0)
        sys.exit(returned or 0)  # None, or click's exit status: --help, --version, ctx.exit


def quick_exit(code) -> None:
    """End the process now with ``code`` (SystemExit's): exit handlers, flush, os._exit."""
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


@click.group(
    cls=Main,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="charlm")
@click.pass_context
def main(ctx: click.Context) -> None:
    """charlm: train character-level language models, sample from them, measure them."""
    ctx.obj = LAUNCHED  # read now: a test runner sets it before each command it invokes
    bytes_pass_through()


def bytes_pass_through() -> None:
    """Let the standard input and output carry bytes that are not UTF-8 (a prompt, a prefix
    given in another encoding) as they came, whatever encoding and error handler the
    environment set (``PYTHONIOENCODING=utf-8`` makes them strict): read in as Python's
    stand-ins (as the command line's arguments are), written back as the same bytes, where
    a strict stream would end the command with a UnicodeError."""
    for stream in (sys.stdin, sys.stdout):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            try:
                reconfigure(errors="surrogateescape")
            except (OSError, ValueError):  # a closed stream, or one already read from
                pass


for _command in (
    train.train,
    sample.sample,
    runs.runs,
    runs.info,
    runs.eval_,
    export.export,
    serve.serve,
):
    main.add_command(_command)
