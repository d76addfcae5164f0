"""The quality run: ``charlm train corpora/tinyshakespeare.txt --config configs/shakespeare.toml``.

Runs the command as a subprocess and clocks it from process launch to exit (imports and
start-up included), then scores the best weights on the last 10 % of tiny Shakespeare as
charlm splits it (``charlm.text.corpus.split_corpus(text, 0.1)``, 111,539 characters) three ways:

* val 64-char windows: non-overlapping 64-character windows, each from a zero state, every
  character after the first of each window scored (benchmarks/_scoring.py, as race.py);
* val carried: one long stream, state carried (benchmarks/_scoring.py, as race.py);
* charlm eval's default: 64 streams, 256 characters per call, hidden state carried;

and prints them beside reference figures (below) for the same wall-clock budget.

Reference figures (val loss, nats/char, tiny Shakespeare's last 10 %, non-overlapping
64-character windows; each run alone on a 2-core machine, clocked from process launch),
measured for this project outside the repository on an Intel Xeon with AVX-512, bf16 and AMX
(2 cores, TF 2.21): plain Keras fit of Embedding 64 -> LSTM 256 x 2 -> Dense (0.87 M
parameters; seq 100, batch 64, Adam 2e-3, clipnorm 5: the recipe of keras_reference.py)
1.99 at 90 s, 1.63 at 290 s, 1.55 at 568 s; nanoGPT's CPU recipe (4 layers, 128 wide,
0.80 M) 1.90 / 1.62 / 1.54; plain Keras LSTM 512 x 2 (3.3 M) 2.47 / 1.86 (float32) and 1.56
at 568 s (mixed_bfloat16). On an AMD EPYC with AVX2/FMA only (2026-11-24) the plain Keras
LSTM 256 x 2 gave 1.859 at 290 s (451 steps, 10,034 chars/s). Compare only with figures
from the same kind of CPU; better, run race.py, which measures the reference in the same
session.

Run it when the machine is otherwise idle: it takes the preset's 9m30s budget plus start-up
and scoring (about 11-12 minutes). ``--quick`` trains for 60 s instead, to check the script.

    python benchmarks/bench_shakespeare.py
    python benchmarks/bench_shakespeare.py --quick            # ~2 minutes, numbers meaningless
    python benchmarks/bench_shakespeare.py --time-budget 290s # the middle reference row
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C
import _scoring as S

C.quiet_tensorflow()

CORPUS = C.CORPORA / "tinyshakespeare.txt"
CONFIG = C.CONFIGS / "shakespeare.toml"
# reference val losses (nats/char, non-overlapping 64-char windows) at each wall-clock budget,
# measured on an Intel Xeon with AVX-512/bf16/AMX, 2 cores, each run alone (see the docstring)
ANCHORS = {
    90: {
        "nanoGPT 4x128 (0.80 M)": 1.90,
        "plain Keras LSTM 256x2 (0.87 M)": 1.99,
        "plain Keras LSTM 512x2 float32 (3.3 M)": 2.47,
    },
    290: {
        "nanoGPT 4x128 (0.80 M)": 1.62,
        "plain Keras LSTM 256x2 (0.87 M)": 1.63,
        "plain Keras LSTM 512x2 float32 (3.3 M)": 1.86,
    },
    568: {
        "nanoGPT 4x128 (0.80 M)": 1.54,
        "plain Keras LSTM 256x2 (0.87 M)": 1.55,
        "plain Keras LSTM 512x2 mixed_bfloat16 (3.3 M)": 1.56,
    },
}
ANCHORS_MACHINE = "Intel Xeon, AVX-512/bf16/AMX, 2 cores"
# the same plain Keras LSTM 256x2 on an AMD EPYC with AVX2/FMA only, 2026-11-24
ANCHORS_AMD = {290: {"plain Keras LSTM 256x2 (0.87 M)": 1.859}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="train 60 s only (checks the script)")
    p.add_argument("--time-budget", default="", help="override the preset's budget (e.g. 290s)")
    p.add_argument("--keep", default="", help="keep the run in this folder (default: a temp dir)")
    args = p.parse_args(argv)
    budget = args.time_budget or ("60s" if args.quick else "")

    machine = C.Machine()
    run_dir = (
        Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="charlm-bench-shakespeare-"))
    )
    exe = shutil.which("charlm")
    cmd = ([exe] if exe else [sys.executable, "-m", "charlm"]) + [
        "train",
        str(CORPUS),
        "--config",
        str(CONFIG),
        "--runs-dir",
        str(run_dir),
        "--name",
        "shakespeare",
    ]
    if budget:
        cmd += ["--time-budget", budget]
    if args.quick:
        cmd += ["--eval-every", "100", "--eval-chars", "20000"]
    C.say(f"bench_shakespeare: load {C.fmt_load(machine.start_load)}; running: {' '.join(cmd)}")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=C.ROOT, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        C.say(proc.stderr[-3000:])
        C.say(f"charlm train failed with exit status {proc.returncode}")
        return 1
    C.say(f"  trained in {wall:.1f} s (launch to exit)")

    import charlm
    from charlm.text.corpus import read_corpus, split_corpus

    machine.add_versions()
    run = charlm.load(run_dir / "shakespeare", weights="best")
    rows = run.metrics()
    last = rows[-1]
    text = read_corpus([str(CORPUS)])
    _, val = split_corpus(text, 0.1)  # the run's own held-out text
    t1 = time.monotonic()
    default = run.evaluate(text=val)  # charlm eval's defaults: batch 64, seq 256, state carried
    t_default = time.monotonic() - t1
    shared = S.both(run.model, run.vocab.encode(val))  # the same functions as race.py
    windows, carried = shared["windows64"], shared["carried"]
    best_row = min(
        (r for r in rows if r.get("val_loss") not in (None, "")),
        key=lambda r: float(r["val_loss"]),
        default=None,
    )

    info = machine.finish()
    cfg = run.config
    result = {
        "wall_seconds_launch_to_exit": wall,
        "time_budget": budget or cfg.time_budget,
        "steps": int(float(last["step"])),
        "epochs": int(float(last["epoch"])),
        "chars_per_sec_median": C.median(
            [float(r["chars_per_sec"]) for r in rows[1:]] or [float(last["chars_per_sec"])]
        ),
        "best_row_val_loss_during_training": float(best_row["val_loss"]) if best_row else None,
        "best_row_step": int(float(best_row["step"])) if best_row else None,
        "final_train_loss": float(last["train_loss"]),
        "val_chars": len(val),
        "val_windows64": windows,
        "val_carried_one_stream": carried,
        "eval_default_64x256_carried": default,
        "eval_default_seconds": t_default,
        "model": f"{cfg.model} {cfg.layers}x{cfg.units} emb {cfg.embedding_dim} {cfg.precision}, "
        f"dropout {cfg.dropout}, seq {cfg.seq_len}, batch {cfg.batch_size}",
    }
    anchor_row = 568 if not budget else min(ANCHORS, key=lambda s: abs(s - wall))
    anchors = [
        [f"reference ({ANCHORS_MACHINE}): {k}", anchor_row, v, "", "", ""]
        for k, v in ANCHORS[anchor_row].items()
    ]
    anchors += [
        [f"reference (AMD EPYC, AVX2/FMA only): {k}", sec, v, "", "", ""]
        for sec, d in ANCHORS_AMD.items()
        if sec == anchor_row
        for k, v in d.items()
    ]
    out = [
        f"### Quality run: configs/shakespeare.toml{' (QUICK: ' + budget + ' budget)' if budget else ''}",
        "",
        f"Machine: {machine.describe()}",
        "",
        f"Model: {result['model']}; {result['steps']:,} steps, "
        f"{result['chars_per_sec_median']:,.0f} chars/s (median of metrics rows).",
        "",
        C.table(
            [
                "what",
                "wall-clock s (launch to exit)",
                "val 64-char windows, zero state",
                "val carried, one stream",
                "val, charlm eval default (64 × 256, carried)",
                "train loss (last rows)",
            ],
            [
                [
                    "charlm shakespeare.toml (best weights)",
                    wall,
                    windows["nats_per_char"],
                    carried["nats_per_char"],
                    default["nats_per_char"],
                    result["final_train_loss"],
                ]
            ]
            + anchors,
        ),
        "",
        f"(val = last 10 % of tiny Shakespeare as charlm splits it, {len(val):,} characters; "
        f"64-char windows score {windows['chars']:,} of them (not the first of each window), "
        f"the one stream {carried['chars']:,}; bits/char {windows['bits_per_char']:.3f} / "
        f"{carried['bits_per_char']:.3f}. Reference rows: other machines, other sessions; "
        "see the script's docstring.)",
    ]
    text_out = "\n".join(out)
    print(text_out)
    path = C.write_results(
        "bench_shakespeare_quick" if args.quick else "bench_shakespeare",
        {
            "benchmark": "bench_shakespeare",
            "quick": args.quick,
            "machine": info,
            "command": cmd,
            "result": result,
            "anchors": {
                "machine": ANCHORS_MACHINE,
                "figures": ANCHORS,
                "amd_epyc_avx2": ANCHORS_AMD,
            },
            "run_dir": str(run_dir),
            "markdown": text_out,
            "train_stderr_tail": proc.stderr[-2000:],
        },
    )
    C.say(f"results: {path}")
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
