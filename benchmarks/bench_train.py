"""Training throughput (characters per second, steady state) on tiny Shakespeare, and
evaluation throughput of the same model.

Contenders, all in one process, interleaved round by round (A, B, C, ..., then reversed) so
that the noise of this shared machine hits all of them alike:

* ``keras-fit`` — the reference: plain Keras ``model.fit`` of Embedding 64 -> LSTM 256 x 2 ->
  Dense (Adam 2e-3, clipnorm 5, sparse CE from logits) on a tf.data pipeline of shuffled
  100-character windows, batch 64 (the model and optimizer of benchmarks/keras_reference.py);
* charlm's training loop through its public API: ``charlm.api.prepare(...)`` builds the
  Trainer exactly as ``charlm train`` does, with a :class:`charlm.training.trainer.Callback` that
  time-stamps the end of every step (``on_batch_end``), then ``Trainer.fit()``. Models
  ``lstm`` (the default of --quick and the comparison that matters), ``scratch-lstm``,
  ``gru``, ``scratch-gru``, ``rnn``, ``scratch-rnn`` (2 x 256, embedding 64, seq 100,
  batch 64, Adam 2e-3, clip 5), and ``lstm`` 2 x 512 in float32 and ``mixed_bfloat16``;
* ``eval`` — evaluation speed of the same charlm lstm 2 x 256: ``charlm.use.evaluate.Scorer`` on
  the whole val split (111,538 characters scored; charlm eval's default, 64 streams of 256
  characters, state carried), compared with that model's training chars/s in the same round.
  For scale, the project's reference measurements on an AMD EPYC with AVX2/FMA only (2 cores,
  2026-11-24, the shakespeare preset's LSTM 256 x 2, not in this repository): eval 27-33k
  chars/s, about 3x training (8-10k); a forward pass is about 1.7 of a training step's 5.2
  MFLOP per character, so about 9x training is the FLOP ceiling there;
* ``matmul`` (with ``eval``) — this machine's arithmetic ceiling, measured in the same rounds:
  a float32 [1024, 1024] x [1024, 1024] ``tf.matmul``, 2.1 GFLOP per product. The report gives
  training, eval and this in GFLOP/s (a forward pass costs 2 FLOPs per weight outside the
  embedding per character, a training step 3 times that), so it says how close to the
  machine's limit each runs and what eval/training ratio that limit allows.

Each call trains a contender for N steps (N chosen from a warm-up so a call lasts about
``--seconds``); the steady-state rate of a call is measured between the end of its first step
and the end of its last (so tracing, iterator start-up and the end-of-call validation and
checkpoint are left out; everything charlm does per step, including its Python loop, is in).
Each later call continues the same run (``trainer.cfg`` gets a larger ``steps`` limit and
``fit()`` is called again). The first round only traces and warms up and is not counted. The
table shows the median over rounds of chars/s and of the per-round ratio to ``keras-fit``.

    python benchmarks/bench_train.py            # full: about 5 minutes
    python benchmarks/bench_train.py --quick    # about a minute: keras-fit, lstm, eval
    python benchmarks/bench_train.py --only lstm,scratch-lstm --rounds 7
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _common as C

C.quiet_tensorflow()

SEQ, BATCH, EMB, LR, CLIP = 100, 64, 64, 2e-3, 5.0
CHARS_PER_STEP = SEQ * BATCH

# name -> (model, units, precision)
CHARLM = {
    "lstm": ("lstm", 256, "float32"),
    "lstm-bf16": ("lstm", 256, "mixed_bfloat16"),  # what the budget recipe picks with native bf16
    "scratch-lstm": ("scratch-lstm", 256, "float32"),
    "gru": ("gru", 256, "float32"),
    "scratch-gru": ("scratch-gru", 256, "float32"),
    "rnn": ("rnn", 256, "float32"),
    "scratch-rnn": ("scratch-rnn", 256, "float32"),
    "lstm-512": ("lstm", 512, "float32"),
    "lstm-512-bf16": ("lstm", 512, "mixed_bfloat16"),
}
# extra plain-Keras contenders (only with --only): name -> (units, precision)
KERAS_EXTRA = {"keras-fit-512": (512, "float32"), "keras-fit-512-bf16": (512, "mixed_bfloat16")}
# the pairs the report compares directly: (A, B) -> "B / A"
PAIRS = [
    ("keras-fit", "lstm"),
    ("keras-fit", "lstm-bf16"),
    ("lstm", "scratch-lstm"),
    ("gru", "scratch-gru"),
    ("rnn", "scratch-rnn"),
    ("lstm-512", "lstm-512-bf16"),
    ("keras-fit-512", "keras-fit-512-bf16"),
    ("keras-fit-512", "lstm-512"),
    ("keras-fit-512-bf16", "lstm-512-bf16"),
    ("lstm", "eval"),
]
PAIR_LABELS = {("lstm", "eval"): "charlm lstm 2x256: eval chars/s / training chars/s"}


def steady_rate(stamps: list[float], skip: int = 1) -> float | None:
    """chars/s between the end of step ``skip`` and the end of the last step."""
    if len(stamps) < skip + 2:
        return None
    return CHARS_PER_STEP * (len(stamps) - 1 - skip) / (stamps[-1] - stamps[skip])


class KerasFit:
    """The reference: Embedding -> LSTM x2 -> Dense, compiled, ``model.fit``."""

    def __init__(
        self, ids, vocab_size: int, units: int = 256, layers: int = 2, precision: str = "float32"
    ):
        import keras
        import tensorflow as tf

        self.label = (
            f"plain Keras fit, LSTM 2x{units}"
            + (f" {precision}" if precision != "float32" else "")
            + (" (reference)" if units == 256 and precision == "float32" else "")
        )
        keras.utils.set_random_seed(0)
        dtype = precision if precision != "float32" else None  # a per-layer dtype policy
        inputs = keras.Input(shape=(None,), dtype="int32")
        x = keras.layers.Embedding(vocab_size, EMB, dtype=dtype)(inputs)
        for _ in range(layers):
            x = keras.layers.LSTM(units, return_sequences=True, dtype=dtype)(x)
        model = keras.Model(inputs, keras.layers.Dense(vocab_size, dtype="float32")(x))
        model.compile(
            optimizer=keras.optimizers.Adam(LR, clipnorm=CLIP),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        self.model = model

        def split(w):
            return w[:-1], w[1:]

        ds = (
            tf.data.Dataset.from_tensor_slices(ids.astype("int32"))
            .batch(SEQ + 1, drop_remainder=True)
            .map(split)
            .shuffle(10_000, seed=0)
            .batch(BATCH, drop_remainder=True)
            .repeat()
            .prefetch(2)
        )
        options = tf.data.Options()
        # each call of fit() tears down an iterator; with auto-tuning on, that teardown froze
        # for 40-55 s on this project's 2-core machines (TF 2.21), which would only waste the
        # benchmark's time (it is not timed)
        options.autotune.enabled = False
        self.ds = ds.with_options(options)
        self.stamps: list[float] = []
        stamps = self.stamps

        class Stamp(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                stamps.append(time.perf_counter())

        self.callback = Stamp()

    def run(self, steps: int) -> dict:
        self.stamps.clear()
        t0 = time.perf_counter()
        self.model.fit(
            self.ds,
            epochs=1,
            steps_per_epoch=steps,
            verbose=0,
            shuffle=False,
            callbacks=[self.callback],
        )
        return {
            "rate": steady_rate(self.stamps),
            "call_seconds": time.perf_counter() - t0,
            "steps": len(self.stamps),
        }

    def describe(self) -> dict:
        return {
            "params": int(self.model.count_params()),
            "jit_compile": bool(getattr(self.model, "jit_compile", False)),
        }


def step_clock():
    """A :class:`charlm.training.trainer.Callback` that time-stamps the start and end of every step."""
    from charlm.training.trainer import Callback

    class StepClock(Callback):
        def __init__(self):
            self.begins: list[float] = []
            self.ends: list[float] = []

        def clear(self) -> None:
            self.begins.clear()
            self.ends.clear()

        def on_batch_begin(self, trainer, x, y, state) -> None:
            self.begins.append(time.perf_counter())

        def on_batch_end(self, trainer, loss, grad_norm, state) -> None:
            self.ends.append(time.perf_counter())

    return StepClock()


class CharlmLoop:
    """charlm's Trainer, built by charlm.api.prepare as ``charlm train`` builds it; fit() is
    called again and again with a larger step limit, and a callback time-stamps every step."""

    def __init__(self, name: str, tmp: Path):
        from charlm.api import prepare

        model, units, precision = CHARLM[name]
        self.name = name
        self.label = f"charlm {model} 2x{units}" + (
            " mixed_bfloat16" if precision != "float32" else ""
        )
        self.clock = step_clock()
        # tiny Shakespeare with charlm's default split: the same last 10 % as split_corpus(text, 0.1)
        self.trainer = prepare(
            [str(C.CORPORA / "tinyshakespeare.txt")],
            model=model,
            layers=2,
            units=units,
            embedding_dim=EMB,
            precision=precision,
            seq_len=SEQ,
            batch_size=BATCH,
            optimizer="adam",
            lr=LR,
            clip_norm=CLIP,
            sampler="random",
            steps=1,
            eval_every=0,
            eval_chars=2000,
            checkpoint_every=0,
            runs_dir=str(tmp),
            name=name,
            seed=0,
            log=lambda *a, **k: None,
            progress=False,
            callbacks=[self.clock],
        )
        self.done = 0

    def run(self, steps: int) -> dict:
        self.clock.clear()
        self.done += steps
        self.trainer.cfg = self.trainer.cfg.replace(steps=self.done)
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):  # the trainer's per-row log line
            row = self.trainer.fit()
        return {
            "rate": steady_rate(self.clock.ends),
            "call_seconds": time.perf_counter() - t0,
            "steps": len(self.clock.ends),
            "row_chars_per_sec": row.get("chars_per_sec"),
            "train_loss": row.get("train_loss"),
        }

    def describe(self) -> dict:
        return {"params": self.trainer.model.count_params()}


class CharlmEval:
    """Evaluation speed of a charlm contender's model: charlm.use.evaluate.Scorer on the whole val
    split with charlm eval's defaults (64 streams x 256 characters, state carried)."""

    def __init__(self, loop: CharlmLoop):
        from charlm.use.evaluate import Scorer

        self.loop = loop
        self.label = f"{loop.label}: eval (Scorer, 64 x 256, state carried, whole val split)"
        self.scorer = Scorer(loop.trainer.model)
        self.ids = loop.trainer.val_ids

    def run(self, steps: int) -> dict:
        t0 = time.perf_counter()
        r = self.scorer(self.ids)
        seconds = time.perf_counter() - t0
        return {
            "rate": r["chars"] / seconds,
            "call_seconds": seconds,
            "steps": 0,
            "val_loss": r["nats_per_char"],
        }

    def describe(self) -> dict:
        return {"params": self.loop.trainer.model.count_params(), "chars_scored": len(self.ids) - 1}


class MatmulPeak:
    """The machine's arithmetic ceiling: float32 [N, N] x [N, N] products, FLOP/s in "rate"."""

    def __init__(self, n: int = 1024):
        import tensorflow as tf

        self.label = f"float32 matmul {n} x {n} x {n} (arithmetic ceiling; rate in FLOP/s)"
        self.n = n
        a, b = tf.random.normal([n, n], seed=1), tf.random.normal([n, n], seed=2)
        self.product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))

    def run(self, steps: int) -> dict:
        calls = max(5, steps)
        float(self.product())
        t0 = time.perf_counter()
        for _ in range(calls):
            float(self.product())
        seconds = time.perf_counter() - t0
        return {"rate": 2 * self.n**3 * calls / seconds, "call_seconds": seconds, "steps": 0}

    def describe(self) -> dict:
        return {"params": 0}


def flop_rates(summary: dict, contenders: dict) -> list[list]:
    """GFLOP/s of charlm lstm training and eval against the matmul ceiling (same rounds)."""
    loop = contenders["lstm"]
    model = loop.trainer.model
    dense = model.count_params() - model.vocab_size * EMB  # weights used once per character
    forward = 2 * dense
    peak = summary["matmul"]["median_chars_per_sec"]
    rows = []
    for name, flops in (("lstm", 3 * forward), ("eval", forward)):
        rate = summary[name]["median_chars_per_sec"] * flops
        rows.append([summary[name]["label"], flops / 1e6, rate / 1e9, rate / peak])
    rows.append([summary["matmul"]["label"], None, peak / 1e9, 1.0])
    rows.append(
        ["eval/training chars/s if both ran at the ceiling (= 3, the FLOP ratio)", None, None, 3.0]
    )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="about a minute: keras-fit, lstm and eval, short calls, 2 rounds",
    )
    p.add_argument(
        "--only",
        default="",
        help="comma-separated contenders (keras-fit is always in); "
        "besides the charlm ones, eval (needs lstm, added if missing), keras-fit-512 "
        "and keras-fit-512-bf16",
    )
    p.add_argument("--rounds", type=int, default=0, help="counted rounds (default 5, quick 2)")
    p.add_argument(
        "--seconds",
        type=float,
        default=0.0,
        help="target length of one call (default 3 s, quick 1.5 s)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=0.0,
        help="stop starting new rounds after this long (default 270, quick 50)",
    )
    p.add_argument(
        "--out",
        default="",
        help="results file name in benchmarks/results/ (default bench_train, "
        "quick bench_train_quick)",
    )
    args = p.parse_args(argv)
    args.out = args.out or ("bench_train_quick" if args.quick else "bench_train")
    rounds = args.rounds or (2 if args.quick else 5)
    target = args.seconds or (1.5 if args.quick else 3.0)
    max_seconds = args.max_seconds or (50 if args.quick else 270)
    names = (
        [n.strip() for n in args.only.split(",") if n.strip()]
        if args.only
        else (["lstm", "eval"] if args.quick else [*CHARLM, "eval"])
    )
    if "eval" in names and "lstm" not in names:
        names.insert(0, "lstm")
    unknown = [n for n in names if n not in CHARLM and n not in KERAS_EXTRA and n != "eval"]
    if unknown:
        p.error(f"unknown contender(s) {unknown}; choose from {[*CHARLM, 'eval', *KERAS_EXTRA]}")

    machine = C.Machine()
    t_start = time.monotonic()
    C.say(
        f"bench_train: {C.fmt_load(machine.start_load)} load; contenders keras-fit, {', '.join(names)}"
    )

    from charlm.text.corpus import read_corpus, split_corpus
    from charlm.text.vocab import Vocab

    machine.add_versions()
    text = read_corpus([str(C.CORPORA / "tinyshakespeare.txt")])
    train_text, _ = split_corpus(text, 0.1)
    vocab = Vocab.from_text(train_text)
    ids = vocab.encode(train_text)

    tmp = Path(tempfile.mkdtemp(prefix="charlm-bench-train-"))
    contenders = {"keras-fit": KerasFit(ids, len(vocab))}
    for n in names:
        if n in KERAS_EXTRA:
            units, precision = KERAS_EXTRA[n]
            contenders[n] = KerasFit(ids, len(vocab), units=units, precision=precision)
        elif n == "eval":
            contenders[n] = CharlmEval(contenders["lstm"])
            contenders["matmul"] = MatmulPeak()
        else:
            contenders[n] = CharlmLoop(n, tmp)

    # warm-up round: traces every graph; its steady rate (3 steps) sizes the calls
    steps = {}
    warm = {}
    for name, c in contenders.items():
        t0 = time.perf_counter()
        r = c.run(5)
        warm[name] = {"seconds": time.perf_counter() - t0, "rate": r["rate"]}
        rate = r["rate"] or CHARS_PER_STEP
        steps[name] = int(min(300, max(6, round(target * rate / CHARS_PER_STEP) + 2)))
        C.say(
            f"  warm-up {name}: {warm[name]['seconds']:.1f} s (build+trace+5 steps), "
            f"~{rate:,.0f} chars/s -> {steps[name]} steps per call"
        )

    results = {n: [] for n in contenders}
    order = list(contenders)
    done_rounds = 0
    for rnd in range(rounds):
        if done_rounds >= 2 and time.monotonic() - t_start > max_seconds:
            C.say(f"  time limit: stopping after {done_rounds} rounds")
            break
        for name in order if rnd % 2 == 0 else order[::-1]:
            r = contenders[name].run(steps[name])
            r["round"] = rnd
            results[name].append(r)
            C.say(
                f"  round {rnd + 1}/{rounds} {name}: {r['rate']:,.0f} chars/s "
                f"({r['steps']} steps, {r['call_seconds']:.1f} s)"
            )
        done_rounds += 1

    # per-round ratio to the reference (same round), then medians
    ref_by_round = {r["round"]: r["rate"] for r in results["keras-fit"]}
    summary = {}
    for name, rs in results.items():
        rates = [r["rate"] for r in rs]
        ratios = [
            r["rate"] / ref_by_round[r["round"]]
            for r in rs
            if r["rate"] and ref_by_round.get(r["round"]) and name not in ("eval", "matmul")
        ]
        summary[name] = {
            "label": contenders[name].label,
            "median_chars_per_sec": C.median(rates),
            "rates": rates,
            "median_ratio_vs_keras_fit": C.median(ratios),
            "ratios_vs_keras_fit": ratios,
            "steps_per_call": steps[name],
            "warmup_seconds": warm[name]["seconds"],
            **contenders[name].describe(),
        }
        rows = [r.get("row_chars_per_sec") for r in rs if r.get("row_chars_per_sec")]
        if rows:  # not in the table: the trainer's meter may also count the time between calls
            summary[name]["median_metrics_row_chars_per_sec"] = C.median(rows)
    pairs = []
    for a, b in PAIRS:
        if a in results and b in results:
            ra = {r["round"]: r["rate"] for r in results[a]}
            ratios = [r["rate"] / ra[r["round"]] for r in results[b] if ra.get(r["round"])]
            pairs.append(
                {"a": a, "b": b, "median_ratio_b_over_a": C.median(ratios), "ratios": ratios}
            )

    info = machine.finish()
    out = [
        f"### Training throughput, tiny Shakespeare, seq {SEQ}, batch {BATCH} "
        f"({done_rounds} interleaved rounds, medians)",
        "",
        f"Machine: {machine.describe()}",
        "",
    ]
    out.append(
        C.table(
            [
                "contender",
                "params",
                "chars/s (median)",
                "range",
                "× keras-fit (median of per-round ratios)",
            ],
            [
                [
                    s["label"],
                    s["params"],
                    s["median_chars_per_sec"],
                    C.spread(s["rates"]),
                    s["median_ratio_vs_keras_fit"],
                ]
                for s in summary.values()
            ],
        )
    )
    if pairs:
        out += [
            "",
            C.table(
                ["B vs A", "B / A (median of per-round ratios)", "range"],
                [
                    [
                        PAIR_LABELS.get((q["a"], q["b"]), f"{q['b']} vs {q['a']}"),
                        q["median_ratio_b_over_a"],
                        C.spread(q["ratios"]),
                    ]
                    for q in pairs
                ],
            ),
        ]
    if "matmul" in summary:
        out += [
            "",
            C.table(
                ["arithmetic", "MFLOP per char", "GFLOP/s (median)", "× the matmul's"],
                flop_rates(summary, contenders),
            ),
        ]
    text_out = "\n".join(out)
    print(text_out)
    path = C.write_results(
        args.out,
        {
            "benchmark": "bench_train",
            "quick": args.quick,
            "machine": info,
            "rounds": done_rounds,
            "settings": {
                "seq_len": SEQ,
                "batch_size": BATCH,
                "embedding_dim": EMB,
                "lr": LR,
                "clip": CLIP,
                "target_call_seconds": target,
            },
            "warmup": warm,
            "summary": summary,
            "pairs": pairs,
            "raw": results,
            "markdown": text_out,
        },
    )
    C.say(f"results: {path}")
    shutil.rmtree(tmp, ignore_errors=True)  # the runs' checkpoints are not needed afterwards
    return 0


if __name__ == "__main__":
    sys.exit(main())
