"""charlm serve under concurrent streaming clients: aggregate characters/s and time to first
character with 1, 8, 16 and 32 clients, for LSTM 2x512 and LSTM 1x384 (the size of the
recipe's 5-minute model), each served alone by the real ``charlm serve`` in a subprocess; and
head-of-line blocking: the longest gap between a live stream's events while 16 prompts of
4,096 characters arrive together, against its median gap, with each prompt's warm-up fed
whole (``--prefill-chunk 0``, as before) and in pieces between turns (the default).

The runs are written by ``charlm train`` with one training step (the weights are as good as
random: speed does not depend on them), vocabulary 65 (the first 50,000 characters of tiny
Shakespeare). Each client streams ``--length`` characters after its own prompt (a different
40-character slice of the text, so every request warms up its own prefix) with its own
seed; all clients of a round start together. Per level: aggregate chars/s = all characters
received / the round's wall time; time to first character (TTFC) = from the request sent to
the first non-empty text event, per client. The server compiles the batch sizes 1..64 before
serving (its start-up line says how long: excluded from every figure), so no round pays a
compilation. Peak RSS: the server process's VmHWM. Targets (the serve issue): 16 clients
together >= 2.5x the chars/s of one alone; median TTFC at 16 clients <= 3x that of one idle
request. The clients run in this process (asyncio + httpx), the server in its own.

    python benchmarks/bench_serve.py             # full: 3 rounds, 500 characters a client
    python benchmarks/bench_serve.py --quick     # 1 round, 100 characters, 1/4/16 clients
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

C.quiet_tensorflow()

MODELS = {"lstm-2x512": dict(layers=2, units=512), "lstm-1x384": dict(layers=1, units=384)}
SERVING = re.compile(r"serving .* on (http://\S+?)/ ")
COMPILED = re.compile(r"compiled the sampling loop for .* in ([\d.]+) s")


def make_runs(folder: Path) -> dict[str, Path]:
    """One run per model of :data:`MODELS`, one training step each."""
    import charlm

    back, runs = os.getcwd(), {}
    os.chdir(folder)
    try:
        for name, size in MODELS.items():
            run = charlm.train(
                [C.CORPORA / "tinyshakespeare.txt"],
                max_chars=50_000,
                name=name,
                model="lstm",
                embedding_dim=64,
                steps=1,
                batch_size=8,
                seq_len=32,
                eval_every=0,
                sample_every=0,
                progress=False,
                log=lambda _: None,
                **size,
            )
            runs[name] = (folder / run.path).resolve()
    finally:
        os.chdir(back)
    return runs


def start_server(run: Path, log: Path, max_streams: int, *flags: str):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "charlm",
            "serve",
            str(run),
            "--port",
            "0",
            "--max-streams",
            str(max_streams),
            "--max-n",
            "1",
            *flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        out = log.read_text(errors="replace")
        found = SERVING.search(out)
        if found:
            compiled = COMPILED.search(out)
            return proc, found.group(1), float(compiled.group(1)) if compiled else None
        if proc.poll() is not None:
            raise RuntimeError(f"charlm serve exited {proc.returncode}:\n{out}")
        time.sleep(0.2)
    raise RuntimeError("charlm serve did not start in 600 s")


def peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


async def one_client(client, url: str, prompt: str, seed: int, length: int) -> dict:
    body = {"prompt": prompt, "max_tokens": length, "seed": seed, "stream": True}
    sent, first, chars = time.perf_counter(), None, 0
    async with client.stream("POST", url + "/v1/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread())[:200]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            text = "".join(c["text"] for c in json.loads(line[6:])["choices"])
            if text and first is None:
                first = time.perf_counter() - sent
            chars += len(text)
    return {"ttfc": first, "chars": chars, "seconds": time.perf_counter() - sent}


async def one_round(url: str, prompts: list[str], clients: int, length: int, seed: int) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        began = time.perf_counter()
        results = await asyncio.gather(
            *(
                one_client(client, url, prompts[i % len(prompts)], seed + i, length)
                for i in range(clients)
            )
        )
        wall = time.perf_counter() - began
    chars = sum(r["chars"] for r in results)
    assert chars == clients * length, (chars, clients * length)
    return {
        "wall": wall,
        "chars_per_sec": chars / wall,
        "ttfc_median": statistics.median(r["ttfc"] for r in results),
        "ttfc_max": max(r["ttfc"] for r in results),
    }


def measure(url: str, prompts: list[str], levels: list[int], rounds: int, length: int):
    """Per level, the median over rounds of each figure (levels interleaved, round by round)."""
    runs = {c: [] for c in levels}
    asyncio.run(one_round(url, prompts, 1, 10, 0))  # the first request's own set-up
    for r in range(rounds):
        for c in levels if r % 2 == 0 else levels[::-1]:
            runs[c].append(asyncio.run(one_round(url, prompts, c, length, 1000 * r)))
            C.say(
                f"  round {r + 1}, {c} clients: {runs[c][-1]['chars_per_sec']:,.0f} chars/s, "
                f"TTFC median {runs[c][-1]['ttfc_median'] * 1000:.0f} ms"
            )
    return {c: {k: C.median([x[k] for x in rs]) for k in rs[0]} for c, rs in runs.items()}


# -- head-of-line blocking: a live stream while a burst of long prompts arrives -----------------

BURST, LONG_PROMPT = 16, 4096  # the burst: 16 requests, each with a prompt of 4,096 characters


async def live_stream(client, url: str, times: list[float], stop: asyncio.Event) -> None:
    """One client streaming a long text; the arrival time of each event with text."""
    body = {"prompt": "ROMEO:", "max_tokens": 100_000, "seed": 1, "stream": True}
    async with client.stream("POST", url + "/v1/completions", json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"]:
                times.append(time.perf_counter())
            if stop.is_set():
                return


async def stall_round(url: str, text: str, offset: int) -> dict:
    """The live stream's gaps between events: the median over its second before the burst,
    and the longest from the burst's start to its end."""
    import httpx

    times: list[float] = []
    stop = asyncio.Event()
    prompts = [text[offset + 1500 * i :][:LONG_PROMPT] for i in range(BURST)]
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=64)) as client:
        live = asyncio.create_task(live_stream(client, url, times, stop))
        await asyncio.sleep(1.5)
        began = time.perf_counter()
        await asyncio.gather(
            *(
                client.post(url + "/v1/completions", json={"prompt": p, "max_tokens": 16})
                for p in prompts
            )
        )
        ended = time.perf_counter()
        await asyncio.sleep(0.3)
        stop.set()
        await live
    before = [b - a for a, b in itertools.pairwise(times) if began - 1.0 <= a and b <= began]
    during = [b - a for a, b in itertools.pairwise(times) if b >= began and a <= ended]
    median = statistics.median(before)
    return {
        "median_gap_ms": median * 1000,
        "longest_gap_ms": max(during) * 1000,
        "longest_over_median": max(during) / median,
        "burst_seconds": ended - began,
    }


def measure_stalls(run: Path, folder: Path, text: str, rounds: int, chunks: list[str]) -> dict:
    """For each ``--prefill-chunk`` of ``chunks`` (0: whole warm-ups, as before), each on its
    own server: the medians over ``rounds`` of :func:`stall_round`'s figures."""
    out = {}
    for chunk in chunks:
        flag = [] if chunk == "default" else ["--prefill-chunk", chunk]
        log = folder / f"stall{chunk}.log"
        proc, url, _ = start_server(run, log, 64, *flag, "--max-tokens", "100000")
        try:
            asyncio.run(one_round(url, [text[:40]], 1, 10, 0))
            rs = [asyncio.run(stall_round(url, text, 997 * r)) for r in range(rounds)]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        out[chunk] = {k: C.median([r[k] for r in rs]) for k in rs[0]}
        C.say(f"  --prefill-chunk {chunk}: {out[chunk]}")
    return out


def stall_report(name: str, stalls: dict) -> str:
    rows = [
        [
            {"0": "whole (--prefill-chunk 0, as before)", "default": "in pieces (the default)"}.get(
                k, f"--prefill-chunk {k}"
            ),
            f["median_gap_ms"],
            f["longest_gap_ms"],
            f["longest_over_median"],
            f["burst_seconds"],
        ]
        for k, f in stalls.items()
    ]
    return "\n".join(
        [
            f"#### {name}: a live stream while {BURST} prompts of {LONG_PROMPT:,} characters "
            "arrive together (target: longest gap < 5x the median)",
            "",
            C.table(
                ["warm-up", "median gap ms", "longest gap ms", "longest / median", "burst s"],
                rows,
            ),
        ]
    )


def report(name: str, figures: dict, compile_s, rss: int, length: int) -> tuple[str, dict]:
    one = figures[min(figures)]
    rows = [
        [
            c,
            f["chars_per_sec"],
            f["chars_per_sec"] / c,
            f["chars_per_sec"] / one["chars_per_sec"],
            f["ttfc_median"] * 1000,
            f["ttfc_max"] * 1000,
            f["ttfc_median"] / one["ttfc_median"],
        ]
        for c, f in sorted(figures.items())
    ]
    ratios = {}
    if 16 in figures:
        ratios = {
            "chars_per_sec_16_over_1": figures[16]["chars_per_sec"] / one["chars_per_sec"],
            "ttfc_16_over_1": figures[16]["ttfc_median"] / one["ttfc_median"],
        }
    lines = [
        f"#### {name}: {length} characters a client; the server compiled batch sizes "
        f"1..{max(figures)} in {compile_s} s before serving (excluded); peak RSS {rss / 2**20:,.0f} MiB",
        "",
        C.table(
            [
                "clients",
                "chars/s (all)",
                "chars/s per client",
                "x 1 client",
                "TTFC median ms",
                "TTFC max ms",
                "TTFC x 1 client",
            ],
            rows,
        ),
    ]
    if ratios:
        lines += [
            "",
            f"16 clients: {ratios['chars_per_sec_16_over_1']:.2f}x the chars/s of one "
            "(target >= 2.5); median TTFC "
            f"{ratios['ttfc_16_over_1']:.2f}x one idle request's (target <= 3)",
        ]
    return "\n".join(lines), ratios


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=0, help="rounds per level (default 3, quick 1)")
    p.add_argument("--length", type=int, default=0, help="characters a client (500, quick 100)")
    p.add_argument(
        "--levels", default="", help="clients per level (default 1,8,16,32; quick 1,8,16)"
    )
    p.add_argument("--models", default=",".join(MODELS), help="which of: " + ", ".join(MODELS))
    p.add_argument(
        "--stalls", default="lstm-1x384", help="the models whose head-of-line stalls are measured"
    )
    p.add_argument(
        "--prefill-chunks", default="0,default", help="the --prefill-chunk values compared"
    )
    args = p.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    length = args.length or (100 if args.quick else 500)
    levels = [int(x) for x in (args.levels or ("1,8,16" if args.quick else "1,8,16,32")).split(",")]
    machine = C.Machine()
    text = (C.CORPORA / "tinyshakespeare.txt").read_text()[:50_000]
    prompts = [text[i * 397 : i * 397 + 40] for i in range(64)]
    out = [
        f"### charlm serve, concurrent streaming clients{' (QUICK)' if args.quick else ''}",
        "",
        "Machine: {machine}",
        "",
    ]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        C.say("training one step of each model ...")
        runs = make_runs(Path(tmp))
        for name in args.models.split(","):
            proc, url, compile_s = start_server(runs[name], Path(tmp) / f"{name}.log", max(levels))
            try:
                C.say(f"{name}: serving at {url} (compiled in {compile_s} s)")
                figures = measure(url, prompts, levels, rounds, length)
                rss = peak_rss(proc.pid)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
            table, ratios = report(name, figures, compile_s, rss, length)
            out += [table, ""]
            results[name] = {
                "figures": figures,
                "compile_seconds": compile_s,
                "peak_rss_bytes": rss,
                "ratios": ratios,
            }
            if name in args.stalls.split(","):
                full = (C.CORPORA / "tinyshakespeare.txt").read_text()
                chunks = args.prefill_chunks.split(",")
                stalls = measure_stalls(runs[name], Path(tmp), full, rounds, chunks)
                out += [stall_report(name, stalls), ""]
                results[name]["stalls"] = stalls
    machine.add_versions()
    info = machine.finish()
    text_out = "\n".join(out).replace("{machine}", machine.describe())
    print(text_out)
    path = C.write_results(
        "bench_serve_quick" if args.quick else "bench_serve",
        {
            "machine": info,
            "length": length,
            "rounds": rounds,
            "levels": levels,
            "models": results,
            "markdown": text_out,
        },
    )
    C.say(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
