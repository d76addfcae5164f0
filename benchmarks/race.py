"""The race: plain Keras and a small GPT against charlm's budget recipe, on tiny Shakespeare,
at fixed wall-clock budgets.

At each budget (default 90 s, 5, 10 and 20 min) three contenders run one after the other, each
ALONE in its own subprocess, clocked from launch to exit (imports and start-up included):

* ``keras``: benchmarks/keras_reference.py, the plain Keras recipe charlm grew from
  (Embedding 64 -> LSTM 256 x 2 -> Dense, seq 100, batch 64, Adam 2e-3 constant, clipnorm 5,
  ``model.fit`` on random windows); it is handed its launch time and stops itself so that it
  exits by the budget;
* ``gpt``: benchmarks/gpt_reference.py, nanoGPT's CPU "baby GPT" in Keras 3 (4 layers x 128,
  4 heads, block 64, batch 12, AdamW 1e-3 with decay 0.1 on matrices, warm-up 100 iterations,
  cosine to 10 % stretched to the budget by the clock), launched and stopped like ``keras``;
* ``charlm``: ``charlm train corpora/tinyshakespeare.txt --time-budget <B> --runs-dir <tmp>
  --name race`` and no other setting (the budget recipe picks everything). charlm's
  --time-budget counts from launch and keeps back time for its final validation, save and
  exit, so it aims to exit by the budget too; the table shows the launch-to-exit time.

The order of the three rotates from one budget to the next. After each run (never while one
is training) this process scores the model on tiny Shakespeare's val split, the last 10 % as
charlm splits it (``charlm.text.corpus.split_corpus(text, 0.1)``, 111,539 characters), the same
two ways for both (benchmarks/_scoring.py; scoring time is not part of any budget):

* val 64-char windows: non-overlapping 64-character windows, each from a zero state, every
  character after the first of each window scored (1,743 windows, 109,796 characters);
* val carried: one long stream, state carried, every character after the first scored.

Both are mean nats per character. The GPT has no state to carry: it is scored in the
64-character windows only (each window with its own causal context; "carried" shows a dash).
The Keras model is scored from its saved weights (the
same layers rebuilt with the LSTM states as inputs and outputs); charlm's with
``charlm.load(run, weights="last")``: the weights at exit, as for Keras (charlm's default
"best" weights are picked by validation on this same split).

chars/s is given two ways: characters trained / launch-to-exit seconds (the same clock for
both), and the rate inside the training loop (Keras: from the start of ``fit`` to its last
step; charlm: to its last metrics row, evaluations and saves included).

Time to quality: the first row of charlm's metrics.csv whose val_loss is at or below the Keras
reference's val loss at the largest budget. charlm scores its val_loss during training with
state carried, 64 streams of min(256, max(seq_len, 64))-character chunks
(``charlm.use.evaluate.Scorer``, the first
``eval_chars`` + 1 characters of val, or all of it), so for this comparison the Keras model is
scored the same way with the same Scorer. metrics.csv's wall_time is charlm's own budget
clock, which counts from launch (start-up included).

Writes benchmarks/results/race.json (race_quick.json with --quick); appends nothing to
BENCHMARKS.md.

    python benchmarks/race.py                          # 90 s to 20 min: about 110 minutes
    python benchmarks/race.py --budgets 90,300,600 --repeats 3
    python benchmarks/race.py --quick                  # 20 s budgets, part of val: about 1.5 min
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

C.quiet_tensorflow()

HERE = Path(__file__).resolve().parent
CORPUS = C.CORPORA / "tinyshakespeare.txt"
CONTENDERS = ("keras", "gpt", "charlm")


REFERENCES = {  # contender: (script, its record file, weights file)
    "keras": ("keras_reference.py", "ref.json"),
    "gpt": ("gpt_reference.py", "gpt.json"),
}


def run_reference(contender: str, budget: float, work: Path, reserve: float) -> dict:
    """One run of a reference script (keras_reference.py or gpt_reference.py), launch to exit."""
    script, record = REFERENCES[contender]
    out = work / contender
    load = C.loadavg()
    with open(work / f"{contender}.out", "w") as so, open(work / f"{contender}.err", "w") as se:
        t0 = time.time()
        proc = subprocess.run(
            [
                sys.executable,
                str(HERE / script),
                "--budget",
                str(budget),
                "--launch-time",
                repr(t0),
                "--out",
                str(out),
                "--reserve",
                str(reserve),
            ],
            cwd=C.ROOT,
            stdout=so,
            stderr=se,
        )
        wall = time.time() - t0
    r = {
        "returncode": proc.returncode,
        "wall_seconds": wall,
        "load_at_launch": load,
        "load_at_exit": C.loadavg(),
        "folder": str(out),
    }
    if proc.returncode == 0:
        info = json.loads((out / record).read_text())
        r.update(
            {
                k: info[k]
                for k in (
                    "steps",
                    "chars_per_step",
                    "last_train_loss",
                    "params",
                    "start_seconds",
                    "fit_seconds",
                    "train_chars",
                )
            }
        )
        r["loop_chars_per_sec"] = info["steps"] * info["chars_per_step"] / info["fit_seconds"]
        if "curve" in info:
            r["train_curve"] = info["curve"]  # [step, seconds since fit began, mean train loss]
    return r


def run_charlm(budget: float, work: Path) -> dict:
    exe = shutil.which("charlm")
    cmd = ([exe] if exe else [sys.executable, "-m", "charlm"]) + [
        "train",
        str(CORPUS),
        "--time-budget",
        f"{budget:g}s",
        "--runs-dir",
        str(work / "runs"),
        "--name",
        "race",
    ]
    load = C.loadavg()
    with open(work / "charlm.out", "w") as so, open(work / "charlm.err", "w") as se:
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=C.ROOT, stdout=so, stderr=se)
        wall = time.time() - t0
    r = {
        "returncode": proc.returncode,
        "wall_seconds": wall,
        "load_at_launch": load,
        "load_at_exit": C.loadavg(),
        "folder": str(work / "runs" / "race"),
        "command": " ".join(cmd[1:] if exe else cmd[2:]),
    }
    if proc.returncode == 0:
        import charlm

        run = charlm.load(work / "runs" / "race", weights="last")
        rows, cfg = run.metrics(), run.config
        last = rows[-1]
        r.update(
            {
                "steps": int(last["step"]),
                "chars_per_step": cfg.batch_size * cfg.seq_len,
                "last_train_loss": float(last["train_loss"]),
                "params": run.model.count_params(),
                "train_clock_seconds": float(last["wall_time"]),
                "config": {
                    k: getattr(cfg, k)
                    for k in (
                        "model",
                        "layers",
                        "units",
                        "embedding_dim",
                        "dropout",
                        "precision",
                        "seq_len",
                        "batch_size",
                        "optimizer",
                        "lr",
                        "lr_schedule",
                        "warmup_steps",
                        "min_lr_fraction",
                        "clip_norm",
                        "time_budget",
                        "eval_every",
                        "eval_chars",
                    )
                },
                "metrics": [
                    {
                        "step": int(x["step"]),
                        "wall_time": float(x["wall_time"]),
                        "val_loss": float(x["val_loss"]) if x.get("val_loss") else None,
                        "train_loss": float(x["train_loss"]),
                    }
                    for x in rows
                ],
            }
        )
        r["loop_chars_per_sec"] = (
            r["steps"] * r["chars_per_step"] / max(1e-9, r["train_clock_seconds"])
        )
    return r


def carried(r: dict) -> str:
    """The carried-state val loss of a run, or a dash for the GPT (it carries no state)."""
    c = r["val"]["carried"]
    return "—" if c is None else f"{c['nats_per_char']:.4f}"


def time_to_quality(metrics: list[dict], target: float, wall: float) -> dict:
    """The first metrics row with val_loss <= ``target``, and the best row. ``wall`` is the
    run's launch-to-exit time: the launch-relative time of a row is at most its wall_time plus
    max(0, wall - the last row's wall_time) (exactly its wall_time when charlm's clock counts
    from launch; an upper bound when it counts from the start of training)."""
    vals = [m for m in metrics if m["val_loss"] is not None]
    hit = next((m for m in vals if m["val_loss"] <= target), None)
    best = min(vals, key=lambda m: m["val_loss"]) if vals else None
    offset = max(0.0, wall - metrics[-1]["wall_time"]) if metrics else 0.0
    return {
        "target": target,
        "reached": hit is not None,
        "step": hit["step"] if hit else None,
        "wall_time": hit["wall_time"] if hit else None,
        "launch_seconds_at_most": hit["wall_time"] + offset if hit else None,
        "best_val_loss": best["val_loss"] if best else None,
        "best_at_wall_time": best["wall_time"] if best else None,
        "best_step": best["step"] if best else None,
    }


def keras_scoring_model(folder: Path):
    """The saved reference as a charlm-style model (ids, state -> logits, state), and its chars."""
    import keras_reference as KR
    from _scoring import StatefulKeras

    chars = json.loads((folder / "ref.json").read_text())["chars"]
    plain = KR.build_model(len(chars))
    plain.load_weights(str(folder / "ref.weights.h5"))
    twin = KR.build_model(len(chars), with_state=True)
    twin.set_weights(plain.get_weights())
    return StatefulKeras(twin), chars


def score(contender: str, r: dict, val: str) -> None:
    """Add both val losses (benchmarks/_scoring.py) to the result ``r`` of one run."""
    import _scoring as S
    import numpy as np

    if contender in REFERENCES:
        if contender == "keras":
            model, chars = keras_scoring_model(Path(r["folder"]))
        else:
            import gpt_reference

            model, chars = gpt_reference.scoring_model(Path(r["folder"]))
        index = {c: i for i, c in enumerate(chars)}
        unknown = sum(c not in index for c in val)
        ids = np.array([index.get(c, 0) for c in val], np.int32)
    else:
        import charlm

        run = charlm.load(r["folder"], weights="last")
        model, ids = run.model, run.vocab.encode(val)
        unknown = int((ids == 0).sum())
    r["val_unknown_chars"] = unknown
    if contender == "gpt":  # no state to carry: its windows are its whole context
        r["val"] = {"windows64": S.windows_loss(model, ids), "carried": None}
    else:
        r["val"] = S.both(model, ids)


def keras_target_charlm_style(folder: Path, val: str, cfg: dict) -> dict:
    """The Keras model's val loss scored as charlm scores val_loss during training."""
    import numpy as np

    from charlm.use.evaluate import Scorer

    model, chars = keras_scoring_model(folder)
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index.get(c, 0) for c in val], np.int32)
    if cfg.get("eval_chars"):
        ids = ids[: cfg["eval_chars"] + 1]
    seq = min(256, max(cfg["seq_len"], 64))
    out = Scorer(model)(ids, batch_size=64, seq_len=seq)
    out.update(batch_size=64, seq_len=seq, carry_state=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--budgets",
        default="",
        help="seconds, comma-separated (default 90,300,600,1200; quick 20)",
    )
    p.add_argument("--repeats", type=int, default=1, help="runs of each contender at each budget")
    p.add_argument(
        "--quick",
        action="store_true",
        help="20 s budgets and the first 20,000 val characters: checks the script",
    )
    p.add_argument(
        "--val-chars",
        type=int,
        default=0,
        help="score only the first N characters of val (default all; quick 20000)",
    )
    p.add_argument(
        "--reserve",
        type=float,
        default=2.5,
        help="seconds the Keras and GPT references keep for saving and exiting (default 2.5)",
    )
    p.add_argument("--pause", type=float, default=5.0, help="seconds of rest before each launch")
    p.add_argument("--keep", default="", help="keep the runs in this folder (default: a temp dir)")
    args = p.parse_args(argv)
    budgets = [
        float(b) for b in (args.budgets or ("20" if args.quick else "90,300,600,1200")).split(",")
    ]
    val_chars = args.val_chars or (20_000 if args.quick else 0)

    machine = C.Machine()
    from charlm.text.corpus import read_corpus, split_corpus

    text = read_corpus([str(CORPUS)])
    train_text, val = split_corpus(text, 0.1)
    val_scored = val[:val_chars] if val_chars else val
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="charlm-race-"))
    root.mkdir(parents=True, exist_ok=True)
    C.say(C.cpu_line())
    C.say(
        f"race: budgets {budgets} s, {args.repeats} repeat(s), load {C.fmt_load(machine.start_load)}; "
        f"runs in {root}"
    )

    results = []  # one dict per run
    out_name = "race_quick" if args.quick else "race"

    def save(extra=None):
        C.write_results(
            out_name,
            {
                "benchmark": "race",
                "quick": args.quick,
                "machine": machine.info,
                "budgets": budgets,
                "repeats": args.repeats,
                "val_chars_scored_from": len(val_scored),
                "runs": results,
                **(extra or {}),
            },
        )

    k = 0
    for rep in range(args.repeats):
        for budget in budgets:
            order = CONTENDERS[k % 3 :] + CONTENDERS[: k % 3]  # each in each place in turn
            k += 1
            for contender in order:
                work = root / f"{int(budget)}s-{rep}-{contender}"
                work.mkdir(parents=True, exist_ok=True)
                time.sleep(args.pause)
                C.say(
                    f"  {budget:g} s, repeat {rep + 1}: {contender} (load {C.fmt_load(C.loadavg())}) ..."
                )
                r = (
                    run_reference(contender, budget, work, args.reserve)
                    if contender in REFERENCES
                    else run_charlm(budget, work)
                )
                r.update(contender=contender, budget=budget, repeat=rep)
                if r["returncode"] != 0:
                    C.say((work / f"{contender}.err").read_text()[-3000:])
                    C.say(f"  {contender} failed with exit status {r['returncode']}")
                    results.append(r)
                    save()
                    return 1
                if contender in REFERENCES:
                    assert r["train_chars"] == len(train_text), (
                        "the reference's split differs from charlm's"
                    )
                t0 = time.perf_counter()
                score(contender, r, val_scored)
                r["scoring_seconds"] = time.perf_counter() - t0
                C.say(
                    f"    {r['steps']} steps, {r['wall_seconds']:.1f} s launch to exit; val "
                    f"{r['val']['windows64']['nats_per_char']:.4f} (64-char windows), "
                    f"{carried(r)} (carried); scored in {r['scoring_seconds']:.1f} s"
                )
                results.append(r)
                save()

    # -- the table: medians over repeats ------------------------------------------------------
    def med(contender, budget, fn):
        xs = [fn(r) for r in results if r["contender"] == contender and r["budget"] == budget]
        return None if None in xs else C.median(xs)

    rows, summary = [], []
    for budget in budgets:
        ref_w = med("keras", budget, lambda r: r["val"]["windows64"]["nats_per_char"])
        gpt_w = med("gpt", budget, lambda r: r["val"]["windows64"]["nats_per_char"])
        for contender in CONTENDERS:
            s = {
                "budget": budget,
                "contender": contender,
                "steps": med(contender, budget, lambda r: r["steps"]),
                "chars_per_sec_launch_to_exit": med(
                    contender,
                    budget,
                    lambda r: r["steps"] * r["chars_per_step"] / r["wall_seconds"],
                ),
                "chars_per_sec_in_loop": med(contender, budget, lambda r: r["loop_chars_per_sec"]),
                "val_windows64": med(
                    contender, budget, lambda r: r["val"]["windows64"]["nats_per_char"]
                ),
                "val_carried": med(
                    contender,
                    budget,
                    lambda r: r["val"]["carried"] and r["val"]["carried"]["nats_per_char"],
                ),
                "wall_seconds": med(contender, budget, lambda r: r["wall_seconds"]),
                "last_train_loss": med(contender, budget, lambda r: r["last_train_loss"]),
            }
            s["windows64_minus_keras"] = s["val_windows64"] - ref_w
            s["windows64_minus_gpt"] = s["val_windows64"] - gpt_w
            summary.append(s)
            rows.append(
                [
                    f"{budget:g} s",
                    contender,
                    int(s["steps"]),
                    s["chars_per_sec_launch_to_exit"],
                    s["chars_per_sec_in_loop"],
                    f"{s['val_windows64']:.4f}",
                    "—" if s["val_carried"] is None else f"{s['val_carried']:.4f}",
                    f"{s['windows64_minus_keras']:+.4f}",
                    f"{s['windows64_minus_gpt']:+.4f}",
                    f"{s['wall_seconds']:.1f}",
                ]
            )

    # -- time to quality ------------------------------------------------------------------------
    top = max(budgets)
    ttq_rows, ttq = [], []
    charlm_runs = [r for r in results if r["contender"] == "charlm"]
    keras_top = [r for r in results if r["contender"] == "keras" and r["budget"] == top]
    if charlm_runs and keras_top:
        cfg = charlm_runs[-1]["config"]
        targets = [
            keras_target_charlm_style(Path(r["folder"]), val, cfg)["nats_per_char"]
            for r in keras_top
        ]
        target = C.median(targets)
        for r in charlm_runs:
            t = {
                "budget": r["budget"],
                "repeat": r["repeat"],
                **time_to_quality(r["metrics"], target, r["wall_seconds"]),
            }
            ttq.append(t)
            ttq_rows.append(
                [
                    f"{r['budget']:g} s" + (f" #{r['repeat'] + 1}" if args.repeats > 1 else ""),
                    f"{target:.4f}",
                    f"{t['wall_time']:.0f} s (step {t['step']})" if t["reached"] else "not reached",
                    f"≤ {t['launch_seconds_at_most']:.0f} s" if t["reached"] else "—",
                    f"{t['best_val_loss']:.4f} at {t['best_at_wall_time']:.0f} s (step {t['best_step']})"
                    if t["best_val_loss"] is not None
                    else "—",
                ]
            )

    machine.add_versions()
    info = machine.finish()
    v = (
        "whole val split"
        if not val_chars
        else f"first {len(val_scored):,} characters of val (QUICK)"
    )
    out = [
        "### Race: plain Keras, a small GPT (nanoGPT's CPU recipe) and charlm's budget recipe, "
        "tiny Shakespeare, each alone, launch to exit"
        + (" (QUICK: numbers meaningless)" if args.quick else ""),
        "",
        f"Machine: {machine.describe()}",
        "",
        f"Val loss in nats/char on the {v}; medians over {args.repeats} repeat(s). "
        "chars/s: characters trained / launch-to-exit s, and inside the training loop.",
        "",
        C.table(
            [
                "budget",
                "contender",
                "steps",
                "chars/s (launch→exit)",
                "chars/s (in loop)",
                "val 64-char windows",
                "val carried",
                "windows − keras",
                "windows − gpt",
                "wall s",
            ],
            rows,
        ),
    ]
    if ttq_rows:
        seq = min(256, max(cfg["seq_len"], 64))
        out += [
            "",
            f"Time to quality: when charlm's metrics.csv val_loss (carried state, 64 streams × "
            f"{seq}-char chunks, scored during training) first reached the Keras reference's "
            f"{top:g} s val loss scored the same way (charlm.use.evaluate.Scorer, 64 × {seq}, "
            f"{'all of val' if not cfg.get('eval_chars') else str(cfg['eval_chars']) + ' val chars'}). "
            "Times are metrics.csv's wall_time, charlm's own budget clock; 'since launch' is at "
            "most wall_time + max(0, launch-to-exit s − the last row's wall_time). Rows come every "
            f"eval_every ({cfg['eval_every']}) steps, so the time is that coarse.",
            "",
            C.table(
                [
                    "charlm run",
                    f"target (keras @ {top:g} s)",
                    "first reached (metrics wall_time)",
                    "since launch",
                    "charlm best val_loss (metrics wall_time)",
                ],
                ttq_rows,
            ),
        ]
    text_out = "\n".join(out)
    print(text_out)
    save(
        {
            "machine": info,
            "summary": summary,
            "time_to_quality": ttq,
            "markdown": text_out,
            "scoring": {
                "windows64": "non-overlapping 64-char windows, zero state each, chars 2..64 "
                "of each window scored",
                "carried": "one stream, state carried, every char after the first scored",
                "charlm_weights": "last",
                "val": "split_corpus(text, 0.1)[1]",
            },
        }
    )
    C.say(f"results: {C.RESULTS / (out_name + '.json')}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
