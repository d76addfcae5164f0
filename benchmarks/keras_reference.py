"""The plain Keras char-LSTM that charlm grew from: the reference contender of race.py.

Tiny Shakespeare, first 90 % train (the cut of charlm.text.corpus.split_corpus(text, 0.1)), vocabulary
from the training text; Embedding 64 -> LSTM 256 -> LSTM 256 -> Dense; windows of 100 at random
offsets, batch 64, Adam 2e-3 (constant), clipnorm 5; ``model.fit`` on a tf.data pipeline. It
stops itself when the next step would end past its wall-clock budget, counted from the
process launch the caller passes in (minus ``--reserve`` s kept for saving and exiting), then
saves the weights (``ref.weights.h5``), the vocabulary and its counts (``ref.json``) and exits.
It scores nothing: race.py scores its weights afterwards (``build_model(..., with_state=True)``).

    python benchmarks/keras_reference.py --budget 90 --launch-time "$(date +%s.%N)" --out /tmp/ref
"""

import argparse  # noqa: E401
import json
import os
import sys
import time
from pathlib import Path

SEQ, BATCH, EMB, UNITS, LR, CLIP = 100, 64, 64, 256, 2e-3, 5.0
CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "tinyshakespeare.txt"


def build_model(vocab_size: int, with_state: bool = False):
    """The model; ``with_state`` gives the same layers (same weight order) with the LSTM states
    as extra inputs and outputs, for scoring with carried state."""
    import keras

    ids = keras.Input((None,), dtype="int32")
    states = [keras.Input((UNITS,)) for _ in range(4)] if with_state else []
    x, new = keras.layers.Embedding(vocab_size, EMB)(ids), []
    for i in range(2):
        kw = {"initial_state": states[2 * i : 2 * i + 2]} if with_state else {}
        x, h, c = keras.layers.LSTM(UNITS, return_sequences=True, return_state=True)(x, **kw)
        new += [h, c]
    logits = keras.layers.Dense(vocab_size)(x)
    return keras.Model([ids, *states], [logits, *new]) if with_state else keras.Model(ids, logits)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, required=True, help="seconds, launch to exit")
    p.add_argument("--launch-time", type=float, default=time.time(), help="time.time() at launch")
    p.add_argument("--out", required=True, help="folder for ref.weights.h5 and ref.json")
    p.add_argument("--reserve", type=float, default=2.0, help="seconds kept for saving and exit")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: E401
    import numpy as np
    import tensorflow as tf

    text = CORPUS.read_text(encoding="utf-8")
    train = text[: len(text) - int(len(text) * 0.1)]
    chars = sorted(set(train))
    index = {c: i for i, c in enumerate(chars)}
    ids = tf.constant(np.array([index[c] for c in train], np.int32))
    keras.utils.set_random_seed(args.seed)
    model = build_model(len(chars))
    model.compile(
        keras.optimizers.Adam(LR, clipnorm=CLIP),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    offsets = tf.range(SEQ + 1, dtype=tf.int64)
    ds = (
        tf.data.Dataset.random(seed=args.seed)
        .batch(BATCH)
        .map(lambda r: tf.gather(ids, (r % (len(train) - SEQ - 1))[:, None] + offsets))
        .map(lambda w: (w[:, :-1], w[:, 1:]))
        .prefetch(2)
    )
    options = tf.data.Options()
    options.autotune.enabled = False  # its teardown froze 40-55 s at the end of fit (DESIGN note)
    deadline = args.launch_time + args.budget - args.reserve
    log = {"steps": 0, "fit_start": time.time(), "sums": [0.0]}

    class Budget(keras.callbacks.Callback):  # stop when the next step would end past the deadline
        def on_train_batch_end(self, batch, logs=None):
            now = time.time()
            step = now - log.get("last", log["fit_start"])
            log.update(steps=log["steps"] + 1, last=now)
            log["sums"].append(float(logs["loss"]) * log["steps"])  # logs["loss"]: mean so far
            self.model.stop_training = now + step >= deadline

    model.fit(
        ds.with_options(options),
        epochs=1,
        steps_per_epoch=10**9,
        verbose=0,
        shuffle=False,
        callbacks=[Budget()],
    )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    k = min(50, log["steps"])
    model.save_weights(str(Path(args.out) / "ref.weights.h5"))
    Path(args.out, "ref.json").write_text(
        json.dumps(
            {
                "chars": chars,
                "train_chars": len(train),
                "steps": log["steps"],
                "chars_per_step": SEQ * BATCH,
                "last_train_loss": (log["sums"][-1] - log["sums"][-k - 1]) / k,  # last <= 50 steps
                "fit_seconds": log.get("last", time.time()) - log["fit_start"],
                "start_seconds": log["fit_start"] - args.launch_time,
                "saved_at_seconds": time.time() - args.launch_time,
                "params": model.count_params(),
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
