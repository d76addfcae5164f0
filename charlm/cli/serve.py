"""``charlm serve``: runs over HTTP (charlm.serve). The address and the runs are checked,
and the socket bound, before TensorFlow loads, so a port in use is said at once.

    charlm serve runs/tiny runs/small --port 0 --max-streams 32
"""

from __future__ import annotations

import click

from ..errors import CharLMError
from ..options.limits import Limits
from .common import (
    RUNS_DIR_OPTION,
    complete_runs,
    count_option,
    field_options,
    find_run,
    quiet_tensorflow,
    user_errors,
    weights_option,
)

limit_options = field_options(Limits, show_defaults=True)  # --max-streams ...


@click.command()
@click.argument("run_paths", nargs=-1, metavar="[RUN...]", shell_complete=complete_runs)
@RUNS_DIR_OPTION
@weights_option("Which saved weights to serve.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; any but a loopback one lets other machines in, "
    "with no authentication (a warning says so).",
)
@count_option("--port", 8000, 0, 65535, help="Port to listen on (0: a free one, printed at start).")
@count_option(
    "--chunk",
    16,
    1,
    512,
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
    limits = Limits(**limits)
    sizes = batch_sizes(compile_ahead)
    from ..serve.server import listen
    from ..serve.server import serve as serve_runs

    paths = [find_run(p, runs_dir) for p in (run_paths or [None])]  # checked before TensorFlow
    sock = listen(host, port)  # a port in use is said before TensorFlow loads, too
    quiet_tensorflow()
    from ..api import load

    serve_runs(
        [load(p, runs_dir=runs_dir, weights=weights) for p in paths],
        limits=limits,
        chunk=chunk,
        compile_ahead=sizes,
        sock=sock,
    )


def batch_sizes(compile_ahead: str) -> list[int]:
    """The sizes ``--compile-ahead`` names (``"1,2,4"``; ``""`` for none), or click's one-line
    refusal naming the flag."""
    try:
        return [int(s) for s in compile_ahead.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(
            f"not a list of batch sizes: {compile_ahead!r}", param_hint="--compile-ahead"
        ) from None
