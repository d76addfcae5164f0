"""Evidence for a proposed change to charlm.use.generate: in the sampling loop, call the Keras LSTM
cells directly for the one new character instead of the whole functional model.

A call of the functional model with T = 1 runs each LSTM layer's sequence machinery (a loop
of one step) per character; calling ``layer.cell`` skips it. Both give bit-identical logits
(checked below, float32 and mixed_bfloat16). LSTM 2x512, vocabulary 65, random weights,
500 characters, interleaved rounds, medians.

The Keras model is built here with ``charlm.models.lm.build_keras_model`` and wrapped in
``charlm.models.lm.KerasLM`` (so the script holds the layers it calls, rather than reading them
out of a charlm model); the prefix warm-up is ``Generator.warm_up`` and the choice of the next
character ``charlm.use.draw.sample_next``, as in the Generator's own loop.

    python benchmarks/investigate_sampling_step.py            # about a minute
    python benchmarks/investigate_sampling_step.py --quick    # about 30 s
"""

from __future__ import annotations

import argparse
import sys
import time

import _common as C

C.quiet_tensorflow()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 rounds of 200 characters")
    args = p.parse_args(argv)
    rounds, length = (3, 200) if args.quick else (9, 500)
    machine = C.Machine()
    import numpy as np
    import tensorflow as tf

    from charlm.models.lm import KerasLM, build_keras_model
    from charlm.text.corpus import read_corpus
    from charlm.text.vocab import Vocab
    from charlm.use.draw import sample_next
    from charlm.use.generate import Generator

    machine.add_versions()
    text = read_corpus([str(C.CORPORA / "tinyshakespeare.txt")])
    vocab = Vocab(sorted(set(text))[:64])

    def build(precision="float32"):
        km = build_keras_model(
            "lstm", len(vocab), layers=2, units=512, embedding_dim=64, precision=precision
        )
        return km, KerasLM(km)

    def cell_stepper(km):
        emb, dense = km.get_layer("embedding"), km.get_layer("logits")
        cells = [km.get_layer(f"lstm_{i}").cell for i in range(2)]

        def step(ids, state):  # ids [B] -> logits [B, V], new state
            x = emb(ids)
            new = []
            for i, cell in enumerate(cells):
                x, s = cell(x, state[2 * i : 2 * i + 2], training=False)
                new += [tf.cast(t, tf.float32) for t in s]
            return tf.cast(dense(x), tf.float32), new

        return step

    checks = {}
    for precision in ("float32", "mixed_bfloat16"):
        km, m = build(precision)
        step = cell_stepper(km)
        st = m.initial_state(3)
        ids = tf.constant([[5], [7], [9]])
        a, sa = m(ids, st)
        b, sb = step(ids[:, 0], st)
        a2, _ = m(ids, sa)
        b2, _ = step(ids[:, 0], sb)
        checks[precision] = max(
            float(tf.reduce_max(tf.abs(a[:, -1] - b))), float(tf.reduce_max(tf.abs(a2[:, -1] - b2)))
        )

    km, model = build()
    gen = Generator(model, vocab)
    step = cell_stepper(km)

    @tf.function
    def loop_cells(logits, state, n, seed):
        out = tf.TensorArray(tf.int32, size=n)

        def body(i, logits, state, out):
            b = tf.shape(logits)[0]
            nxt = sample_next(
                logits,
                tf.fill([b], 1.0),
                tf.fill([b], 0),
                tf.fill([b], 1.0),
                tf.fill([b], False),
                tf.fill([b], seed),
                tf.range(b, dtype=tf.int64),
                tf.fill([b], tf.cast(i, tf.int64)),
            )
            logits, state = step(nxt, state)
            return i + 1, logits, state, out.write(i, nxt)

        _, logits, state, out = tf.while_loop(lambda i, *_: i < n, body, (0, logits, state, out))
        return tf.transpose(out.stack()), logits, state

    def cells_generate(batch):
        ids = vocab.encode("ROMEO:").astype(np.int32)
        logits, state = gen.warm_up([ids], copies=batch)  # the Generator's own prefix warm-up
        out, _, _ = loop_cells(logits, state, tf.constant(length), tf.constant(1, tf.int64))
        return out.numpy()

    contenders = {
        "Generator, 1 sample": (length, lambda: gen.generate("ROMEO:", length, seed=1)),
        "cells loop, 1 sample": (length, lambda: cells_generate(1)),
        "Generator, 16 samples": (
            16 * length,
            lambda: gen.generate("ROMEO:", length, num_samples=16, seed=1),
        ),
        "cells loop, 16 samples": (16 * length, lambda: cells_generate(16)),
    }
    for _, f in contenders.values():
        f()
    times = {k: [] for k in contenders}
    for r in range(rounds):
        for k, (_, f) in list(contenders.items()) if r % 2 == 0 else list(contenders.items())[::-1]:
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    info = machine.finish()
    rows = [[k, n, C.median(times[k]), n / C.median(times[k])] for k, (n, _) in contenders.items()]
    ratio1 = C.median(
        [
            a / b
            for a, b in zip(
                times["Generator, 1 sample"], times["cells loop, 1 sample"], strict=True
            )
        ]
    )
    ratio16 = C.median(
        [
            a / b
            for a, b in zip(
                times["Generator, 16 samples"], times["cells loop, 16 samples"], strict=True
            )
        ]
    )
    out = [
        "### Sampling loop: whole functional model vs the LSTM cells, LSTM 2x512"
        + (" (QUICK)" if args.quick else ""),
        "",
        f"Machine: {machine.describe()}",
        "",
        C.table(["contender", "chars", "seconds (median)", "chars/s"], rows),
        "",
        f"Generator time / cells-loop time: 1 sample {ratio1:.2f}, 16 samples {ratio16:.2f}. "
        f"Max |logit difference| over two steps: float32 {checks['float32']:g}, "
        f"mixed_bfloat16 {checks['mixed_bfloat16']:g}.",
    ]
    text_out = "\n".join(out)
    print(text_out)
    C.write_results(
        "investigate_sampling_step_quick" if args.quick else "investigate_sampling_step",
        {
            "machine": info,
            "times": times,
            "ratio_1": ratio1,
            "ratio_16": ratio16,
            "max_logit_diff": checks,
            "markdown": text_out,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
