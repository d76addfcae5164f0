"""Where charlm lstm 2x256's training time goes, against plain Keras (follow-up to bench_train).

Per step, interleaved rounds, medians (ms per step of 64 x 100 characters), through public
interfaces only:

* charlm's ``Trainer.fit`` (built by ``charlm.api.prepare`` as ``charlm train`` builds it),
  timed by a :class:`charlm.training.trainer.Callback`: the step itself (``on_batch_begin`` to
  ``on_batch_end``: the compiled step and reading its loss) and the whole loop per step
  (``on_batch_end`` to ``on_batch_end``: also the tf.data batch, the learning-rate update and
  the checks between steps);
* the same step rebuilt here around the same model (the trainer's own loss and gradients,
  ``charlm.training.step.loss_and_gradients``, then clipping and Adam) with charlm's
  ``clip_by_global_norm``, with ``tf.clip_by_global_norm`` and with no clipping, on one fixed
  batch (the cost of charlm's own clipping);
* plain Keras ``train_on_batch`` on the same batch (the reference model of bench_train).

    python benchmarks/investigate_train_step.py            # about 3 minutes
    python benchmarks/investigate_train_step.py --quick    # about a minute
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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 rounds of 4 steps (checks the script)")
    args = p.parse_args(argv)
    rounds, n = (2, 4) if args.quick else (5, 10)
    machine = C.Machine()
    import bench_train as BT
    import keras
    import numpy as np
    import tensorflow as tf

    from charlm.text.corpus import read_corpus, split_corpus
    from charlm.text.vocab import Vocab
    from charlm.training.clipping import clip_by_global_norm
    from charlm.training.step import loss_and_gradients

    machine.add_versions()
    text = read_corpus([str(C.CORPORA / "tinyshakespeare.txt")])
    tr, _ = split_corpus(text, 0.1)
    vocab = Vocab.from_text(tr)
    ids = vocab.encode(tr)
    tmp = Path(tempfile.mkdtemp(prefix="charlm-inv-"))
    loop = BT.CharlmLoop("lstm", tmp)
    ref = BT.KerasFit(ids, len(vocab))
    starts = np.random.default_rng(0).integers(0, len(ids) - 102, BT.BATCH)
    w = np.stack([ids[s : s + BT.SEQ + 1] for s in starts]).astype(np.int32)
    x, y = tf.constant(w[:, :-1]), tf.constant(w[:, 1:])
    model = loop.trainer.model
    variables = list(model.trainable_variables)
    state = model.initial_state(BT.BATCH)

    def rebuilt(clip):
        opt = keras.optimizers.Adam(BT.LR)

        @tf.function
        def step(x, y, state):
            loss, grads, _ = loss_and_gradients(model, variables, x, y, state)
            if clip == "charlm":
                grads, _ = clip_by_global_norm(grads, BT.CLIP)
            elif clip == "tf":
                grads, _ = tf.clip_by_global_norm(grads, BT.CLIP)
            opt.apply_gradients(zip(grads, variables, strict=True))
            return loss

        return step

    def timed(fn):
        def run():
            t0 = time.perf_counter()
            for _ in range(n):
                float(fn())
            return {"per_step": (time.perf_counter() - t0) / n}

        return run

    def fit_per_step():
        loop.run(n + 1)
        clock = loop.clock  # skip the first step (iterator start-up)
        steps = [e - b for b, e in zip(clock.begins[1:], clock.ends[1:], strict=True)]
        whole = (clock.ends[-1] - clock.ends[0]) / (len(clock.ends) - 1)
        return {"step": C.median(steps), "whole": whole}

    fns = {
        "charlm Trainer.fit": fit_per_step,
        "same step rebuilt, charlm clip_by_global_norm": timed(
            lambda f=rebuilt("charlm"): f(x, y, state)
        ),
        "same step rebuilt, tf.clip_by_global_norm": timed(lambda f=rebuilt("tf"): f(x, y, state)),
        "same step rebuilt, no clipping": timed(lambda f=rebuilt("none"): f(x, y, state)),
        "plain Keras train_on_batch": timed(lambda: ref.model.train_on_batch(x, y)),
    }
    with contextlib.redirect_stderr(io.StringIO()):
        for f in fns.values():  # trace everything
            f()
        raw = {k: [] for k in fns}
        for r in range(rounds):
            for k, f in list(fns.items()) if r % 2 == 0 else list(fns.items())[::-1]:
                raw[k].append(f())
    info = machine.finish()
    times = {
        "charlm Trainer.fit: the step (on_batch_begin → on_batch_end)": [
            t["step"] for t in raw["charlm Trainer.fit"]
        ],
        "charlm Trainer.fit: whole loop per step (on_batch_end → on_batch_end)": [
            t["whole"] for t in raw["charlm Trainer.fit"]
        ],
    }
    times.update(
        {k: [t["per_step"] for t in v] for k, v in raw.items() if k != "charlm Trainer.fit"}
    )
    base = times["plain Keras train_on_batch"]
    rows = [
        [
            k,
            C.median(ts) * 1000,
            C.spread([v * 1000 for v in ts]),
            C.median([b / a for a, b in zip(ts, base, strict=True)]),
        ]
        for k, ts in times.items()
    ]
    text_out = "\n".join(
        [
            f"### charlm lstm 2x256: its step and loop vs plain Keras ({rounds} rounds, "
            f"{n} steps a call, medians)" + (" (QUICK)" if args.quick else ""),
            "",
            f"Machine: {machine.describe()}",
            "",
            C.table(
                ["what", "ms per step (median)", "range", "speed × Keras train_on_batch"], rows
            ),
        ]
    )
    print(text_out)
    C.write_results(
        "investigate_train_step_quick" if args.quick else "investigate_train_step",
        {
            "machine": info,
            "quick": args.quick,
            "rounds": rounds,
            "steps_per_call": n,
            "times": times,
            "markdown": text_out,
        },
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
