"""The Dive-into-Deep-Learning experiment (d2l-zh 1.x, section 6.4) with charlm's scratch RNN.

Recipe (configs/d2l-scratch-rnn.toml): the first 10,000 characters of corpora/tang_poems.txt
with newlines as spaces, one-hot input, 1 x 256 tanh RNN, windows of 35, batch 32, SGD with
lr 100 on the mean loss, gradients clipped to global norm θ = 0.01, the 1st edition's fixed
cut, no held-out text, 250 epochs, one metrics row per epoch (``train_perplexity`` = exp(mean
training loss of the epoch), as the book prints it).

Part 1 runs it through ``charlm.train`` with ``sampler="consecutive"`` and ``"random"``, and
the book's own loop written out without charlm (tests/book_reference.py) on the same text:
once from charlm's initial weights and shuffle order ("same start"), once from the
reference's own seed. It reports the training perplexity at epochs 50/100/150/200/250, how
far each curve is from charlm's, seconds per epoch, and charlm's greedy samples from
分开 / 不分开 / 分開 (the corpus is in Traditional characters: 开 is not in it and is
read as <unk>, with a warning). The book's figures (Jay Chou lyrics, vocabulary 1,027) are printed
beside them.

Part 2 times ``scratch-rnn`` against Keras ``rnn`` (SimpleRNN, same size, one-hot, the same
recipe) with charlm's Trainer, interleaved (A, B, A, B, ...), a few epochs per call, and splits
each epoch into the compiled training steps, the checkpoint/weight saving at the end of the
epoch, and everything else.

    python benchmarks/bench_d2l.py                 # full: about 15-20 minutes on 2 cores
    python benchmarks/bench_d2l.py --quick         # 20 epochs per run, a few minutes
    python benchmarks/bench_d2l.py --skip-speed    # part 1 only
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import shutil
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import _common as C

C.quiet_tensorflow()
sys.path.insert(0, str(C.ROOT / "tests"))
import book_reference as ref  # noqa: E402  (the book's loop, written without charlm)

CONFIG = C.CONFIGS / "d2l-scratch-rnn.toml"
CORPUS = C.CORPORA / "tang_poems.txt"
PREFIXES = ["分开", "不分开", "分開"]
CHECK_EPOCHS = [50, 100, 150, 200, 250]
# Dive-into-DL-PyTorch (the PyTorch port of d2l-zh 1.x), 6.4_rnn-scratch.md, printed output of
# the same recipe on the first 10,000 characters of the Jay Chou lyrics (vocabulary 1,027)
BOOK = {
    "random": {50: 70.039647, 100: 9.726828, 150: 2.864874, 200: 1.597790, 250: 1.303903},
    "consecutive": {50: 59.514416, 100: 6.801417, 150: 2.063730, 200: 1.300031, 250: 1.164455},
}


class Tee(io.TextIOBase):
    """Collects what is written (the trainer's log lines and samples) and passes nothing on."""

    def __init__(self):
        self.parts = []

    def write(self, s):
        self.parts.append(s)
        return len(s)

    def text(self) -> str:
        return "".join(self.parts)


def corpus_stats() -> dict:
    from charlm.text.corpus import read_corpus

    text = read_corpus([str(CORPUS)], max_chars=10000, newlines="space")
    seen, repeated = set(), 0
    for i in range(len(text) - 3):
        g = text[i : i + 4]
        repeated += g in seen
        seen.add(g)
    counts = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    unigram_entropy = -sum(c / n * math.log(c / n) for c in counts.values())
    return {
        "chars": n,
        "distinct_chars": len(counts),
        "vocab_with_unk": len(counts) + 1,
        "repeated_4gram_fraction": repeated / (n - 3),
        "unigram_perplexity": math.exp(unigram_entropy),
        "has_开": "开" in text,
        "has_開": "開" in text,
        "reference_reads_the_same_text": text == ref.load_text(CORPUS),
    }


def run_recipe(sampler: str, tmp: Path, epochs: int, seed: int = 0, steps: int = 0) -> dict:
    """charlm's preset (fixed cut) with ``sampler`` and ``seed``: its curve (one row per epoch;
    with ``steps``, one row per step for that many steps), timing and greedy samples."""
    import charlm

    sink, warnings = Tee(), []
    limits = {"steps": steps, "eval_every": 1} if steps else {"epochs": epochs}
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(sink):
        run = charlm.train(
            [str(CORPUS)],
            config=str(CONFIG),
            sampler=sampler,
            seed=seed,
            run_dir=str(tmp),
            name=f"d2l-{sampler}-{seed}-{steps}",
            progress=False,
            log=lambda m: sink.write(m + "\n"),
            **limits,
        )
    seconds = time.perf_counter() - t0
    rows = run.metrics()
    if steps:
        return {"losses": [float(r["train_loss"]) for r in rows]}
    ppl = {int(float(r["epoch"])): float(r["train_perplexity"]) for r in rows}
    walls = [(int(float(r["epoch"])), float(r["wall_time"])) for r in rows]
    per_epoch = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in pairwise(walls) if b[0] > a[0]]
    with contextlib.redirect_stderr(Tee()):
        samples = run.generate(PREFIXES, length=50, greedy=True, warn=lambda m: warnings.append(m))
    return {
        "sampler": sampler,
        "seed": seed,
        "epochs": epochs,
        "seconds": seconds,
        "seconds_per_epoch": C.median(per_epoch),
        "perplexity": ppl,
        "samples": dict(zip(PREFIXES, samples, strict=True)),
        "warnings": warnings,
    }


def run_reference(
    sampler: str, epochs: int, seed: int = 0, steps: int = 0, perturb: float = 0.0
) -> dict:
    """The book's loop (tests/book_reference.py) on the recipe's text, from the same start as
    charlm with ``seed``: its initial weights, its shuffle order and its vocabulary (with
    <unk>). ``perturb``: multiply each initial weight by 1 + perturb * N(0, 1) first."""
    import numpy as np

    from charlm.text.vocab import Vocab

    text = ref.load_text(CORPUS)
    vocab = Vocab.from_text(text)
    params = ref.charlm_initial_weights(len(vocab), seed)
    if perturb:
        rng = np.random.default_rng(12345)
        params = {
            k: (v * (1 + perturb * rng.standard_normal(v.shape))).astype(np.float32)
            for k, v in params.items()
        }
    out = ref.train(
        text,
        sampler,
        epochs=epochs or steps,
        steps=steps,
        params=params,
        chars=vocab.chars,
        shuffle=ref.charlm_shuffle(vocab.encode(text), seed),
    )
    if steps:
        return {"losses": out["losses"]}
    out["seconds_per_epoch"] = out["seconds"] / epochs
    del out["losses"], out["grad_norms"]  # 2,000 numbers each: the curve is enough here
    return {"sampler": sampler, "seed": seed, **out}


def first_below(curve: dict, level: float):
    """The first epoch whose perplexity is below ``level`` ("never" if none)."""
    return next((e for e, v in sorted(curve.items()) if v is not None and v < level), "never")


def geometric_mean(curves: list[dict], epoch: int) -> float | None:
    values = [c["perplexity"].get(epoch) for c in curves]
    values = [v for v in values if v]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def epoch_spans(events: list[tuple[str, float]]) -> list[dict]:
    """Split a list of (kind, time) marks into epochs, each the span between two metrics rows
    (one per epoch: eval_every_epochs = 1): the steps' time (batch begin -> end), the saves'
    time (each save's end minus the mark before it: the row, or the save before) and the rest."""
    rows = [i for i, (kind, _) in enumerate(events) if kind == "row"]
    spans = []
    for a, b in pairwise(rows):  # the call's first epoch has no start mark
        inside = events[a : b + 1]
        steps = [
            (t1 - t0) for (k0, t0), (k1, t1) in pairwise(inside) if k0 == "begin" and k1 == "end"
        ]
        saves = [(t1 - t0) for (_, t0), (k1, t1) in pairwise(inside) if k1 == "save"]
        if not steps:
            continue  # the extra save fit() makes when it stops
        total = inside[-1][1] - inside[0][1]
        spans.append(
            {
                "epoch_seconds": total,
                "step_seconds": sum(steps),
                "save_seconds": sum(saves),
                "other_seconds": total - sum(steps) - sum(saves),
                "steps": len(steps),
                "saves": len(saves),
            }
        )
    return spans


class TimedTrainer:
    """charlm's Trainer with the d2l config (model overridden), timed by a callback."""

    def __init__(self, model: str, tmp: Path, name: str):
        from charlm.api import prepare
        from charlm.training.trainer import Callback

        events = self.events = []  # (kind, time)

        class Marks(Callback):
            def on_batch_begin(self, trainer, x, y, state):
                events.append(("begin", time.perf_counter()))

            def on_batch_end(self, trainer, loss, grad_norm, state):
                events.append(("end", time.perf_counter()))

            def on_evaluate(self, trainer, row):
                events.append(("row", time.perf_counter()))

            def on_save(self, trainer, what):
                events.append(("save", time.perf_counter()))

        self.trainer = prepare(
            config=str(CONFIG),
            model=model,
            paths=[str(CORPUS)],
            run_dir=str(tmp),
            name=name,
            sample_every_epochs=0,
            epochs=1,
            log=lambda *a, **k: None,
            progress=False,
            callbacks=[Marks()],
        )
        self.epochs_done = 0

    def run(self, epochs: int) -> dict:
        self.events.clear()
        self.epochs_done += epochs
        self.trainer.cfg = self.trainer.cfg.replace(epochs=self.epochs_done)
        with contextlib.redirect_stderr(Tee()):
            row = self.trainer.fit()
        return {"epochs": epoch_spans(self.events), "train_perplexity": row.get("train_perplexity")}


def part_curves(tmp: Path, epochs: int, checks: list[int], seeds: int) -> tuple[dict, list[str]]:
    """charlm (fixed cut) and the book's loop from the same start, both samplers, ``seeds``
    seeds each: the per-seed curves, their geometric means and spreads, charlm's samples."""
    curves = {}
    for sampler in ("consecutive", "random"):
        for seed in range(seeds):
            for who in ("charlm", "reference"):
                C.say(f"  {who}, {sampler}, seed {seed}, {epochs} epochs ...")
                r = (
                    run_recipe(sampler, tmp, epochs, seed)
                    if who == "charlm"
                    else run_reference(sampler, epochs, seed)
                )
                curves.setdefault(f"{who} {sampler}", []).append(r)
                C.say(
                    f"    {r['seconds_per_epoch']:.3f} s/epoch, ppl "
                    + ", ".join(f"{e}: {r['perplexity'].get(e, float('nan')):.2f}" for e in checks)
                )
    lines = curve_tables(curves, checks)
    lines += ["", "charlm's greedy samples (50 characters) after the last epoch, seed 0:", ""]
    for sampler in ("consecutive", "random"):
        r = curves[f"charlm {sampler}"][0]
        lines += [f"- {sampler}, `{prefix}`: {text}" for prefix, text in r["samples"].items()]
        lines += [f"  - ({w.strip()})" for w in r["warnings"][:1]]
    return curves, lines + [""]


def curve_tables(curves: dict, checks: list[int]) -> list[str]:
    """The geometric mean and range over seeds of each curve at ``checks``; then reference /
    charlm of the means."""
    rows = []
    for name, runs in curves.items():
        means = {e: geometric_mean(runs, e) for e in checks}
        cells = [
            f"{C.fmt(means[e])} ({C.spread([r['perplexity'].get(e) for r in runs])})"
            for e in checks
        ]
        rows.append(
            [name, len(runs)]
            + cells
            + [first_below(means, 2), C.median([r["seconds_per_epoch"] for r in runs])]
        )
    for sampler in ("consecutive", "random"):
        rows.append(
            [f"book {sampler} (Jay Chou lyrics)", 1]
            + [BOOK[sampler].get(e) for e in checks]
            + [first_below(BOOK[sampler], 2), "0.11 (book's machine)"]
        )
    header = (
        ["run", "seeds"]
        + [f"ppl @ {e}: mean (min–max)" for e in checks]
        + ["mean < 2 from epoch", "s/epoch (median)"]
    )
    ratios = []
    for sampler in ("consecutive", "random"):
        book, ours = curves[f"reference {sampler}"], curves[f"charlm {sampler}"]
        ratios.append(
            [sampler] + [f"{geometric_mean(book, e) / geometric_mean(ours, e):.3f}" for e in checks]
        )
    return [
        C.table(header, rows),
        "",
        "reference / charlm, geometric means over the seeds:",
        "",
        C.table(["sampler"] + [f"@ {e}" for e in checks], ratios),
    ]


def part_drift(tmp: Path, steps: int) -> tuple[dict, list[str]]:
    """Per-step losses from one start (consecutive, seed 0): charlm against the reference, and
    the reference against itself with its initial weights perturbed by 1e-7 (float32 noise)."""
    C.say(f"  drift: charlm, reference and perturbed reference, {steps} steps ...")
    losses = {
        "charlm": run_recipe("consecutive", tmp, 0, steps=steps)["losses"],
        "reference": run_reference("consecutive", 0, steps=steps)["losses"],
        "reference perturbed": run_reference("consecutive", 0, steps=steps, perturb=1e-7)["losses"],
    }
    marks = [s for s in (10, 25, 50, 100, 200, 400, 800, 1600) if s <= steps]

    def rel(a, b, s):
        return abs(losses[a][s - 1] / losses[b][s - 1] - 1)

    rows = [
        [s, rel("charlm", "reference", s), rel("reference perturbed", "reference", s)]
        for s in marks
    ]
    table = C.table(
        [
            "step",
            "charlm vs reference: relative difference of the step's loss",
            "reference perturbed by 1e-7 vs reference",
        ],
        [[s, f"{a:.1e}", f"{b:.1e}"] for s, a, b in rows],
    )
    return losses, [table, ""]


def part_speed(tmp: Path, rounds: int, per_call: int) -> tuple[dict, list[str]]:
    """scratch-rnn against Keras rnn on the recipe, interleaved; seconds per epoch, split."""
    contenders = {m: TimedTrainer(m, tmp, f"speed-{m}") for m in ("scratch-rnn", "rnn")}
    for m, c in contenders.items():  # warm-up: traces; not counted
        t0 = time.perf_counter()
        c.run(2)
        C.say(f"  warm-up {m}: {time.perf_counter() - t0:.1f} s")
    speed = {m: [] for m in contenders}
    for rnd in range(rounds):
        for m in list(contenders) if rnd % 2 == 0 else list(contenders)[::-1]:
            speed[m].extend(contenders[m].run(per_call)["epochs"])
            C.say(
                f"  round {rnd + 1} {m}: "
                + ", ".join(f"{s['epoch_seconds']:.3f}" for s in speed[m][-per_call:])
                + " s/epoch"
            )
    summary = {}
    for m, spans in speed.items():
        st = summary[m] = {
            k: C.median([s[k] for s in spans])
            for k in (
                "epoch_seconds",
                "step_seconds",
                "save_seconds",
                "other_seconds",
                "steps",
                "saves",
            )
        }
        chars = st["steps"] * 32 * 35
        for key, seconds in (("steps_only", "step_seconds"), ("whole_epoch", "epoch_seconds")):
            st[f"chars_per_sec_{key}"] = chars / st[seconds] if st[seconds] else None
        st["epochs_measured"] = len(spans)
    ratios = {
        k: C.median([a[k] / b[k] for a, b in zip(speed["scratch-rnn"], speed["rnn"], strict=True)])
        for k in ("epoch_seconds", "step_seconds")
    }
    lines = [
        C.table(
            [
                "model (1x256, one-hot, d2l recipe)",
                "s/epoch (median)",
                "of which train steps",
                "checkpoint + weight saves",
                "other",
                "saves per epoch",
                "chars/s, steps only",
                "chars/s, whole epoch",
                "epochs measured",
            ],
            [
                [
                    m,
                    s["epoch_seconds"],
                    s["step_seconds"],
                    s["save_seconds"],
                    s["other_seconds"],
                    s["saves"],
                    s["chars_per_sec_steps_only"],
                    s["chars_per_sec_whole_epoch"],
                    s["epochs_measured"],
                ]
                for m, s in summary.items()
            ],
        ),
        "",
        f"scratch-rnn / Keras rnn, seconds per epoch (median of paired epochs): "
        f"{ratios['epoch_seconds']:.2f}; train-step time only: {ratios['step_seconds']:.2f}",
    ]
    return {"summary": summary, "raw": speed, "scratch_over_keras": ratios}, lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--epochs", type=int, default=0, help="epochs per run (default 250, quick 20)")
    p.add_argument(
        "--rounds", type=int, default=0, help="scratch-vs-Keras rounds (default 4, quick 2)"
    )
    p.add_argument(
        "--skip-curves", action="store_true", help="only part 2 (scratch vs Keras timing)"
    )
    p.add_argument("--skip-speed", action="store_true", help="only part 1 (the perplexity curves)")
    p.add_argument("--seeds", type=int, default=0, help="seeds per curve (default 5, quick 1)")
    p.add_argument(
        "--drift-steps",
        type=int,
        default=0,
        help="steps of the drift check (default 800, quick 50; 0 with --skip-drift)",
    )
    p.add_argument("--skip-drift", action="store_true", help="no drift check")
    p.add_argument("--out", default="bench_d2l", help="results file name in benchmarks/results/")
    args = p.parse_args(argv)
    epochs = args.epochs or (20 if args.quick else 250)
    rounds = args.rounds or (2 if args.quick else 4)
    checks = (
        CHECK_EPOCHS if epochs >= 250 else sorted({max(1, epochs * k // 5) for k in range(1, 6)})
    )

    machine = C.Machine()
    import tensorflow  # noqa: F401  (versions, and keep import time out of the first run)

    machine.add_versions()
    tmp = Path(tempfile.mkdtemp(prefix="charlm-bench-d2l-"))
    stats = corpus_stats()
    C.say(f"bench_d2l: load {C.fmt_load(machine.start_load)}; corpus {stats}")
    seeds = args.seeds or (1 if args.quick else 5)
    drift_steps = args.drift_steps or (50 if args.quick else 800)
    drift, drift_lines = ({}, []) if args.skip_drift else part_drift(tmp, drift_steps)
    curves, curve_lines = ({}, []) if args.skip_curves else part_curves(tmp, epochs, checks, seeds)
    speed, speed_lines = (
        ({}, []) if args.skip_speed else part_speed(tmp, rounds, 3 if args.quick else 6)
    )
    info = machine.finish()
    out = [
        "### d2l recipe (configs/d2l-scratch-rnn.toml) on the first 10,000 characters of "
        "tang_poems.txt",
        "",
        f"Machine: {machine.describe()}",
        "",
        f"Corpus: {stats['chars']:,} characters, {stats['distinct_chars']:,} distinct "
        f"(vocabulary {stats['vocab_with_unk']:,} with <unk>; the book's lyrics: 1,027); "
        f"{stats['repeated_4gram_fraction']:.1%} of its 4-grams occurred earlier in the text; "
        f"unigram perplexity {stats['unigram_perplexity']:.0f}.",
        "",
    ]
    out += curve_lines + drift_lines + speed_lines
    text_out = "\n".join(out)
    print(text_out)
    path = C.write_results(
        args.out,
        {
            "benchmark": "bench_d2l",
            "quick": args.quick,
            "epochs": epochs,
            "machine": info,
            "corpus": stats,
            "book": BOOK,
            "curves": curves,
            "drift": drift,
            "speed": speed,
            "markdown": text_out,
        },
    )
    C.say(f"results: {path}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
