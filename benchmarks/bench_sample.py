"""Generation speed of charlm's Generator against the tutorials' ways, LSTM 2 x 512.

The model is charlm's Keras LSTM (Embedding 64 -> LSTM 512 x 2 -> Dense, 3.3 M parameters;
``--units`` changes the width), built with ``charlm.models.lm.build_model``,
with random weights and a vocabulary of 65 (timing does not depend on the weights).
Contenders, interleaved round by round (and reversed every other round), medians reported:

* ``charlm 1``     — ``Generator.generate(prefix, 500)``: prefix in one call, then the
  in-graph ``tf.while_loop`` (the whole sample in one call, as ``generate`` does);
* ``charlm 1, streamed`` — the same through ``Generator.stream`` in chunks of 64 (how one
  sample is streamed to stdout);
* ``charlm 16``    — ``num_samples=16``: 16 samples of 500 in one batch (total chars/s);
* ``graph 1``, ``graph 16`` — the same, with the sampling loop as a plain TensorFlow graph
  (``Generator(xla=False)``) instead of XLA-compiled: what XLA brings;
* ``floor 1``, ``floor 16`` — only the matrix products of one step (per layer x·W and h·U,
  then h·V), for 1 and 16 rows, in the same kind of XLA-compiled loop: what the step could
  cost at best, and so the most 16 streams can gain over one;
* ``peak`` — 20 float32 1024³ products, the machine's arithmetic ceiling in these rounds;
* ``OneStep (Keras layers)`` — the TF text-generation tutorial as written: a Python loop
  around a one-step ``tf.function`` (model call, temperature, mask, ``tf.random.categorical``),
  batch 1, over the tutorial's kind of model, plain ``keras.layers.LSTM`` layers with
  ``return_state`` (the same weights as charlm's model; its logits are checked equal). The
  tutorial's string lookups are left out, which only makes this reference faster. This is the
  reference of the performance issue's "one stream >= 5x OneStep";
* ``OneStep (charlm's layers)`` — the same loop around charlm's own model (its fast layers):
  how much of the gain comes from the in-graph loop alone;
* ``re-run 100``   — re-run the model from a zero state on the last 100 characters for every
  new character (what the Keras char-LSTM example does), for a short length;
* prefix warm-up (``Generator.warm_up``, public): the time to feed a 200-character prefix for
  1 copy and for 16 copies of the same prefix (identical prefixes are fed once and the state
  is broadcast to every row), against feeding all 16 identical rows in one batched call
  (``Generator.feed`` on a [16, 200] batch: what 16 copies cost without the broadcast),
  16 different 200-character prefixes (``warm_up``: one call per distinct prefix;
  ``feed_together``, the server's: all 16 in one batch), and the
  prefix fed one character at a time through the one-step function.

Evaluation speed against training speed for one model is measured by bench_train.py
(``eval`` contender), with that model's training in the same rounds.

Times are wall-clock per call, after a first round that traces every graph.

    python benchmarks/bench_sample.py            # full: about two minutes
    python benchmarks/bench_sample.py --quick    # about a minute
"""

from __future__ import annotations

import argparse
import sys
import time

import _common as C

C.quiet_tensorflow()

UNITS, LAYERS, EMB, VOCAB = 512, 2, 64, 65


def tutorial_model(vocab_size: int, units: int, charlm_model):
    """The TF tutorial's kind of model with plain ``keras.layers.LSTM`` layers (states in and
    out), holding ``charlm_model``'s weights (charlm's fast layers keep Keras's weight layout)."""
    import keras
    import numpy as np
    import tensorflow as tf

    ids = keras.Input((None,), dtype="int32")
    states = [keras.Input((units,)) for _ in range(2 * LAYERS)]
    x, new = keras.layers.Embedding(vocab_size, EMB)(ids), []
    for i in range(LAYERS):
        x, h, c = keras.layers.LSTM(units, return_sequences=True, return_state=True)(
            x, initial_state=states[2 * i : 2 * i + 2]
        )
        new += [h, c]
    model = keras.Model([ids, *states], [keras.layers.Dense(vocab_size)(x), *new])
    model.set_weights(charlm_model.keras_model.get_weights())
    probe = tf.constant(np.arange(vocab_size, dtype=np.int32)[None, :])
    mine, _ = charlm_model(probe, charlm_model.initial_state(1))
    theirs = model([probe, *charlm_model.initial_state(1)])[0]
    np.testing.assert_allclose(theirs, mine, rtol=1e-4, atol=1e-5)
    return model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=0, help="counted rounds (default 9, quick 3)")
    p.add_argument(
        "--length", type=int, default=0, help="characters per sample (default 500, quick 200)"
    )
    p.add_argument("--units", type=int, default=UNITS, help=f"LSTM width (default {UNITS})")
    args = p.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    length = args.length or (200 if args.quick else 500)
    rerun_length = 12 if args.quick else 40
    prefix_len = 200

    machine = C.Machine()
    import numpy as np
    import tensorflow as tf

    from charlm.models.lm import build_model
    from charlm.options.config import Config
    from charlm.options.sampling import SamplingOptions
    from charlm.text.corpus import read_corpus
    from charlm.text.vocab import Vocab
    from charlm.use.generate import Generator

    machine.add_versions()
    text = read_corpus([str(C.CORPORA / "tinyshakespeare.txt")])
    chars = sorted(set(text))[: VOCAB - 1]  # 64 characters + <unk> = 65
    vocab = Vocab(chars)
    units = args.units
    cfg = Config(model="lstm", layers=LAYERS, units=units, embedding_dim=EMB)
    model = build_model(cfg, len(vocab))
    params = model.count_params()
    gen = Generator(model, vocab)
    gen_graph = Generator(model, vocab, xla=False)  # the same loop as a TensorFlow graph
    known = "".join(c for c in text[:5000] if c in set(chars))
    prefix = "ROMEO:"
    long_prefix = known[:prefix_len]
    assert len(long_prefix) == prefix_len
    long_ids = vocab.encode(long_prefix).astype(np.int32)
    distinct = [
        vocab.encode(known[i * 37 : i * 37 + prefix_len]).astype(np.int32) for i in range(16)
    ]
    batch16 = np.tile(long_ids, (16, 1))

    tutorial = tutorial_model(len(vocab), units, model)

    def sync(logits_state):  # make sure the work is done before the clock stops
        np.asarray(logits_state[0])  # numpy already (Generator.feed, warm_up)

    # --- the TF tutorial's OneStep ------------------------------------------------------------
    mask = np.zeros([len(vocab)], np.float32)
    mask[0] = -np.inf  # the tutorial masks [UNK] out of the prediction
    mask = tf.constant(mask)
    temperature = tf.constant(1.0)

    def make_one_step(call):
        @tf.function
        def one_step(ids, state):
            logits, state = call(ids, state)
            logits = logits[:, -1, :] / temperature + mask
            return tf.random.categorical(logits, num_samples=1, dtype=tf.int32), state

        return one_step

    def tutorial_call(ids, state):  # the plain Keras model: [ids, *state] -> [logits, *state]
        logits, *state = tutorial([ids, *state], training=False)
        return logits, state

    one_step = make_one_step(lambda ids, state: model(ids, state, training=False))
    tutorial_step = make_one_step(tutorial_call)

    def onestep_generate(prefix_text: str, n: int, one_step=one_step) -> str:
        ids = tf.constant(vocab.encode(prefix_text).astype(np.int32)[None, :])
        state = model.initial_state(1)
        out = []
        nxt, state = one_step(ids, state)  # the tutorial feeds the prefix in its first call
        for _ in range(n):
            out.append(nxt)
            nxt, state = one_step(nxt, state)
        return prefix_text + vocab.decode(np.concatenate([o.numpy()[:, 0] for o in out]))

    def onestep_prefix_char_by_char(prefix_text: str) -> None:
        ids = vocab.encode(prefix_text).astype(np.int32)
        state = model.initial_state(1)
        for i in ids:
            _, state = one_step(tf.constant([[i]], tf.int32), state)

    # --- re-run the model on the last 100 characters per new character -------------------------
    window = 100

    @tf.function
    def rerun_step(ids):
        logits, _ = model(ids, model.initial_state(1), training=False)
        return tf.random.categorical(logits[:, -1, :] / temperature + mask, 1, dtype=tf.int32)

    def rerun_generate(prefix_text: str, n: int) -> str:
        ids = list(vocab.encode(prefix_text).astype(np.int32))
        for _ in range(n):
            nxt = rerun_step(tf.constant([ids[-window:]], tf.int32))
            ids.append(int(nxt[0, 0]))
        return vocab.decode(np.array(ids))

    # --- the floor: the step's matrix products alone, in the same XLA-compiled loop ------------
    def matmul_floor(rows: int):
        """A loop of ``length`` steps doing only one step's products for ``rows`` rows: per
        layer x @ W and h @ U (W: [64 or units, 4·units], U: [units, 4·units]), then h @ V."""
        shapes = [(EMB, 4 * units), (units, 4 * units)] + [(units, 4 * units)] * 2 * (LAYERS - 1)
        weights = [tf.Variable(tf.random.normal(s, stddev=0.02)) for s in shapes]
        out_w = tf.Variable(tf.random.normal([units, VOCAB], stddev=0.02))

        @tf.function(jit_compile=True)
        def loop(x, h):
            def body(i, x, h):
                for j in range(0, len(weights), 2):
                    g = tf.matmul(x if j == 0 else h, weights[j]) + tf.matmul(h, weights[j + 1])
                    h = tf.tanh(g[:, :units])
                return i + 1, x, h + 0.0 * tf.reduce_sum(tf.matmul(h, out_w))

            return tf.while_loop(lambda i, *_: i < length, body, (0, x, h))[2]

        x, h = tf.random.normal([rows, EMB]), tf.random.normal([rows, units])
        return lambda: loop(x, h).numpy()

    a, b = tf.random.normal([1024, 1024], seed=1), tf.random.normal([1024, 1024], seed=2)
    peak_product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    PEAK_CALLS = 20

    def matmul_peak():  # the machine's arithmetic ceiling, float32 (as in bench_train.py)
        for _ in range(PEAK_CALLS):
            float(peak_product())

    # FLOPs of one step's products for one row: x·W and h·U per layer, then h·V
    step_flops = 2 * (EMB * 4 * units + (2 * LAYERS - 1) * units * 4 * units + units * VOCAB)

    seed = [0]

    def next_seed():
        seed[0] += 1
        return seed[0]

    contenders = {
        "charlm-1": (
            "charlm Generator, 1 sample",
            length,
            lambda: gen.generate(prefix, length, seed=next_seed()),
        ),
        "charlm-1-stream": (
            "charlm Generator.stream, 1 sample, chunks of 64",
            length,
            lambda: list(gen.stream([prefix], SamplingOptions(length=length, seed=next_seed()))),
        ),
        "charlm-16": (
            "charlm Generator, 16 samples in one batch",
            16 * length,
            lambda: gen.generate(prefix, length, num_samples=16, seed=next_seed()),
        ),
        "graph-1": (
            "the same loop as a TF graph, no XLA (Generator(xla=False)), 1 sample",
            length,
            lambda: gen_graph.generate(prefix, length, seed=next_seed()),
        ),
        "graph-16": (
            "the same loop as a TF graph, no XLA, 16 samples",
            16 * length,
            lambda: gen_graph.generate(prefix, length, num_samples=16, seed=next_seed()),
        ),
        "floor-1": (
            "floor: one step's matrix products alone, 1 row, XLA loop",
            length,
            matmul_floor(1),
        ),
        "floor-16": (
            "floor: one step's matrix products alone, 16 rows, XLA loop",
            16 * length,
            matmul_floor(16),
        ),
        "peak": (
            f"float32 1024^3 matmul x {PEAK_CALLS} (the arithmetic ceiling)",
            None,
            matmul_peak,
        ),
        "onestep-keras": (
            "OneStep (TF tutorial) over plain keras.layers.LSTM, as the tutorial",
            length,
            lambda: onestep_generate(prefix, length, tutorial_step),
        ),
        "onestep": (
            "OneStep loop over charlm's own model (its fast layers)",
            length,
            lambda: onestep_generate(prefix, length),
        ),
        "rerun-100": (
            f"re-run the model on the last {window} chars per new char",
            rerun_length,
            lambda: rerun_generate(known[:window], rerun_length),
        ),
        "warm-200-charlm-1": (
            f"warm_up, 1 copy of a {prefix_len}-char prefix",
            None,
            lambda: sync(gen.warm_up([long_ids], copies=1)),
        ),
        "warm-200-charlm-16": (
            "warm_up, 16 copies of the same prefix (fed once, state broadcast)",
            None,
            lambda: sync(gen.warm_up([long_ids], copies=16)),
        ),
        "warm-200-batch-16": (
            f"the 16 identical rows fed in one batched call (Generator.feed, [16, {prefix_len}])",
            None,
            lambda: sync(gen.feed(batch16)),
        ),
        "warm-200-distinct-16": (
            f"warm_up, 16 different {prefix_len}-char prefixes (one call each)",
            None,
            lambda: sync(gen.warm_up(distinct, copies=1)),
        ),
        "warm-200-together-16": (
            f"feed_together, 16 different {prefix_len}-char prefixes in one batch (the server)",
            None,
            lambda: gen.feed_together(distinct, {}),
        ),
        "warm-200-onestep": (
            f"{prefix_len}-char prefix fed one char at a time (one-step fn)",
            None,
            lambda: onestep_prefix_char_by_char(long_prefix),
        ),
    }

    C.say(
        f"bench_sample: load {C.fmt_load(machine.start_load)}; LSTM {LAYERS}x{units}, "
        f"{params:,} params, vocab {len(vocab)}, length {length}, {rounds} rounds"
    )
    # warm-up round: trace everything (every batch size / prefix shape the rounds will use)
    first_call = {}
    for name, (_, _, fn) in contenders.items():
        t0 = time.perf_counter()
        fn()
        first_call[name] = time.perf_counter() - t0
        C.say(f"  warm-up {name}: {first_call[name]:.2f} s")
    # a sanity check that the samples have the asked-for length
    s1 = gen.generate(prefix, length, seed=1)
    s16 = gen.generate(prefix, length, num_samples=16, seed=1)
    assert len(s1) == 1 and len(s1[0]) == len(prefix) + length
    assert len(s16) == 16 and all(len(s) == len(prefix) + length for s in s16)

    times = {n: [] for n in contenders}
    order = list(contenders)
    for rnd in range(rounds):
        for name in order if rnd % 2 == 0 else order[::-1]:
            fn = contenders[name][2]
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        C.say(f"  round {rnd + 1}: " + ", ".join(f"{n} {times[n][-1]:.3f} s" for n in order))

    def per_round(a, b):  # median over rounds of time[a] / time[b]
        return C.median([x / y for x, y in zip(times[a], times[b], strict=True)])

    summary = {}
    for name, (label, chars, _) in contenders.items():
        t = C.median(times[name])
        summary[name] = {
            "label": label,
            "median_seconds": t,
            "seconds": times[name],
            "chars": chars,
            "chars_per_sec": (chars / t) if chars else None,
            "rates": [chars / x for x in times[name]] if chars else None,
        }
    ratios = {
        "charlm-1 speed / onestep-keras speed (per round; the issue's OneStep)": C.median(
            [b / a for a, b in zip(times["charlm-1"], times["onestep-keras"], strict=True)]
        ),
        "charlm-16 total chars/s / charlm-1 chars/s": C.median(
            [16 * a / b for a, b in zip(times["charlm-1"], times["charlm-16"], strict=True)]
        ),
        "onestep (charlm's layers) speed / onestep-keras speed": C.median(
            [b / a for a, b in zip(times["onestep"], times["onestep-keras"], strict=True)]
        ),
        "charlm-1 speed / onestep speed (per round)": C.median(
            [
                (length / a) / (length / b)
                for a, b in zip(times["charlm-1"], times["onestep"], strict=True)
            ]
        ),
        "charlm-16 total chars/s / onestep chars/s": C.median(
            [
                (16 * length / a) / (length / b)
                for a, b in zip(times["charlm-16"], times["onestep"], strict=True)
            ]
        ),
        "charlm-16 time / charlm-1 time": per_round("charlm-16", "charlm-1"),
        "charlm-1 speed / graph-1 speed (XLA against the same loop as a graph)": per_round(
            "graph-1", "charlm-1"
        ),
        "charlm-16 speed / graph-16 speed": per_round("graph-16", "charlm-16"),
        "charlm-1 time / its matmul floor (floor-1)": per_round("charlm-1", "floor-1"),
        "charlm-16 time / its matmul floor (floor-16)": per_round("charlm-16", "floor-16"),
        "16 x charlm-1 time / floor-16 time (the most charlm-16 / charlm-1 could be)": C.median(
            [16 * a / b for a, b in zip(times["charlm-1"], times["floor-16"], strict=True)]
        ),
        "16 x charlm-1 time / (16-row step FLOPs at the 1024^3 matmul's rate)": C.median(
            [
                16 * a / (length * 16 * step_flops / (PEAK_CALLS * 2 * 1024**3 / p))
                for a, p in zip(times["charlm-1"], times["peak"], strict=True)
            ]
        ),
        "graph-16 total chars/s / graph-1 chars/s": C.median(
            [16 * a / b for a, b in zip(times["graph-1"], times["graph-16"], strict=True)]
        ),
        "charlm-1 streamed time / charlm-1 time": per_round("charlm-1-stream", "charlm-1"),
        "charlm-1 speed / re-run-100 speed": C.median(
            [
                (length / a) / (rerun_length / b)
                for a, b in zip(times["charlm-1"], times["rerun-100"], strict=True)
            ]
        ),
        "200-char warm-up, char-by-char time / charlm one-call time": per_round(
            "warm-200-onestep", "warm-200-charlm-1"
        ),
        "200-char warm-up, 16 copies / 1 copy (broadcast)": per_round(
            "warm-200-charlm-16", "warm-200-charlm-1"
        ),
        "200-char warm-up, 16 rows in one batched call / 16 copies broadcast": per_round(
            "warm-200-batch-16", "warm-200-charlm-16"
        ),
        "200-char warm-up, 16 different prefixes / 1 prefix": per_round(
            "warm-200-distinct-16", "warm-200-charlm-1"
        ),
        "200-char warm-up, 16 different prefixes fed together / 1 prefix": per_round(
            "warm-200-together-16", "warm-200-charlm-1"
        ),
    }

    info = machine.finish()
    gen_rows = [
        [
            s["label"],
            s["chars"],
            s["median_seconds"],
            s["chars_per_sec"],
            C.spread(s["rates"]),
            (s["chars_per_sec"] / summary["onestep-keras"]["chars_per_sec"]),
        ]
        for n, s in summary.items()
        if s["chars"]
    ]
    warm_rows = [
        [s["label"], s["median_seconds"] * 1000, C.spread([x * 1000 for x in s["seconds"]])]
        for n, s in summary.items()
        if not s["chars"] and n != "peak"
    ]
    peak = PEAK_CALLS * 2 * 1024**3 / summary["peak"]["median_seconds"] / 1e9
    out = [
        f"### Generation, LSTM {LAYERS}x{units} ({params:,} params, random weights, vocab "
        f"{len(vocab)}), {rounds} interleaved rounds, medians",
        "",
        f"Machine: {machine.describe()}",
        "",
        f"float32 1024^3 matmul in the same rounds: {peak:.0f} GFLOP/s; one step's products: "
        f"{step_flops / 1e6:.2f} MFLOP per row",
        "",
        C.table(
            [
                "contender",
                "chars generated per call",
                "seconds (median)",
                "chars/s",
                "chars/s range",
                "× OneStep (Keras layers)",
            ],
            gen_rows,
        ),
        "",
        C.table(["prefix warm-up", "ms (median)", "range (ms)"], warm_rows),
        "",
        C.table(["ratio (median over rounds)", "value"], [[k, v] for k, v in ratios.items()]),
        "",
        C.table(
            ["first call of the process (tracing, and XLA compiling)", "seconds"],
            [
                [contenders[n][0], first_call[n]]
                for n in ("charlm-1", "graph-1", "charlm-16", "graph-16", "onestep-keras")
            ],
        ),
    ]
    text_out = "\n".join(out)
    print(text_out)
    path = C.write_results(
        "bench_sample_quick" if args.quick else "bench_sample",
        {
            "benchmark": "bench_sample",
            "quick": args.quick,
            "machine": info,
            "rounds": rounds,
            "settings": {
                "units": units,
                "layers": LAYERS,
                "embedding_dim": EMB,
                "vocab": len(vocab),
                "params": params,
                "length": length,
                "rerun_length": rerun_length,
                "prefix": prefix,
                "warm_prefix_len": prefix_len,
            },
            "summary": summary,
            "ratios": ratios,
            "first_call_seconds": first_call,
            "markdown": text_out,
        },
    )
    C.say(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
