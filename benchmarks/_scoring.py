"""Validation loss two ways, one function each, the same for every model the benchmarks score.

Not a benchmark itself. A model here is anything with charlm's model interface (a charlm
``run.model``, or :class:`StatefulKeras` around a plain Keras model)::

    state = model.initial_state(batch)                  # list of zero tensors
    logits, state = model(ids, state, training=False)   # ids int32 [B, T] -> logits [B, T, V]

``ids`` are the model's own vocabulary ids of the text to score (each model encodes the text
with its own vocabulary). Both return mean nats per scored character (float64 sums).

* :func:`windows_loss` — non-overlapping windows of ``window`` (64) characters, each from a
  zero state: window k is ``ids[64k : 64k + 64]``; the model reads its first 63 characters and
  is scored on its characters 2..64 (so every character is scored except the first of each
  window; a shorter last window of at least 2 characters is scored the same way).
  Tiny Shakespeare's val split (111,539 characters) gives 1,743 windows, 109,796 characters.
* :func:`carried_loss` — one long stream: the model reads the whole text in order, its state
  carried from chunk to chunk (``chunk`` characters per call; the chunk size changes nothing
  but speed), and is scored on every character after the text's first.
"""

from __future__ import annotations

import math

import numpy as np


def _chunk_fn(model):
    """One compiled call: (ids [B, T], targets [B, T], state) -> (sum of nats, new state);
    traced once for every batch size and length."""
    import tensorflow as tf

    ids = tf.TensorSpec([None, None], tf.int32)
    states = [tf.TensorSpec([None, *s.shape[1:]], s.dtype) for s in model.initial_state(1)]

    @tf.function(input_signature=[ids, ids, states])
    def chunk(x, y, state):
        logits, state = model(x, state, training=False)
        nats = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=tf.cast(logits, tf.float32)
        )
        return tf.reduce_sum(tf.cast(nats, tf.float64)), state

    return chunk


def windows_loss(model, ids, window: int = 64, batch: int = 256) -> dict:
    """Mean nats/char over non-overlapping ``window``-char windows, each from a zero state."""
    import tensorflow as tf

    ids = np.asarray(ids, np.int32)
    n_full = len(ids) // window
    full = ids[: n_full * window].reshape(n_full, window)
    rest = ids[n_full * window :]
    fn = _chunk_fn(model)
    total, count = 0.0, 0
    for start in range(0, n_full, batch):
        w = full[start : start + batch]
        nats, _ = fn(tf.constant(w[:, :-1]), tf.constant(w[:, 1:]), model.initial_state(len(w)))
        total += float(nats)
        count += w.shape[0] * (window - 1)
    if len(rest) >= 2:
        nats, _ = fn(
            tf.constant(rest[None, :-1]), tf.constant(rest[None, 1:]), model.initial_state(1)
        )
        total += float(nats)
        count += len(rest) - 1
    return {"nats_per_char": total / count, "chars": count, "windows": n_full + (len(rest) >= 2)}


def carried_loss(model, ids, chunk: int = 2048) -> dict:
    """Mean nats/char over one long stream, state carried across chunks."""
    import tensorflow as tf

    ids = np.asarray(ids, np.int32)
    x, y = ids[:-1], ids[1:]
    fn = _chunk_fn(model)
    state = model.initial_state(1)
    total = 0.0
    for start in range(0, len(x), chunk):
        nats, state = fn(
            tf.constant(x[None, start : start + chunk]),
            tf.constant(y[None, start : start + chunk]),
            state,
        )
        total += float(nats)
    return {"nats_per_char": total / len(x), "chars": len(x)}


def both(model, ids) -> dict:
    """``{"windows64": ..., "carried": ...}``, each with its scoring time in seconds."""
    import time

    out = {}
    for name, fn in (("windows64", windows_loss), ("carried", carried_loss)):
        t0 = time.perf_counter()
        out[name] = fn(model, ids)
        out[name]["seconds"] = time.perf_counter() - t0
        out[name]["bits_per_char"] = out[name]["nats_per_char"] / math.log(2)
    return out


class StatefulKeras:
    """charlm's model interface around a Keras model ``[ids, *states] -> [logits, *states]``."""

    def __init__(self, keras_model):
        self.keras_model = keras_model
        self.state_shapes = [tuple(t.shape[1:]) for t in keras_model.inputs[1:]]

    def initial_state(self, batch_size):
        import tensorflow as tf

        return [tf.zeros([batch_size, *s]) for s in self.state_shapes]

    def __call__(self, ids, state, training=False):
        logits, *state = self.keras_model([ids, *state], training=training)
        return logits, state
