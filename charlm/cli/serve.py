"""``charlm serve``: runs over HTTP (charlm.serve). The address and the runs are checked,
and the socket bound, before TensorFlow loads, so a port in use is said at once.

    charlm serve runs/tiny runs/small --port 0 --max-streams 32
"""

from __future__ import annotations

import click

from ..errors import CharLMError
from ..options.limits import PREFILL_CHUNK, Limits
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
@count_option(
    "--prefill-chunk",
    PREFILL_CHUNK,
    0,
    1 << 20,
    help="Characters of a prompt's warm-up per turn while streams are live: a long prompt "
    "is fed between their turns, so it does not stall them (0: whole, at once).",
)
@click.option(
    "--api-key",
    envvar="CHARLM_API_KEY",
    default=None,
    help="Let into the API (/v1, /metrics) only requests with 'Authorization: Bearer KEY'; "
    "the page and /health stay open. [env: CHARLM_API_KEY]",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="A browser origin allowed to call the API from its pages (repeatable; "
    "'*' for any). Default: none.",
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
def serve(
    run_paths,
    runs_dir,
    weights,
    host,
    port,
    chunk,
    prefill_chunk,
    api_key,
    cors_origins,
    compile_ahead,
    **limits,
):
    """Serve RUN(s) (default: the newest) over HTTP until Ctrl-C: a page to play with at /,
    OpenAI's completions and chat completions APIs at /v1 (a request's "model" is a run's
    folder name), Prometheus metrics at /metrics. Needs the extra charlm[serve]."""
    try:
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise CharLMError(
            "charlm serve needs Starlette, uvicorn and prometheus-client: "
            "pip install 'charlm[serve]'"
        ) from None
    if api_key is not None and not api_key.strip():
        raise click.BadParameter("an empty key lets nobody in", param_hint="--api-key")
    limits = Limits(**limits)
    sizes = batch_sizes(compile_ahead)
    from ..serve.server import listen
    from ..serve.server import serve as serve_runs

    paths = [find_run(p, runs_dir, "charlm serve") for p in (run_paths or [None])]  # before TF
    sock = listen(host, port)  # a port in use is said before TensorFlow loads, too
    quiet_tensorflow()
    from ..api import load

    serve_runs(
        [load(p, runs_dir=runs_dir, weights=weights) for p in paths],
        limits=limits,
        chunk=chunk,
        compile_ahead=sizes,
        sock=sock,
        api_key=api_key,
        cors_origins=cors_origins,
        prefill_chunk=prefill_chunk,
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
