"""What the tests of ``charlm serve`` share: one tiny run trained on Tang poems (Chinese, a
vocabulary larger than the 256 logits top-k reads first), a live server in a subprocess
(``charlm serve RUN --port 0``, its address read from its start-up line), and clients."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import forked
import httpx
from conftest import CORPORA, TINY

PROMPTS = ["秦川雄帝宅", "春", "玉匣啓龍圖，金繩"]  # 5, 1 and 8 characters from the corpus
SERVING = re.compile(r"serving .* on (http://\S+?)/ ")


def train_tiny(folder: Path, **settings) -> Path:
    """A tiny LSTM (or what ``settings`` say) on the first 20,000 characters of the Tang
    poems, in ``folder/runs``."""
    import charlm

    back = os.getcwd()
    os.chdir(folder)
    try:
        run = charlm.train(
            [CORPORA / "tang_poems.txt"],
            max_chars=20_000,
            name="tang",
            progress=False,
            log=lambda _: None,
            **{**TINY, "model": "lstm", "steps": 30, **settings},
        )
    finally:
        os.chdir(back)
    return (folder / run.path).resolve()


class Server:
    """``charlm serve`` in a process of its own, forked (tests/forked.py) or, with ``fresh``,
    a new ``python -m charlm`` (where how the process ends is tested; ``env``: variables
    added to its environment); its stderr goes to a file (read at start and after)."""

    def __init__(
        self, run: Path, *flags: str, log: Path, fresh: bool = False, env: dict | None = None
    ):
        self.log = log
        args = ["serve", str(run), "--port", "0", *flags]
        with open(log, "w") as stderr:
            if fresh:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "charlm", *args],
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,
                    env={**os.environ, **(env or {})},
                )
            else:
                self.proc = forked.start(
                    args, stdout=forked.DEVNULL, stderr=stderr, new_session=True
                )
        self.url = None

    def wait_ready(self, timeout: float = 120) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = SERVING.search(self.output())
            if found:
                self.url = found.group(1)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"charlm serve exited {self.proc.returncode}:\n" + self.output())
            time.sleep(0.1)
        raise RuntimeError(f"charlm serve did not start in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rss(self) -> int:
        """The server process's resident memory, bytes."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024

    def health(self) -> dict:
        return httpx.get(self.url + "/health", timeout=10).json()

    def signal(self, sig=signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def openai_client(url: str):
    import openai

    return openai.OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0, timeout=120)


def stream_events(
    url: str, body: dict, client: httpx.Client | None = None, path: str = "/v1/completions"
):
    """The decoded ``data:`` events of a streamed completion (``[DONE]`` as the string)."""
    with (client or httpx.Client(timeout=120)).stream(
        "POST", url + path, json={**body, "stream": True}
    ) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                yield data if data == "[DONE]" else json.loads(data)


def streamed_texts(url: str, body: dict) -> tuple[list[str], list[str]]:
    """Each choice's text and finish_reason, from a streamed completion."""
    rows = body.get("n", 1) * (len(body["prompt"]) if isinstance(body["prompt"], list) else 1)
    texts, reasons = [""] * rows, [None] * rows
    events = list(stream_events(url, body))
    assert events[-1] == "[DONE]"
    for event in events[:-1]:
        for c in event["choices"]:
            texts[c["index"]] += c["text"]
            reasons[c["index"]] = c["finish_reason"] or reasons[c["index"]]
    return texts, reasons
