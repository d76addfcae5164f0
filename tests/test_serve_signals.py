"""charlm serve stops cleanly on SIGINT (Ctrl-C) and SIGTERM: exit status 0 within a few
seconds, even with a stream in flight (it ends with an error event); refuses to start with
one clear line on bad flags; refuses connections at once until it is ready; keeps its API
behind a key and answers the browser origins it is told to; serves on when its run folder is
deleted."""

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from serving import PROMPTS, SERVING, Server, openai_client, stream_events

KEY = "k3y-for-tests"
ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def two_servers(serve_run, tmp_path_factory):
    """Two more servers of the tiny run, started together (the start-up is most of the cost):
    a plain one, and one (:func:`guarded`) of a copy of the run with a key (from the
    environment) and a CORS origin, whose port is probed while it starts. The signal tests
    stop them, last."""
    folder = tmp_path_factory.mktemp("signals")
    copy = folder / "runs" / "guarded"
    shutil.copytree(serve_run.path, copy)
    port = free_port()
    common = ("--compile-ahead", "1", "--max-tokens", "100000")
    plain = Server(serve_run.path, *common, log=folder / "plain.log", fresh=True)
    guarded = Server(
        copy,
        *common,
        "--port",
        str(port),
        "--cors-origin",
        ORIGIN,
        log=folder / "guarded.log",
        fresh=True,  # how the process ends is tested here
        env={"CHARLM_API_KEY": KEY},
    )
    guarded.probes, guarded.run = probe_until_ready(guarded, port), copy
    yield [plain.wait_ready(), guarded.wait_ready()]
    for s in (plain, guarded):
        s.stop()


def probe_until_ready(server: Server, port: int, timeout: float = 120) -> list:
    """Connect to ``port`` every 50 ms until the server's start-up line says it serves: each
    try's outcome (``refused``, ``accepted``) and how long it took."""
    deadline, probes = time.monotonic() + timeout, []
    while time.monotonic() < deadline and not SERVING.search(server.output()):
        began = time.monotonic()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            probes.append(("accepted", time.monotonic() - began))
        except ConnectionRefusedError:
            probes.append(("refused", time.monotonic() - began))
        except OSError:  # timed out: a hang
            probes.append(("hung", time.monotonic() - began))
        time.sleep(0.05)
    return probes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def guarded(two_servers):
    return two_servers[1]


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


def test_until_it_is_ready_a_connection_is_refused_at_once_not_left_hanging(guarded):
    refused = [t for outcome, t in guarded.probes if outcome == "refused"]
    assert refused, "the port was never probed before the server was ready"
    assert all(outcome == "refused" for outcome, _ in guarded.probes), guarded.probes
    assert max(refused) < 1.0
    assert httpx.get(guarded.url + "/health").json()["status"] == "ok"


def test_the_api_takes_only_requests_with_the_key(guarded):
    body = {"prompt": "春", "max_tokens": 5}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        r = httpx.post(guarded.url + "/v1/completions", json=body, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert KEY not in r.text
    assert httpx.get(guarded.url + "/metrics").status_code == 401
    assert httpx.get(guarded.url + "/health").status_code == 200  # open
    assert httpx.get(guarded.url + "/").status_code == 200  # the page: it asks for the key
    import openai

    with pytest.raises(openai.AuthenticationError):
        openai_client(guarded.url).completions.create(model="guarded", prompt="春", max_tokens=3)
    client = openai.OpenAI(base_url=guarded.url + "/v1", api_key=KEY, max_retries=0)
    assert (
        len(client.completions.create(model="guarded", prompt="春", max_tokens=3).choices[0].text)
        == 3
    )


def test_a_browser_on_the_origin_given_may_call_it_and_no_other(guarded):
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    url = guarded.url + "/v1/completions"
    ok = httpx.options(url, headers={"Origin": ORIGIN, **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.options(url, headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    r = httpx.get(
        guarded.url + "/v1/models",
        headers={"Origin": ORIGIN, "Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN


def test_a_deleted_run_folder_changes_nothing_served(guarded):
    headers = {"Authorization": f"Bearer {KEY}"}
    before = httpx.get(guarded.url + "/v1/models", headers=headers).json()
    shutil.rmtree(guarded.run)
    after = httpx.get(guarded.url + "/v1/models", headers=headers)
    assert after.status_code == 200 and after.json() == before
    reply = httpx.post(
        guarded.url + "/v1/completions", json={"prompt": "春", "max_tokens": 4}, headers=headers
    )
    assert reply.status_code == 200 and len(reply.json()["choices"][0]["text"]) == 4


def test_an_empty_api_key_is_refused_before_tensorflow_loads(serve_run):
    code, err = run_cli("serve", serve_run.path, "--api-key", " ")
    assert code == 2 and "--api-key" in err and "Traceback" not in err


def test_no_run_to_serve_says_how_serve_is_told_one(tmp_path):
    code, err = run_cli("serve", "--runs-dir", tmp_path)
    assert code == 1 and "charlm serve DIR" in err and "--run " not in err


# -- last: the signals stop both servers --------------------------------------------------------


def streaming(server, client: httpx.Client) -> tuple[list, threading.Event]:
    """A long stream from ``server``, read in a thread: its events so far (at least one on
    return) and the event set when it has ended."""
    events, ended = [], threading.Event()

    def listen():
        with contextlib.suppress(httpx.HTTPError):
            body = {"prompt": PROMPTS[0], "max_tokens": 100_000}
            for event in stream_events(server.url, body, client):
                events.append(event)
        ended.set()

    threading.Thread(target=listen, daemon=True).start()
    deadline = time.monotonic() + 30
    while not events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert events, "the stream never started"
    return events, ended


def test_a_signal_stops_the_server_with_exit_0_even_mid_stream(two_servers):
    server = two_servers[1]  # the one with a key; Ctrl-C: below
    client = httpx.Client(timeout=120, headers={"Authorization": f"Bearer {KEY}"})
    events, stream_ended = streaming(server, client)
    began = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0, server.output()
    assert time.monotonic() - began < 5
    assert stream_ended.wait(5)
    assert events[-1] == "[DONE]"  # after the error's event, as after any other last event
    error = events[-2]["error"]
    assert "shutting down" in error["message"] and error["code"] == "shutting_down"
    assert "Traceback" not in server.output() and server.output().rstrip().endswith("stopped")


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(two_servers):
    server = two_servers[0]  # the plain one; the first Ctrl-C alone is SIGTERM's path
    streaming(server, httpx.Client(timeout=60))
    began = time.monotonic()
    server.signal(signal.SIGINT)
    time.sleep(0.05)
    server.signal(signal.SIGINT)  # uvicorn's force exit: it cancels what is left
    assert server.proc.wait(10) == 0, server.output()
    assert time.monotonic() - began < 5
    assert "Traceback" not in server.output() and "CancelledError" not in server.output()
