"""``charlm serve``'s process: bind the socket, compile the loop ahead, run uvicorn, stop
cleanly on SIGINT or SIGTERM (the streams in flight end with an error event, exit 0).

The socket is bound first (a port in use is said at once) but listens only once the models
are loaded and compiled: until then a client's connection is refused at once, as by a server
not yet started, rather than accepted and left hanging while TensorFlow compiles (uvicorn's
start-up calls ``listen``).

    serve([charlm.load("runs/tiny")], port=8000)
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import time

import uvicorn

from ..errors import CharLMError
from ..options.limits import Limits

COMPILE_AHEAD = (1, 2, 4, 8, 16, 32, 64)  # batch sizes compiled before the first request
GRACE_SECONDS = 3  # how long a stopping server waits for connections to close


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Server(uvicorn.Server):
    """uvicorn's server that tells the batchers to stop first (so that every stream ends at
    once) and exits normally on a signal (uvicorn raises the signal again, which would make
    the exit status 130 or 143)."""

    def __init__(self, config: uvicorn.Config, service, on_start):
        super().__init__(config)
        self.service, self.on_start = service, on_start

    def handle_exit(self, sig, frame) -> None:
        if self.should_exit:
            self.force_exit = True  # a second Ctrl-C: do not wait for the connections
        self.should_exit = True

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_start()

    async def shutdown(self, sockets=None) -> None:
        self.service.stop()
        await super().shutdown(sockets)
        if self.force_exit:  # uvicorn skips the app's lifespan then: its task, cancelled at
            await self.lifespan.shutdown()  # the loop's end, logged a CancelledError traceback


def listen(host: str, port: int) -> socket.socket:
    """The socket bound to ``host:port``, not yet listening (see the module), or one clear
    line when the address cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except BaseException:
            sock.close()
            raise
    except (OSError, OverflowError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise CharLMError(
            f"cannot listen on {host}:{port}: {why}; choose another --host or "
            "--port (--port 0 takes a free one)"
        ) from None
    sock.set_inheritable(True)
    return sock


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (else ``charlm serve`` warns).

    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.0.0.2")]
    [True, True, True, False, False]
    """
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(
    runs,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: Limits | None = None,
    chunk: int = 16,
    compile_ahead=COMPILE_AHEAD,
    sock: socket.socket | None = None,
    say=_say,
    api_key: str | None = None,
    cors_origins=(),
    prefill_chunk: int | None = None,
) -> None:
    """Serve ``runs`` (:class:`charlm.api.Run`\\ s, the first the default model) until
    SIGINT or SIGTERM. Says what it serves, how long compiling took, and the address.
    ``sock``: the socket from :func:`listen` (the CLI binds before TensorFlow loads, so a
    port in use is said at once); default: bound here to ``host`` and ``port``. ``api_key``,
    ``cors_origins``, ``prefill_chunk``: see :func:`~charlm.serve.app.create_app`."""
    from .app import create_app  # TensorFlow: after listen(), so a port in use is said at once

    limits = limits or Limits()
    app = create_app(runs, limits, chunk, api_key, cors_origins, prefill_chunk)
    service = app.state.service
    _describe(service, say)
    _compile(service, sorted({s for s in compile_ahead if s <= limits.max_streams}), say)
    sock = sock or listen(host, port)
    host = sock.getsockname()[0]
    if not (is_loopback(host) or api_key):
        say(
            f"warning: listening on {host}, not only this machine: anyone who can reach it "
            "can use the model (give it a key: --api-key or CHARLM_API_KEY)"
        )
    address = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    server = Server(
        config,
        service,
        lambda: say(
            f"serving {', '.join(service.runs)} on {address}/ (the page; the OpenAI API at "
            f"{address}/v1); Ctrl-C stops"
        ),
    )
    server.run(sockets=[sock])
    say("stopped")


def _describe(service, say) -> None:
    """One line a model served: its name, folder, kind, size and best validation loss."""
    for name in service.runs:
        d = service.descriptions[name]
        best = f", best val loss {d['best_val_loss']:.4f}" if d["best_val_loss"] else ""
        params = f"{d['parameters']:,} parameters, " if d["parameters"] else ""
        say(
            f"model {name}: {service.runs[name].path} ({d['model']}, {params}"
            f"{d['vocab_size']} characters{best})"
        )


def _compile(service, sizes: list[int], say) -> None:
    """Compile the sampling loop for the batch ``sizes`` before the first request (none: each
    size compiles at its first use), and say how long it took (benchmarks/bench_serve.py reads
    that line)."""
    if sizes:
        started = time.perf_counter()
        service.compile(sizes)
        say(
            f"compiled the sampling loop for batches of {', '.join(map(str, sizes))} rows in "
            f"{time.perf_counter() - started:.1f} s (another size compiles at its first use)"
        )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
