"""The race: charlm's budget recipe against the real nanoGPT (and, on request, plain Keras and a
Keras twin of nanoGPT's small GPT), on tiny Shakespeare or the Tang poems, at fixed wall-clock
budgets, clocked from launch to exit.

Contenders (``--contenders``, default ``charlm,nanogpt``):

* ``charlm``: ``charlm train CORPUS --time-budget <B> --runs-dir <tmp> --name race`` and no
  other setting (the budget recipe picks the family and everything else). Its --time-budget
  counts from launch and keeps back time for its final validation, save and exit.
* ``nanogpt``: karpathy/nanoGPT's own train.py from a checkout (``--nanogpt``), in a Python
  with torch (``--nanogpt-python``), with its CPU baby-GPT recipe stretched to the budget
  (benchmarks/nanogpt.py says how; nothing of nanoGPT is copied here).
* ``keras``: benchmarks/keras_reference.py, the plain Keras recipe charlm grew from
  (Embedding 64 -> LSTM 256 x 2 -> Dense, seq 100, batch 64, Adam 2e-3, clipnorm 5).
* ``gpt``: benchmarks/gpt_reference.py, nanoGPT's baby GPT written in Keras 3.

Each contender runs alone on the whole machine, one after the other (order rotating from one
budget to the next), or with ``--pin`` all at once, each pinned to its own core with one
thread (``taskset -c i``, OMP/TF threads 1): a long budget then costs its length once.

After the runs (never while one trains) each model is scored on the val split as charlm
splits it (``charlm.text.corpus.split_corpus(text, 0.1)``), the same way for all:

* val 64-char windows: non-overlapping 64-character windows, each from a zero state (its own
  context for a transformer), every character after the first of each window scored;
* val carried (recurrent models only): one long stream, state carried.

Both are mean nats per character; charlm's model is scored with its last weights
(``charlm.load(run, weights="last")``), nanoGPT's from its last checkpoint.

Writes benchmarks/results/race_<corpus>[_pinned][_quick].json; appends nothing to BENCHMARKS.md.

    python benchmarks/race.py --nanogpt ~/nanoGPT --nanogpt-python ~/torch/bin/python \
        --budgets 90,300
    python benchmarks/race.py ... --budgets 1200,3600 --pin
    python benchmarks/race.py ... --corpus tang --budgets 90
    python benchmarks/race.py ... --quick          # 20 s budgets, part of val
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _common as C

C.quiet_tensorflow()

HERE = Path(__file__).resolve().parent
CORPORA = {"shakespeare": "tinyshakespeare.txt", "tang": "tang_poems.txt"}
CONTENDERS = ("keras", "gpt", "charlm", "nanogpt")


REFERENCES = {  # contender: (script, its record file, weights file)
    "keras": ("keras_reference.py", "ref.json"),
    "gpt": ("gpt_reference.py", "gpt.json"),
}


def pinned(core: int | None) -> tuple[list[str], dict]:
    """The command prefix and environment that keep a contender on one core with one thread
    (nothing when ``core`` is None: the whole machine)."""
    env = dict(os.environ)
    if core is None:
        return [], env
    env.update(OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    return ["taskset", "-c", str(core)], env


def run_reference(
    contender: str, budget: float, work: Path, reserve: float, core: int | None = None
) -> dict:
    """One run of a reference script (keras_reference.py or gpt_reference.py), launch to exit."""
    script, record = REFERENCES[contender]
    out = work / contender
    load = C.loadavg()
    prefix, env = pinned(core)
    with open(work / f"{contender}.out", "w") as so, open(work / f"{contender}.err", "w") as se:
        t0 = time.time()
        proc = subprocess.run(
            prefix
            + [
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
            env=env,
        )
        wall = time.time() - t0
    r = {
        "returncode": proc.returncode,
        "wall_seconds": wall,
        "load_at_launch": load,
        "load_at_exit": C.loadavg(),
        "folder": str(out),
        "core": core,
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


def run_charlm(budget: float, work: Path, corpus: Path, core: int | None = None) -> dict:
    exe = shutil.which("charlm")
    prefix, env = pinned(core)
    cmd = ([exe] if exe else [sys.executable, "-m", "charlm"]) + [
        "train",
        str(corpus),
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
        proc = subprocess.run(prefix + cmd, cwd=C.ROOT, stdout=so, stderr=se, env=env)
        wall = time.time() - t0
    r = {
        "returncode": proc.returncode,
        "wall_seconds": wall,
        "load_at_launch": load,
        "load_at_exit": C.loadavg(),
        "folder": str(work / "runs" / "race"),
        "command": " ".join(prefix + (cmd[1:] if exe else cmd[2:])),
        "core": core,
        "recipe": [
            line
            for f in ("charlm.out", "charlm.err")
            for line in (work / f).read_text(errors="replace").splitlines()
            if line.startswith(("recipe:", "run ", "device:"))
        ],
    }
    return r


def charlm_details(r: dict) -> None:
    """Add what charlm's run folder says (steps, config, metrics) to its result ``r``: read
    after every contender has finished, so that loading it takes no CPU from a race."""
    if r["returncode"] == 0:
        import charlm

        run = charlm.load(r["folder"], weights="last")
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
                        "context",
                        "heads",
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


def carried(r: dict) -> str:
    """The carried-state val loss of a run, or a dash for the GPTs scored in windows alone."""
    c = r["val"]["carried"]
    return "—" if c is None else f"{c['nats_per_char']:.4f}"


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


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--budgets",
        default="",
        help="seconds, comma-separated (default 90,300,1200,3600; quick 20)",
    )
    p.add_argument("--corpus", choices=sorted(CORPORA), default="shakespeare")
    p.add_argument(
        "--contenders",
        default="charlm,nanogpt",
        help=f"comma-separated, of {', '.join(CONTENDERS)} (default charlm,nanogpt)",
    )
    p.add_argument(
        "--nanogpt",
        default=os.environ.get("NANOGPT", ""),
        help="a checkout of karpathy/nanoGPT (default $NANOGPT)",
    )
    p.add_argument(
        "--nanogpt-python",
        default=os.environ.get("NANOGPT_PYTHON", ""),
        help="a Python with torch for nanoGPT (default $NANOGPT_PYTHON)",
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="run the contenders at once, each on its own core with one thread (default: one "
        "after the other, each alone on the whole machine)",
    )
    p.add_argument(
        "--nanogpt-slowdown",
        type=float,
        default=1.0,
        help="multiply nanoGPT's calibrated seconds per iteration by this before stretching "
        "(default 1: the issue's protocol; its later iterations ran slower than the "
        "calibration's on one machine, and the run overshot the budget)",
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
    p.add_argument("--tag", default="", help="appended to the results file's name")
    args = p.parse_args(argv)
    args.contenders = tuple(args.contenders.split(","))
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        p.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    if args.pin and len(args.contenders) > (os.cpu_count() or 1):
        p.error("--pin needs a core for each contender")
    if "nanogpt" in args.contenders and not (args.nanogpt and args.nanogpt_python):
        p.error("nanogpt needs --nanogpt CHECKOUT and --nanogpt-python PYTHON")
    return args


class Race:
    """The contenders' launches, each in its own work folder, alone or pinned side by side."""

    def __init__(self, args, root: Path, corpus: Path, train_text: str, val_text: str):
        self.args, self.root, self.corpus = args, root, corpus
        self.train_text, self.val_text = train_text, val_text
        self.calibration = {}
        if "nanogpt" in args.contenders:
            import nanogpt

            core = args.contenders.index("nanogpt") if args.pin else None
            work = self._nano_work(root / "nanogpt-calibration")
            prefix, env = pinned(core)
            iters = 120 if args.quick else nanogpt.CALIBRATION_ITERS
            C.say(f"  nanoGPT: calibrating ({iters} iterations) ...")
            self.calibration = nanogpt.calibrate(args.nanogpt_python, work, prefix, env, iters)
            self.calibration["slowdown"] = args.nanogpt_slowdown
            self.calibration["seconds_per_iteration"] *= args.nanogpt_slowdown
            C.say(
                f"    {self.calibration['seconds_per_iteration'] * 1000:.1f} ms/iteration "
                f"(x{args.nanogpt_slowdown:g}), "
                f"start-up {self.calibration['startup_seconds']:.1f} s, evaluation "
                f"{self.calibration['evaluation_seconds']:.1f} s"
            )

    def _nano_work(self, work: Path) -> Path:
        import nanogpt

        return nanogpt.workdir(Path(self.args.nanogpt), work, self.train_text, self.val_text)

    def launch(self, contender: str, budget: float, work: Path, core: int | None) -> dict:
        work.mkdir(parents=True, exist_ok=True)
        if contender in REFERENCES:
            return run_reference(contender, budget, work, self.args.reserve, core)
        if contender == "charlm":
            return run_charlm(budget, work, self.corpus, core)
        import nanogpt

        prefix, env = pinned(core)
        return nanogpt.run(
            self.args.nanogpt_python, self._nano_work(work), budget, self.calibration, prefix, env
        )

    def score(self, contender: str, r: dict, val: str) -> None:
        if contender != "nanogpt":
            return score(contender, r, val)
        import nanogpt

        meta = Path(r["folder"]).parent / "data" / "shakespeare_char" / "meta.pkl"
        nanogpt.score(self.args.nanogpt_python, Path(self.args.nanogpt), r, val, meta)

    def budget(self, budget: float, rep: int, k: int) -> list[dict]:
        """Every contender's run at ``budget``: pinned side by side, or one after the other
        (the order rotating with ``k``)."""
        names = self.args.contenders
        works = {c: self.root / f"{int(budget)}s-{rep}-{c}" for c in names}
        time.sleep(self.args.pause)
        if self.args.pin:
            C.say(f"  {budget:g} s, repeat {rep + 1}: {', '.join(names)} side by side, pinned ...")
            with ThreadPoolExecutor(len(names)) as pool:
                futures = {
                    c: pool.submit(self.launch, c, budget, works[c], i) for i, c in enumerate(names)
                }
                runs = {c: f.result() for c, f in futures.items()}
        else:
            runs = {}
            for c in names[k % len(names) :] + names[: k % len(names)]:
                C.say(f"  {budget:g} s, repeat {rep + 1}: {c} (load {C.fmt_load(C.loadavg())}) ...")
                runs[c] = self.launch(c, budget, works[c], None)
                time.sleep(self.args.pause)
        for c, r in runs.items():
            r.update(contender=c, budget=budget, repeat=rep, pinned=self.args.pin)
        return [runs[c] for c in names]


def main(argv=None) -> int:
    args = parse(argv)
    budgets = [
        float(b) for b in (args.budgets or ("20" if args.quick else "90,300,1200,3600")).split(",")
    ]
    val_chars = args.val_chars or (20_000 if args.quick else 0)
    corpus = C.CORPORA / CORPORA[args.corpus]

    machine = C.Machine()
    from charlm.text.corpus import read_corpus, split_corpus

    text = read_corpus([str(corpus)])
    train_text, val = split_corpus(text, 0.1)
    val_scored = val[:val_chars] if val_chars else val
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="charlm-race-"))
    root.mkdir(parents=True, exist_ok=True)
    C.say(C.cpu_line())
    C.say(
        f"race on {corpus.name}: {', '.join(args.contenders)}, budgets {budgets} s, "
        f"{'pinned side by side' if args.pin else 'each alone'}, {args.repeats} repeat(s), "
        f"load {C.fmt_load(machine.start_load)}; runs in {root}"
    )
    race = Race(args, root, corpus, train_text, val)
    results = []  # one dict per run
    out_name = (
        f"race_{args.corpus}" + ("_pinned" if args.pin else "") + ("_quick" if args.quick else "")
    )
    out_name += f"_{args.tag}" if args.tag else ""

    def save(extra=None):
        C.write_results(
            out_name,
            {
                "benchmark": "race",
                "corpus": corpus.name,
                "quick": args.quick,
                "pinned": args.pin,
                "contenders": args.contenders,
                "machine": machine.info,
                "budgets": budgets,
                "repeats": args.repeats,
                "val_chars_scored_from": len(val_scored),
                "nanogpt_calibration": race.calibration,
                "runs": results,
                **(extra or {}),
            },
        )

    k = 0
    for rep in range(args.repeats):
        for budget in budgets:
            runs = race.budget(budget, rep, k)
            k += 1
            for r in runs:
                c = r["contender"]
                if r["returncode"] != 0:
                    err = Path(r["folder"]).parent
                    C.say(f"  {c} failed with exit status {r['returncode']}; see {err}")
                    results.append(r)
                    save()
                    return 1
                if c == "charlm":
                    charlm_details(r)
                if c in REFERENCES:
                    assert r["train_chars"] == len(train_text), (
                        "the reference's split differs from charlm's"
                    )
                t0 = time.perf_counter()
                race.score(c, r, val_scored)
                r["scoring_seconds"] = time.perf_counter() - t0
                C.say(
                    f"    {c}: {r['steps']} steps, {r['wall_seconds']:.1f} s launch to exit; val "
                    f"{r['val']['windows64']['nats_per_char']:.4f} (64-char windows), "
                    f"{carried(r)} (carried); scored in {r['scoring_seconds']:.1f} s"
                )
                results.append(r)
                save()
    summary, text_out = report(args, budgets, results, machine, val_chars, val_scored, corpus)
    save({"machine": machine.info, "summary": summary, "markdown": text_out})
    C.say(f"results: {C.RESULTS / (out_name + '.json')}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def choice(r: dict) -> str:
    """charlm's choice in a few words (model, shape, precision), or '' for the others."""
    cfg = r.get("config")
    if not cfg:
        return ""
    return f"{cfg['model']} {cfg['layers']}x{cfg['units']} {cfg['precision']}"


def report(args, budgets, results, machine, val_chars, val_scored, corpus):
    """The table of medians over repeats, and its JSON rows."""

    def med(contender, budget, fn):
        xs = [fn(r) for r in results if r["contender"] == contender and r["budget"] == budget]
        return None if not xs or None in xs else C.median(xs)

    rows, summary = [], []
    for budget in budgets:
        nano = med("nanogpt", budget, lambda r: r["val"]["windows64"]["nats_per_char"])
        for contender in args.contenders:
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
                "choice": "; ".join(
                    choice(r)
                    for r in results
                    if r["contender"] == contender and r["budget"] == budget
                ),
            }
            s["windows64_minus_nanogpt"] = None if nano is None else s["val_windows64"] - nano
            summary.append(s)
            rows.append(
                [
                    f"{budget:g} s",
                    contender + (f" ({s['choice']})" if s["choice"] else ""),
                    int(s["steps"]),
                    s["chars_per_sec_launch_to_exit"],
                    s["chars_per_sec_in_loop"],
                    f"{s['val_windows64']:.4f}",
                    "—" if s["val_carried"] is None else f"{s['val_carried']:.4f}",
                    "—"
                    if s["windows64_minus_nanogpt"] is None
                    else f"{s['windows64_minus_nanogpt']:+.4f}",
                    f"{s['wall_seconds']:.1f}",
                ]
            )
    machine.add_versions()
    machine.finish()
    v = (
        "whole val split"
        if not val_chars
        else f"first {len(val_scored):,} characters of val (QUICK)"
    )
    how = (
        "side by side, each pinned to one core with one thread (taskset)"
        if args.pin
        else "one after the other, each alone on the whole machine"
    )
    out = [
        f"### Race on {corpus.name}: {', '.join(args.contenders)}, {how}, launch to exit"
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
                "windows − nanogpt",
                "wall s",
            ],
            rows,
        ),
    ]
    text_out = "\n".join(out)
    print(text_out)
    return summary, text_out


if __name__ == "__main__":
    sys.exit(main())
