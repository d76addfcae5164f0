"""The seeded draw of the next character from logits, in-graph (:func:`sample_next`).

The penalties lower the logits of the characters a row generated lately (:func:`penalised`);
temperature divides the logits; min-p keeps the characters at least that fraction as likely as
the most likely; top-k keeps the k largest; top-p (nucleus) keeps the smallest set whose
probability reaches p; greedy takes the argmax. Every option is a
per-row tensor, so rows of different requests share one compiled step (the server's batch).
A row's randomness is a counter-based hash of ``(seed, index, position)`` (:func:`uniforms`):
its request's seed, the row's index among its request's samples and its own character
count. So a seed gives the same text however the output is chunked and whatever other rows
share the batch.

    >>> rows = {k: tf.constant([v]) for k, v in dict(temperature=1.0, top_k=0, top_p=1.0,
    ...     min_p=0.0, greedy=True).items()}
    >>> rows |= {k: tf.constant([1], tf.int64) for k in ("seed", "index")}
    >>> ids = sample_next(tf.constant([[0.0, 5.0, 1.0]]), rows, tf.constant([0], tf.int64))
    >>> ids.numpy().tolist()  # greedy: the argmax
    [1]
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

PARTIAL = 256  # top-k and top-p look at this many largest logits, and at all only if need be
GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment: 2**64 / the golden ratio
MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)  # splitmix64's multipliers


def _mix64(z):
    """splitmix64's finaliser on uint64 tensors: every input bit moves every output bit."""

    def xor_shift(z, bits):
        return tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(bits, tf.uint64)))

    z = xor_shift(z, 30) * tf.constant(MIX[0], tf.uint64)
    z = xor_shift(z, 27) * tf.constant(MIX[1], tf.uint64)
    return xor_shift(z, 31)


def uniforms(seed, index, position):
    """One uniform in [0, 1) per row from int64 ``[B]`` tensors: the row's request's
    ``seed``, its ``index`` among that request's samples, its ``position`` (characters drawn
    so far). A function of those three alone: no batch-wide generator state, so a row draws
    the same numbers in any batch, and XLA compiles it to a few integer ops per row.

    Two splitmix64 steps: a key per (seed, index), then the key's stream at ``position``.

    >>> u = uniforms(tf.constant([5, 5], tf.int64), tf.constant([0, 1], tf.int64),
    ...              tf.constant([0, 0], tf.int64)).numpy()
    >>> bool(np.all((0 <= u) & (u < 1)) and u[0] != u[1])
    True
    """

    def step(z, n):
        return _mix64(z + tf.constant(GOLDEN, tf.uint64) * (tf.cast(n, tf.uint64) + 1))

    z = step(step(tf.cast(seed, tf.uint64), index), position)
    top = tf.bitwise.right_shift(z, tf.constant(40, tf.uint64))
    return tf.cast(top, tf.float32) * (1.0 / (1 << 24))  # 24 bits: exact in float32


def _thresholds(scaled, srt, top_k, top_p):
    """Top-k's and top-p's thresholds ``[B, 1]`` from ``srt``, the largest of ``scaled`` in
    descending order (all of them or the first few), and whether each row's nucleus ends
    within ``srt``."""
    use_k = tf.logical_and(top_k > 0, top_k < tf.shape(scaled)[-1])
    k = tf.clip_by_value(top_k, 1, tf.shape(srt)[-1])  # past srt: the caller sorts all
    kth = tf.where(use_k, tf.gather(srt, k - 1, batch_dims=1), -np.inf)[:, None]
    srt = tf.where(srt < kth, -np.inf, srt)  # what top-k keeps, then the nucleus of that
    kept = tf.where(scaled < kth, -np.inf, scaled)
    probs = tf.exp(srt - tf.reduce_logsumexp(kept, axis=-1, keepdims=True))
    mass_before = tf.cumsum(probs, axis=-1, exclusive=True)
    p = top_p[:, None]
    threshold = tf.reduce_min(tf.where(mass_before < p, srt, np.inf), axis=-1, keepdims=True)
    reached = mass_before[:, -1] + probs[:, -1] >= top_p
    return kth, tf.where(p < 1.0, threshold, -np.inf), reached


def _filtered(scaled, top_k, top_p):
    """``scaled`` with what top-k and top-p drop set to -inf.

    XLA sorts thousands of logits slowly (~1 ms for 6,000 on a CPU): read the
    :data:`PARTIAL` largest, and sort them all only when top-k or the nucleus reaches past
    those."""
    vocab = scaled.shape[-1]

    def full():
        return _thresholds(scaled, tf.sort(scaled, direction="DESCENDING"), top_k, top_p)[:2]

    if vocab is None or vocab <= PARTIAL:
        kth, threshold = full()
    else:
        largest = tf.math.top_k(scaled, k=PARTIAL).values
        kth, threshold, reached = _thresholds(scaled, largest, top_k, top_p)
        enough = tf.reduce_all(
            tf.logical_and(
                tf.logical_or(top_k <= PARTIAL, top_k >= vocab),
                tf.logical_or(top_p >= 1.0, reached),
            )
        )
        kth, threshold = tf.cond(enough, lambda: (kth, threshold), full)
    return tf.where(scaled < tf.maximum(kth, threshold), -np.inf, scaled)


def penalised(logits, counts, rows):
    """``logits [B, V]`` with each row's penalties on the characters it generated lately:
    ``counts [B, V]``, each character's count among the row's last
    :data:`~charlm.options.sampling.PENALTY_WINDOW`. A seen character's logit is divided by
    ``repetition_penalty`` if positive, multiplied if not (CTRL's rule, as Hugging Face and
    vLLM apply it), then lowered by ``frequency_penalty`` times its count and by
    ``presence_penalty`` (OpenAI's rule). Neutral penalties leave the logits as they are."""
    seen = counts > 0
    rep = rows["repetition_penalty"][:, None]
    logits = tf.where(seen, tf.where(logits > 0, logits / rep, logits * rep), logits)
    return (
        logits
        - rows["frequency_penalty"][:, None] * counts
        - rows["presence_penalty"][:, None] * tf.cast(seen, tf.float32)
    )


def _min_p(scaled, min_p):
    """``scaled`` with what min-p drops set to -inf: characters less likely than ``min_p``
    times the most likely one (a row's 0 keeps all: log 0 is -inf)."""
    floor = tf.reduce_max(scaled, -1, keepdims=True) + tf.math.log(min_p)[:, None]
    return tf.where(scaled < floor, -np.inf, scaled)


def sample_next(logits, rows, position):
    """Next ids ``[B]`` from ``logits [B, V]`` (float32, penalties applied: :func:`penalised`);
    ``rows`` holds ``[B]`` tensors, one value per row, named as
    :data:`~charlm.use.loop.ROW_DTYPES` (``seed`` and ``index``: int64, see
    :func:`uniforms`); ``position`` ``[B]``, int64, the characters each row has drawn.

    Written for XLA: the k-th largest logit and the nucleus are read from the :data:`PARTIAL`
    largest logits in order (XLA needs a static k for ``top_k``; all are sorted only when
    some row's filters reach past those), and the categorical draw inverts the cumulative
    distribution at one uniform per row (XLA has no kernel for ``stateless_categorical``
    with an int64 seed). A greedy row takes the argmax and ignores its other options. The
    order: temperature, min-p, top-k, top-p."""
    greedy, top_k, top_p = rows["greedy"], rows["top_k"], rows["top_p"]

    def argmax():
        return tf.argmax(logits, -1, output_type=tf.int32)

    def sample():
        scaled = logits / tf.where(greedy, 1.0, rows["temperature"])[:, None]  # a greedy row's 0
        min_p = tf.where(greedy, 0.0, rows["min_p"])
        scaled = tf.cond(tf.reduce_any(min_p > 0), lambda: _min_p(scaled, min_p), lambda: scaled)
        scaled = tf.cond(
            tf.reduce_any(tf.logical_or(top_k > 0, top_p < 1.0)),
            lambda: _filtered(scaled, top_k, top_p),
            lambda: scaled,
        )
        # inverse CDF: one uniform per row
        cdf = tf.cumsum(tf.nn.softmax(scaled), axis=-1)
        u = uniforms(rows["seed"], rows["index"], position)[:, None] * cdf[:, -1:]
        drawn = tf.reduce_sum(tf.cast(cdf <= u, tf.int32), axis=-1)  # never a 0-probability id
        return tf.where(greedy, argmax(), drawn)

    return tf.cond(tf.reduce_all(greedy), argmax, sample)
