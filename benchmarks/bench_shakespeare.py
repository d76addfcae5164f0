"""The quality run: ``charlm train corpora/tinyshakespeare.txt --config configs/shakespeare.toml``.

Runs the command as a subprocess and clocks it from process launch to exit (imports and
start-up included, as ANCHORS.md does), then scores the best weights on the last 10 % of tiny
Shakespeare (nanoGPT's split: ``text[int(0.9 * n):]``) two ways:

* charlm eval's default: 64 streams, 256 characters per call, hidden state carried;
* the ANCHORS way: non-overlapping 64-character windows, each from a zero state
  (``run.evaluate(batch_size=..., seq_len=64, carry_state=False)``, with a batch size for
  which every window is a full 64 characters);

and prints them beside the anchor figures (same wall-clock budget, this kind of machine):
LSTM 256x2 plain Keras fit 1.55 at 568 s, nanoGPT 1.54, LSTM 512x2 mixed_bfloat16 1.56.

Run it when the machine is otherwise idle: it takes the preset's 9m30s budget plus start-up
and scoring (about 10-11 minutes). ``--quick`` trains for 60 s instead, to check the script.

    python benchmarks/bench_shakespeare.py
    python benchmarks/bench_shakespeare.py --quick            # ~1.5 minutes, numbers meaningless
    python benchmarks/bench_shakespeare.py --time-budget 290s # the middle anchor row
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

C.quiet_tensorflow()

CORPUS = C.CORPORA / "tinyshakespeare.txt"
CONFIG = C.CONFIGS / "shakespeare.toml"
# ANCHORS.md: val loss (nats/char, non-overlapping 64-char windows) at each wall-clock budget
ANCHORS = {
    90: {"nanoGPT 4x128 (0.80 M)": 1.90, "plain Keras LSTM 256x2 (0.87 M)": 1.99,
         "plain Keras LSTM 512x2 float32 (3.3 M)": 2.47},
    290: {"nanoGPT 4x128 (0.80 M)": 1.62, "plain Keras LSTM 256x2 (0.87 M)": 1.63,
          "plain Keras LSTM 512x2 float32 (3.3 M)": 1.86},
    568: {"nanoGPT 4x128 (0.80 M)": 1.54, "plain Keras LSTM 256x2 (0.87 M)": 1.55,
          "plain Keras LSTM 512x2 mixed_bfloat16 (3.3 M)": 1.56},
}


def full_window_batch(n_pred: int, seq_len: int = 64, max_batch: int = 64) -> int:
    """The largest batch size for which charlm's Scorer cuts every window to a full ``seq_len``
    (its rows are ceil(n / streams) long), so that carry_state=False scores exactly the
    non-overlapping windows nanoGPT-style figures use; 1 always works."""
    for b in range(min(max_batch, max(1, n_pred // seq_len)), 0, -1):
        length = -(-n_pred // b)
        if length % seq_len == 0 or b == 1:
            # only the last row may be shorter (the text's end), as with a single stream
            return b
    return 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="train 60 s only (checks the script)")
    p.add_argument("--time-budget", default="", help="override the preset's budget (e.g. 290s)")
    p.add_argument("--keep", default="", help="keep the run in this folder (default: a temp dir)")
    args = p.parse_args(argv)
    budget = args.time_budget or ("60s" if args.quick else "")

    machine = C.Machine()
    run_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="charlm-bench-shakespeare-"))
    exe = shutil.which("charlm")
    cmd = ([exe] if exe else [sys.executable, "-m", "charlm"]) + [
        "train", str(CORPUS), "--config", str(CONFIG), "--run-dir", str(run_dir),
        "--name", "shakespeare"]
    if budget:
        cmd += ["--time-budget", budget]
    if args.quick:
        cmd += ["--eval-every", "100", "--eval-chars", "20000"]
    C.say(f"bench_shakespeare: load {C.fmt_load(machine.start_load)}; running: {' '.join(cmd)}")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=C.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        C.say(proc.stderr[-3000:])
        C.say(f"charlm train failed with exit status {proc.returncode}")
        return 1
    C.say(f"  trained in {wall:.1f} s (launch to exit)")

    import charlm
    from charlm.corpus import read_corpus

    machine.add_versions()
    run = charlm.load(run_dir / "shakespeare", weights="best")
    rows = run.metrics()
    last = rows[-1]
    text = read_corpus([str(CORPUS)])
    val = text[int(0.9 * len(text)):]  # nanoGPT's split
    n_pred = len(val) - 1
    t1 = time.monotonic()
    carried = run.evaluate(text=val)  # charlm eval's defaults: batch 64, seq 256, state carried
    t_carried = time.monotonic() - t1
    b = full_window_batch(n_pred)
    t1 = time.monotonic()
    windows = run.evaluate(text=val, batch_size=b, seq_len=64, carry_state=False)
    t_windows = time.monotonic() - t1
    best_row = min((r for r in rows if r.get("val_loss") not in (None, "")),
                   key=lambda r: float(r["val_loss"]), default=None)

    info = machine.finish()
    cfg = run.config
    result = {
        "wall_seconds_launch_to_exit": wall, "time_budget": budget or cfg.time_budget,
        "steps": int(float(last["step"])), "epochs": int(float(last["epoch"])),
        "chars_per_sec_median": C.median([float(r["chars_per_sec"]) for r in rows[1:]] or
                                         [float(last["chars_per_sec"])]),
        "best_row_val_loss_during_training": float(best_row["val_loss"]) if best_row else None,
        "best_row_step": int(float(best_row["step"])) if best_row else None,
        "final_train_loss": float(last["train_loss"]),
        "val_chars_scored": n_pred,
        "eval_default_carried": carried, "eval_default_seconds": t_carried,
        "eval_windows64_zero_state": windows, "eval_windows64_batch_size": b,
        "eval_windows64_seconds": t_windows,
        "model": f"{cfg.model} {cfg.layers}x{cfg.units} emb {cfg.embedding_dim} {cfg.precision}, "
                 f"dropout {cfg.dropout}, seq {cfg.seq_len}, batch {cfg.batch_size}",
    }
    anchor_row = 568 if not budget else min(ANCHORS, key=lambda s: abs(s - wall))
    out = [f"### Quality run: configs/shakespeare.toml{' (QUICK: ' + budget + ' budget)' if budget else ''}",
           "", f"Machine: {machine.describe()}", "",
           f"Model: {result['model']}; {result['steps']:,} steps, "
           f"{result['chars_per_sec_median']:,.0f} chars/s (median of metrics rows).", "",
           C.table(["what", "wall-clock s (launch to exit)", "val loss, 64-char windows from zero state",
                    "val loss, charlm eval default (state carried)", "train loss (last window)"],
                   [["charlm shakespeare.toml", wall, windows["nats_per_char"],
                     carried["nats_per_char"], result["final_train_loss"]]]
                   + [[f"anchor: {k}", anchor_row, v, "", ""] for k, v in ANCHORS[anchor_row].items()]),
           "", f"(val = last 10 % of tiny Shakespeare, {n_pred:,} characters scored; windows scored "
               f"with batch_size={b}, every window a full 64 characters except the text's last; "
               f"bits/char {windows['bits_per_char']:.3f} / {carried['bits_per_char']:.3f})"]
    text_out = "\n".join(out)
    print(text_out)
    path = C.write_results("bench_shakespeare_quick" if args.quick else "bench_shakespeare", {
        "benchmark": "bench_shakespeare", "quick": args.quick, "machine": info, "command": cmd,
        "result": result, "anchors": ANCHORS, "run_dir": str(run_dir), "markdown": text_out,
        "train_stderr_tail": proc.stderr[-2000:]})
    C.say(f"results: {path}")
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
