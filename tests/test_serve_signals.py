"""charlm serve stops cleanly on SIGINT (Ctrl-C) and SIGTERM: exit status 0 within a few
seconds, even with a stream in flight (it ends with an error event); and it refuses to start
with one clear line on bad flags."""

import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from serving import PROMPTS, Server, stream_events


@pytest.fixture(scope="module")
def two_servers(serve_run, tmp_path_factory):
    """Two more servers of the tiny run (started together: the start-up is most of the cost)."""
    folder = tmp_path_factory.mktemp("signals")
    servers = [
        Server(
            serve_run.path,
            "--compile-ahead",
            "1",
            "--max-tokens",
            "100000",
            log=folder / f"server{i}.log",
            fresh=True,  # how the process ends is tested here
        )
        for i in range(2)
    ]
    yield [s.wait_ready() for s in servers]
    for s in servers:
        s.stop()


def test_the_start_up_lines_name_the_address_the_run_and_the_compile_time(two_servers):
    out = two_servers[0].output()
    assert "model tang:" in out and "lstm 1x32" in out
    assert "compiled the sampling loop for batches of 1 rows in" in out
    assert "serving tang on http://127.0.0.1:" in out


def run_cli(*args, timeout=120):
    p = subprocess.run(
        [sys.executable, "-m", "charlm", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return p.returncode, p.stderr


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-n", "0"], "--max-n must be at least 1, not 0"),
        (["--port", "70000"], "Invalid value for '--port'"),
    ],
)
def test_bad_flags_are_one_line_before_tensorflow_loads(serve_run, flags, message):
    code, err = run_cli("serve", serve_run.path, *flags)
    assert code != 0 and message in err and "Traceback" not in err


def test_a_port_in_use_is_one_clear_line(serve_run, two_servers):
    port = two_servers[0].url.rsplit(":", 1)[1]  # before the signal tests stop it
    code, err = run_cli("serve", serve_run.path, "--port", port, "--compile-ahead", "")
    assert code == 1 and f"Error: cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("which, sig", [(0, signal.SIGINT), (1, signal.SIGTERM)])
def test_a_signal_stops_the_server_with_exit_0_even_mid_stream(two_servers, which, sig):
    server = two_servers[which]
    events, stream_ended = [], threading.Event()

    def listen():
        try:
            for event in stream_events(server.url, {"prompt": PROMPTS[0], "max_tokens": 100_000}):
                events.append(event)
        except httpx.HTTPError:
            pass
        stream_ended.set()

    threading.Thread(target=listen, daemon=True).start()
    deadline = time.monotonic() + 30
    while not events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert events, "the stream never started"
    began = time.monotonic()
    server.signal(sig)
    assert server.proc.wait(10) == 0, server.output()
    assert time.monotonic() - began < 5
    assert stream_ended.wait(5)
    assert "error" in events[-1] and "shutting down" in events[-1]["error"]["message"]
    assert "Traceback" not in server.output() and server.output().rstrip().endswith("stopped")
