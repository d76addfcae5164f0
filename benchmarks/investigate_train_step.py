"""Where charlm lstm 2x256's training time goes, against plain Keras (follow-up to bench_train).

Per step, interleaved rounds, medians (ms per step of 64 x 100 characters):

* charlm's compiled step (``Trainer._train_step``) on one fixed batch, with ``float(loss)``;
* the same step rebuilt with ``tf.clip_by_global_norm`` and with no clipping (the cost of
  charlm's own clipping);
* plain Keras ``train_on_batch`` on the same batch (the reference model of bench_train);
* charlm's whole loop, ``Trainer.fit`` (tf.data, learning-rate update, logging...).

    python benchmarks/investigate_train_step.py [--quick]
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    rounds, n = (2, 4) if args.quick else (5, 10)
    machine = C.Machine()
    import numpy as np
    import tensorflow as tf

    import bench_train as BT
    from charlm.clipping import clip_by_global_norm
    from charlm.corpus import read_corpus, split_corpus
    from charlm.vocab import Vocab

    machine.add_versions()
    text = read_corpus([str(C.CORPORA / "tinyshakespeare.txt")])
    tr, va = split_corpus(text, 0.1)
    vocab = Vocab.from_text(tr)
    ids = vocab.encode(tr)
    tmp = Path(tempfile.mkdtemp(prefix="charlm-inv-"))
    loop = BT.CharlmLoop("lstm", tr, va, tmp)
    t = loop.trainer
    ref = BT.KerasFit(ids, len(vocab))
    starts = np.random.default_rng(0).integers(0, len(ids) - 102, 64)
    w = np.stack([ids[s:s + 101] for s in starts]).astype(np.int32)
    x, y = tf.constant(w[:, :-1]), tf.constant(w[:, 1:])
    model, variables, opt, state = t.model, t.variables, t.optimizer, t.zero_state

    def rebuilt(clip):
        @tf.function
        def step(x, y, state):
            with tf.GradientTape() as tape:
                logits, new_state = model(x, state, training=True)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            grads = tape.gradient(loss, variables)
            if clip == "charlm":
                grads, _ = clip_by_global_norm(grads, 5.0)
            elif clip == "tf":
                grads, _ = tf.clip_by_global_norm(grads, 5.0)
            opt.apply_gradients(zip(grads, variables))
            return loss
        return step

    def timed(fn):
        def run():
            t0 = time.perf_counter()
            for _ in range(n):
                out = fn()
                float(out[0] if isinstance(out, (tuple, list)) else out)
            return (time.perf_counter() - t0) / n
        return run

    steps = {"charlm compiled step (Trainer._train_step)": lambda: t._train_step(x, y, state),
             "same step, charlm clipping (rebuilt)": (lambda f=rebuilt("charlm"): f(x, y, state)),
             "same step, tf.clip_by_global_norm": (lambda f=rebuilt("tf"): f(x, y, state)),
             "same step, no clipping": (lambda f=rebuilt("none"): f(x, y, state)),
             "plain Keras train_on_batch": lambda: ref.model.train_on_batch(x, y)}
    fns = {k: timed(f) for k, f in steps.items()}

    def fit_per_step():
        r = loop.run(n + 1)
        return 6400 / r["rate"]

    fns["charlm Trainer.fit (whole loop)"] = fit_per_step
    with contextlib.redirect_stderr(io.StringIO()):
        for f in fns.values():
            f()
        times = {k: [] for k in fns}
        for r in range(rounds):
            for k, f in (list(fns.items()) if r % 2 == 0 else list(fns.items())[::-1]):
                times[k].append(f())
    info = machine.finish()
    base = times["plain Keras train_on_batch"]
    rows = [[k, C.median(ts) * 1000, C.spread([v * 1000 for v in ts]),
             C.median([b / a for a, b in zip(ts, base)])] for k, ts in times.items()]
    text_out = "\n".join(["### charlm lstm 2x256: compiled step vs loop vs plain Keras", "",
                          f"Machine: {machine.describe()}", "",
                          C.table(["what", "ms per step (median)", "range", "speed × Keras train_on_batch"], rows)])
    print(text_out)
    C.write_results("investigate_train_step", {"machine": info, "times": times, "markdown": text_out})
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
