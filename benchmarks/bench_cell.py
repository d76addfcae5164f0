"""The recurrent step: keras.layers.LSTM / GRU against charlm.models.fastrnn's FastLSTM / FastGRU.

The model is the one charlm trains: Embedding 64 -> RNN 256 -> RNN 256 -> Dense 65, windows
of 100 characters, batch 64, the states as inputs and outputs as in ``charlm.models.lm``. Every
variant starts from the same weights and trains on the same batches, so their losses after
the same steps must agree (the tables show the largest difference). Timed warm, inside
``tf.function``, in interleaved rounds; medians, the best round, CPU time, ratios to Keras:

* training: forward + backward + Adam, one step;
* generation: 100 characters, one at a time (T = 1), in one ``tf.while_loop``, batch 1 and 64
  (and whether the last character generated is the same as Keras's);
* the kept variant under ``tf.function(jit_compile=True)`` (XLA), ``fast+xla``;
* mixed_bfloat16 against float32, only where the CPU has native bf16.

Variants: ``keras`` (the reference); ``fast`` (the kept one: input projections hoisted out
of the loop, one product per gate, the backward pass written by hand, the batch in 2 groups
of rows, one loop each); ``groups1`` (the same with one loop over the whole batch); the ones
that lost, in ``cell_variants.py`` so the comparison can be re-run: ``fused`` (one [H, 4H]
product per step, 2 groups of rows: the kept design before per-gate products), ``fused1``
(the same, one group), ``autodiff`` (projection hoisted, TensorFlow differentiates the
loop), ``block1`` (``tf.raw_ops.BlockLSTM``) and ``block2`` (``tf.raw_ops.BlockLSTMV2`` with
its V2 gradient kernel called by hand).

    python benchmarks/bench_cell.py [--quick] [--rounds N] [--calls N] [--sections ...]
"""

from __future__ import annotations

import argparse
import sys
import time

import _common as C

C.quiet_tensorflow()

BATCH, SEQ, EMB, UNITS, VOCAB, LAYERS = 64, 100, 64, 256, 65, 2
XLA = True  # also time the kept variant under tf.function(jit_compile=True)


def variant_layers():
    """{kind: {name: layer class}} for every LSTM and GRU variant measured."""
    import cell_variants as V
    import keras

    from charlm.models import fastrnn as F

    return {
        "lstm": {
            "keras": keras.layers.LSTM,
            "fast": F.FastLSTM,
            "groups1": V.grouped(F.FastLSTM, 1),
            "fused": V.FusedLSTM,
            "fused1": V.grouped(V.FusedLSTM, 1),
            "autodiff": V.AutodiffLSTM,
            "block1": V.Block1LSTM,
            "block2": V.Block2LSTM,
        },
        "gru": {
            "keras": keras.layers.GRU,
            "fast": F.FastGRU,
            "groups1": V.grouped(F.FastGRU, 1),
            "autodiff": V.AutodiffGRU,
        },
    }


def build_model(layer_cls, kind: str, policy: str = "float32", seed: int = 0):
    """charlm's model (``charlm.models.lm.build_keras_model``: ``[ids, *states] -> [logits,
    *states]``, seeded initializers, so every variant starts equal) with ``layer_cls`` as its
    recurrent layer."""
    from charlm.models.lm import build_keras_model

    return build_keras_model(
        kind, VOCAB, LAYERS, UNITS, EMB, precision=policy, seed=seed, layer_cls=layer_cls
    )


def train_step(model, jit: bool = False):
    """One compiled training step on a batch: forward, backward, Adam. Returns the loss."""
    import keras
    import tensorflow as tf

    opt = keras.optimizers.Adam(2e-3)
    opt.build(model.trainable_variables)
    zeros = [tf.zeros([BATCH, UNITS]) for _ in model.inputs[1:]]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            logits, *_ = model([x, *zeros], training=True)
            loss = loss_fn(y, logits)
        opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    return step


def generate_loop(model, batch: int, length: int = 100):
    """``length`` characters, one call of the model per character (T = 1), in one while loop,
    greedy: what charlm's generator does per character, without the sampling filters."""
    import tensorflow as tf

    n_states = len(model.inputs) - 1

    @tf.function
    def run(ids):
        def body(t, ids, *states):
            logits, *states = model([ids, *states], training=False)
            return t + 1, tf.argmax(logits[:, -1], -1, output_type=tf.int32)[:, None], *states

        states = [tf.zeros([batch, UNITS]) for _ in range(n_states)]
        _, ids, *_ = tf.while_loop(lambda t, *_: t < length, body, (0, ids, *states))
        return ids

    return run


def batches(n: int, seed: int = 0):
    """n fixed random batches (x, y) of character ids: the same for every variant."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    w = rng.integers(0, VOCAB, (n, BATCH, SEQ + 1)).astype("int32")
    return [(tf.constant(b[:, :-1]), tf.constant(b[:, 1:])) for b in w]


def interleaved(fns: dict, rounds: int, calls: int) -> dict:
    """{name: {"wall": [...], "cpu": [...]}} seconds per call, one entry per round: every
    round runs every fn ``calls`` times, in turn, so that the machine's load hits all of them
    alike. ``cpu`` is this process's CPU time (all its threads) per call."""
    times = {name: {"wall": [], "cpu": []} for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn()
            times[name]["wall"].append((time.perf_counter() - t0) / calls)
            times[name]["cpu"].append((time.process_time() - c0) / calls)
        C.say(
            f"round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {v['wall'][-1] * 1e3:.1f} ms" for k, v in times.items())
        )
    return times


def summarize(times: dict, work: float, unit: str) -> dict:
    """Medians, rates and ratios against ``keras`` (per round, then their median)."""
    ref = times["keras"]["wall"]
    out = {}
    for name, t in times.items():
        ts = t["wall"]
        ratios = [r / x for r, x in zip(ref, ts, strict=True)]
        out[name] = {
            "seconds": ts,
            "cpu_seconds": t["cpu"],
            "median_ms": C.median(ts) * 1e3,
            "min_ms": min(ts) * 1e3,
            "median_cpu_ms": C.median(t["cpu"]) * 1e3,
            f"median_{unit}_per_sec": work / C.median(ts),
            "ratio_vs_keras": ratios,
            "median_ratio_vs_keras": C.median(ratios),
            "cpu_ratio_vs_keras": C.median(times["keras"]["cpu"]) / C.median(t["cpu"]),
        }
    return out


def bench_training(kind: str, variants: dict, rounds: int, calls: int) -> dict:
    """Training steps of every variant (and the kept one under XLA), interleaved."""
    data = batches(4)
    ref = build_model(variants["keras"], kind)
    steps, losses, counters = {}, {}, {}
    named = [(n, cls, False) for n, cls in variants.items()]
    if XLA:
        named.append(("fast+xla", variants["fast"], True))
    for name, cls, jit in named:
        model = build_model(cls, kind)
        model.set_weights(ref.get_weights())
        step = train_step(model, jit=jit)
        losses[name] = []
        counters[name] = 0

        def call(step=step, name=name):
            x, y = data[counters[name] % len(data)]
            counters[name] += 1
            losses[name].append(float(step(x, y)))

        t0 = time.perf_counter()
        call()
        call()
        C.say(f"{kind} {name}: first two steps (trace + warm-up) {time.perf_counter() - t0:.1f} s")
        steps[name] = call
    out = summarize(interleaved(steps, rounds, calls), BATCH * SEQ, "chars")
    for name in out:
        out[name]["losses"] = losses[name]
        out[name]["max_loss_diff_vs_keras"] = max(
            abs(a - b) for a, b in zip(losses[name], losses["keras"], strict=True)
        )
    return out


def bench_generation(
    kind: str, variants: dict, batch: int, rounds: int, calls: int, length: int = 100
) -> dict:
    """Generation, T = 1 per call, ``length`` characters per timed call, keras vs fast."""
    import tensorflow as tf

    ref = build_model(variants["keras"], kind)
    fns, last_ids = {}, {}
    for name in ("keras", "fast"):
        model = build_model(variants[name], kind)
        model.set_weights(ref.get_weights())
        run = generate_loop(model, batch, length)
        ids = tf.zeros([batch, 1], tf.int32)
        last_ids[name] = run(ids).numpy()
        fns[name] = lambda run=run, ids=ids: run(ids).numpy()
    out = summarize(interleaved(fns, rounds, calls), batch * length, "chars")
    out["fast"]["same_last_char_as_keras"] = bool((last_ids["fast"] == last_ids["keras"]).all())
    return out


def bench_bf16(variants: dict, rounds: int, calls: int) -> dict:
    """LSTM training, mixed_bfloat16 against float32, for keras and fast."""
    data = batches(1)
    fns = {}
    for name, policy in [
        ("keras", "float32"),
        ("fast", "float32"),
        ("keras-bf16", "mixed_bfloat16"),
        ("fast-bf16", "mixed_bfloat16"),
    ]:
        step = train_step(build_model(variants[name.split("-")[0]], "lstm", policy))
        step(*data[0])
        fns[name] = lambda step=step: float(step(*data[0]))
    return summarize(interleaved(fns, rounds, calls), BATCH * SEQ, "chars")


def print_table(title: str, section: dict, unit: str, machine: str) -> None:
    print(f"\n{title}  [{machine}]")
    rows = []
    for name, r in section.items():
        rate = r[f"median_{unit}_per_sec"]
        rows.append(
            [
                name,
                r["median_ms"],
                r["min_ms"],
                rate,
                r["median_ratio_vs_keras"],
                C.spread(r["ratio_vs_keras"]),
                r["median_cpu_ms"],
                r["cpu_ratio_vs_keras"],
                r.get("max_loss_diff_vs_keras", ""),
            ]
        )
    print(
        C.table(
            [
                "variant",
                "median ms",
                "min ms",
                f"{unit}/s",
                "x keras (median)",
                "x keras (min–max)",
                "CPU ms",
                "x keras (CPU)",
                "max |loss - keras loss|",
            ],
            rows,
        )
    )


SECTIONS = ("train-lstm", "train-gru", "gen-lstm", "gen-gru", "bf16")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 rounds of 1 call (a smoke run)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--sections", default=",".join(SECTIONS), help="which of " + ", ".join(SECTIONS))
    p.add_argument("--calls", type=int, default=3, help="calls per variant per round")
    p.add_argument(
        "--variants",
        default="",
        help="only these training variants (and keras, fast); 'xla' adds fast+xla",
    )
    args = p.parse_args(argv)
    rounds, calls = (3, 1) if args.quick else (args.rounds, args.calls)
    sections = args.sections.split(",")
    machine = C.Machine()
    import tensorflow as tf  # noqa: F401  (after quiet_tensorflow)

    from charlm.models.fastrnn import cpu_has_native_bf16

    machine.add_versions()
    cpu = f"{machine.info['cpu_model']}; {', '.join(machine.info['cpu_flags'])}"
    layers = variant_layers()
    global XLA
    if args.variants:
        keep = {"keras", "fast", *args.variants.split(",")}
        XLA = "xla" in keep
        layers = {k: {n: c for n, c in v.items() if n in keep} for k, v in layers.items()}
    results = {
        "benchmark": "bench_cell",
        "quick": args.quick,
        "rounds": rounds,
        "calls_per_round": calls,
        "settings": {
            "batch": BATCH,
            "seq_len": SEQ,
            "embedding": EMB,
            "units": UNITS,
            "layers": LAYERS,
            "vocab": VOCAB,
        },
    }
    for kind in ("lstm", "gru"):
        if f"train-{kind}" in sections:
            r = results[f"train_{kind}"] = bench_training(kind, layers[kind], rounds, calls)
            print_table(
                f"{kind.upper()} 2x{UNITS} training step (fwd+bwd+Adam, batch {BATCH} x {SEQ})",
                r,
                "chars",
                cpu,
            )
        if f"gen-{kind}" in sections:
            for batch in (1, 64):
                r = results[f"generate_{kind}_batch{batch}"] = bench_generation(
                    kind, layers[kind], batch, rounds, calls
                )
                print_table(
                    f"{kind.upper()} generation, T=1 per call, batch {batch}, 100 chars "
                    "in one while loop",
                    r,
                    "chars",
                    cpu,
                )
    if "bf16" in sections:
        if cpu_has_native_bf16():
            r = results["bf16_lstm"] = bench_bf16(layers["lstm"], rounds, calls)
            print_table("LSTM training, mixed_bfloat16 vs float32", r, "chars", cpu)
        else:
            results["bf16_lstm"] = "skipped: no native bf16 on this CPU"
    results["machine"] = machine.finish()
    print("\n" + machine.describe())
    name = "bench_cell" + ("_quick" if args.quick else "")
    if set(sections) != set(SECTIONS) or args.variants:  # a partial run keeps the full results
        name += (
            "_"
            + "_".join(sections)
            + (f"_{args.variants.replace(',', '-')}" if args.variants else "")
        )
    C.say(f"wrote {C.write_results(name, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
