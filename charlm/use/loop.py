"""The compiled sampling loop and the batches of rows it runs.

:func:`compiled_loop` draws a chunk of characters per call: each id is drawn from the logits
(:func:`~charlm.use.draw.sample_next`) and fed back with the state inside one XLA-compiled
``tf.while_loop``, so nothing re-reads the window. A :class:`Batch` holds rows between calls
(logits, state, window of recent characters, and each row's options, seed, index and
position, in numpy): batches of several calls are joined and split between calls, and a
row's text depends on its own arrays alone (:mod:`charlm.use.rows` advances one
generation's rows a chunk at a time).

    >>> row_options(SamplingOptions(top_k=5, seed=3), 2)["top_k"].tolist()
    [5, 5]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .. import graphs
from ..models.lm import state_specs
from ..options.sampling import MAX_LOGPROBS, PENALTY_WINDOW, SamplingOptions
from .draw import penalised, sample_next

CHUNK = 512  # the most characters per call of the compiled loop (its output buffer's length)


TOP_LOGPROBS = MAX_LOGPROBS  # the alternatives the loop scores when asked
NO_CHAR = -1  # an empty place of a row's window of recent characters


def compiled_loop(model, xla: bool = True):
    """The sampling loop of ``model``, compiled by XLA (a plain graph if not ``xla``):
    ``(logits, state, recent, n, scored, rows)`` -> ``(ids, scores, logits, state,
    recent)``. ``rows`` maps the names of :data:`ROW_DTYPES` to ``[B]`` tensors, one value
    per row (its options, seed, index and position); ``recent [B, W]`` holds each row's last
    ``W`` = :data:`~charlm.options.sampling.PENALTY_WINDOW` characters generated (ids,
    :data:`NO_CHAR` where it has fewer), what its penalties count; ``n`` (<= :data:`CHUNK`) and
    ``scored`` are scalars. ``ids [B, CHUNK]``: the first ``n`` are the sample; ``scores``: with
    ``scored``, each drawn character's log-probability ``[B, CHUNK]`` and the
    :data:`TOP_LOGPROBS` likeliest characters and theirs ``[B, CHUNK, TOP_LOGPROBS]``, all from
    the model's own distribution (before penalties, temperature and filters, as vLLM reports
    them and ``charlm eval`` scores); zeros without.

    Each id is sampled from the logits and fed back with the state inside one
    ``tf.while_loop``; the randomness of a row's i-th is ``uniforms(seed, index,
    position + i)``. XLA fuses the per-character step into a few kernels: one stream runs
    1.6-1.9x the speed of the same loop as a TensorFlow graph (BENCHMARKS.md), once per
    batch size. ``charlm sample``, the server and the export all call it: the same text."""
    vocab = model.vocab_size

    def loop(logits, state, recent, n, scored, rows):
        def body(i, logits, state, recent, counts, outs):
            position = rows["position"] + tf.cast(i, tf.int64)
            nxt = sample_next(penalised(logits, counts, rows), rows, position)
            scores = tf.cond(scored, lambda: scores_of(logits, nxt), lambda: _noscores_of(logits))
            recent, counts = _remember(recent, counts, nxt, position)
            new_logits, state = model.step(nxt, state)
            outs = [o.write(i, x) for o, x in zip(outs, (nxt, *scores), strict=True)]
            return i + 1, new_logits, state, recent, counts, outs

        counts = tf.reduce_sum(tf.one_hot(recent, vocab), axis=1)  # NO_CHAR: a row of zeros
        outs = [
            tf.TensorArray(dtype, size=CHUNK, element_shape=tf.TensorShape(shape))
            for dtype, shape in _OUTS
        ]
        _, logits, state, recent, _, outs = tf.while_loop(
            lambda i, *_: i < n, body, (0, logits, state, recent, counts, outs)
        )
        ids, *scores = (_batch_major(o.stack()) for o in outs)
        return ids, scores, logits, state, recent

    return graphs.function(loop, input_signature=_loop_specs(model), jit_compile=xla)


def _loop_specs(model) -> list:
    """The loop's input signature: one trace for every batch size (XLA still compiles each
    size it is called with)."""
    return [
        tf.TensorSpec([None, model.vocab_size], tf.float32),
        state_specs(model),
        tf.TensorSpec([None, PENALTY_WINDOW], tf.int32),
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.bool),
        {k: tf.TensorSpec([None], dtype) for k, dtype in ROW_DTYPES.items()},
    ]


# what the loop writes per character: the id, then (when scored) its log-probability and the
# likeliest characters' ids and log-probabilities
_OUTS = [
    (tf.int32, [None]),
    (tf.float32, [None]),
    (tf.int32, [None, TOP_LOGPROBS]),
    (tf.float32, [None, TOP_LOGPROBS]),
]


def _batch_major(stacked):
    """``[T, B, ...]`` -> ``[B, T, ...]``."""
    rank = len(stacked.shape)
    return tf.transpose(stacked, [1, 0, *range(2, rank)])


def scores_of(logits, ids):
    """The log-probability of ``ids [N]`` under ``logits [N, V]``, and the
    :data:`TOP_LOGPROBS` likeliest characters' ids and log-probabilities ``[N, TOP_LOGPROBS]``."""
    logp = tf.nn.log_softmax(logits)
    k = min(TOP_LOGPROBS, logp.shape[-1])  # a vocabulary of fewer: the rest padded
    top = tf.math.top_k(logp, k=k)
    pad = [[0, 0], [0, TOP_LOGPROBS - k]]
    return (
        tf.gather(logp, ids, batch_dims=1),
        tf.pad(top.indices, pad),
        tf.pad(top.values, pad, constant_values=-np.inf),
    )


def _noscores_of(logits):
    rows = tf.shape(logits)[0]
    return (
        tf.zeros([rows]),
        tf.zeros([rows, TOP_LOGPROBS], tf.int32),
        tf.zeros([rows, TOP_LOGPROBS]),
    )


def _remember(recent, counts, ids, position):
    """The window of recent characters and its counts once ``ids`` are drawn at
    ``position``: each row's window is a ring, its slot ``position % W``."""
    width = recent.shape[-1]
    slot = tf.cast(position % width, tf.int32)[:, None] == tf.range(width)[None, :]
    old = tf.reduce_max(tf.where(slot, recent, NO_CHAR), axis=1)
    vocab = counts.shape[-1]
    counts = counts + tf.one_hot(ids, vocab) - tf.one_hot(old, vocab)
    return tf.where(slot, ids[:, None], recent), counts


def sample_loop(loop, logits, state, length, options):
    """``length`` ids per row ``[B, length]``, in-graph: calls of ``loop`` (from
    :func:`compiled_loop`) of :data:`CHUNK` characters each, with the scalar ``options``
    (a dict of :data:`ROW_DTYPES`' options: all but ``index`` and ``position``) given to
    every row and the rows indexed 0..B-1 (as ``charlm sample`` indexes the samples of one
    call). What the SavedModel export traces; ``Generator.stream`` calls the same loop from
    Python, and where the calls split the text changes nothing (each id's seed is its
    position)."""
    chunks = (length + CHUNK - 1) // CHUNK
    parts = tf.TensorArray(tf.int32, size=chunks, element_shape=tf.TensorShape([None, CHUNK]))
    rows = tf.shape(logits)[0]
    fixed = {
        k: tf.fill([rows], tf.cast(options[k], dt)) for k, dt in ROW_DTYPES.items() if k in options
    }
    fixed["index"] = tf.range(tf.cast(rows, tf.int64))
    recent = tf.fill([rows, PENALTY_WINDOW], NO_CHAR)

    def body(c, logits, state, recent, parts):
        n = tf.minimum(CHUNK, length - c * CHUNK)
        position = tf.fill([rows], tf.cast(c * CHUNK, tf.int64))
        ids, _, logits, state, recent = loop(
            logits, state, recent, n, False, {**fixed, "position": position}
        )
        return c + 1, logits, state, recent, parts.write(c, ids)

    _, _, _, _, parts = tf.while_loop(
        lambda c, *_: c < chunks, body, (0, logits, state, recent, parts)
    )
    ids = tf.cond(
        chunks > 0,  # an empty array cannot stack
        lambda: tf.reshape(tf.transpose(parts.stack(), [1, 0, 2]), [rows, -1]),
        lambda: tf.zeros([rows, 0], tf.int32),
    )
    return ids[:, :length]


# the per-row arrays of the compiled loop and their dtypes: the sampling options, then each
# row's seed, its index among its call's samples and its position (characters drawn so far)
ROW_DTYPES = {
    "temperature": np.float32,
    "top_k": np.int32,
    "top_p": np.float32,
    "min_p": np.float32,
    "repetition_penalty": np.float32,
    "frequency_penalty": np.float32,
    "presence_penalty": np.float32,
    "greedy": np.bool_,
    "seed": np.int64,
    "index": np.int64,
    "position": np.int64,
}
PAD_ROW = dict(
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    min_p=0.0,
    repetition_penalty=1.0,
    frequency_penalty=0.0,
    presence_penalty=0.0,
    greedy=True,
    seed=0,
    index=0,
    position=0,
)


def row_options(options: SamplingOptions, rows: int) -> dict[str, np.ndarray]:
    """The per-row arrays of the ``rows`` samples of one call with ``options`` (its seed
    set): indexed 0..rows-1, at position 0; a greedy call's temperature and filters are off
    (its penalties stay: they change which character is likeliest).

    >>> row_options(SamplingOptions(temperature=0.5, seed=9), 2)["index"].tolist()
    [0, 1]
    """
    g = options.is_greedy
    values = {k: getattr(options, k) for k in PAD_ROW if hasattr(options, k)}
    if g:
        values.update(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
    values.update(greedy=g, position=0)
    arrays: dict[str, np.ndarray] = {k: np.full(rows, v, ROW_DTYPES[k]) for k, v in values.items()}
    arrays["index"] = np.arange(rows, dtype=np.int64)
    return {k: arrays[k] for k in ROW_DTYPES}


@dataclass
class Drawn:
    """What a call of the loop drew for each row: ``ids [B, n]`` and, when scored, each
    character's log-probability ``[B, n]`` and the likeliest characters' ids and
    log-probabilities ``[B, n, TOP_LOGPROBS]`` (None when not scored)."""

    ids: np.ndarray
    logprobs: np.ndarray | None = None
    top_ids: np.ndarray | None = None
    top_logprobs: np.ndarray | None = None

    def arrays(self) -> tuple:
        return (self.ids, self.logprobs, self.top_ids, self.top_logprobs)

    def part(self, start: int, stop: int) -> Drawn:
        """Rows ``start`` to ``stop``."""
        ids, *scores = (None if a is None else a[start:stop] for a in self.arrays())
        assert ids is not None
        return Drawn(ids, *scores)


class Batch:
    """Rows that advance together through the compiled loop: the logits ``[B, V]`` and the
    state after each row's text so far, its window of recent characters ``[B, W]`` (what its
    penalties count), and each row's options, seed, index and position
    (:data:`ROW_DTYPES`), all numpy arrays. Batches of several calls are joined
    (:meth:`join`) and split (:meth:`part`) between calls of the loop: a row's text depends
    on its own arrays alone, so it is the same in any batch."""

    def __init__(self, logits, state, rows: dict[str, np.ndarray], recent=None):
        self.logits, self.state, self.rows = logits, list(state), rows
        if recent is None:
            recent = np.full((len(logits), PENALTY_WINDOW), NO_CHAR, np.int32)
        self.recent = recent

    def __len__(self) -> int:
        return len(self.logits)

    @classmethod
    def join(cls, batches: list[Batch]) -> Batch:
        return cls(
            np.concatenate([b.logits for b in batches]),
            [np.concatenate(parts) for parts in zip(*(b.state for b in batches), strict=True)],
            {k: np.concatenate([b.rows[k] for b in batches]) for k in ROW_DTYPES},
            np.concatenate([b.recent for b in batches]),
        )

    def part(self, start: int, stop: int) -> Batch:
        """Rows ``start`` to ``stop`` (numpy views)."""
        return Batch(
            self.logits[start:stop],
            [s[start:stop] for s in self.state],
            {k: v[start:stop] for k, v in self.rows.items()},
            self.recent[start:stop],
        )

    def padded(self, size: int) -> Batch:
        """This batch and greedy rows of zeros up to ``size`` rows: the XLA loop is compiled
        once per batch size, so a server rounds its batch up to a few sizes."""
        pad = size - len(self)
        if pad <= 0:
            return self
        zeros = Batch(
            np.zeros((pad, *self.logits.shape[1:]), np.float32),
            [np.zeros((pad, *s.shape[1:]), np.float32) for s in self.state],
            {k: np.full(pad, PAD_ROW[k], dt) for k, dt in ROW_DTYPES.items()},
        )
        return Batch.join([self, zeros])

    def run(self, loop, n: int, size: int = 0, scored: bool = False) -> Drawn:
        """The next ``n`` characters of every row (:class:`Drawn`; ``scored``: with their
        log-probabilities), from calls of ``loop`` (:func:`compiled_loop`) of up to
        :data:`CHUNK` each, the batch padded to ``size`` rows; the logits, state, window and
        positions move on by ``n``."""
        batch = self.padded(size)
        logits, state = tf.constant(batch.logits), [tf.constant(s) for s in batch.state]
        recent, rows = tf.constant(batch.recent), dict(batch.rows)
        pieces: list[list[np.ndarray]] = []
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            rows["position"] = batch.rows["position"] + start
            ids, scores, logits, state, recent = loop(
                logits, state, recent, tf.constant(m), tf.constant(scored), rows
            )
            pieces.append([x.numpy()[: len(self), :m] for x in (ids, *scores)])
        self.logits = logits.numpy()[: len(self)]
        self.state = [s.numpy()[: len(self)] for s in state]
        self.recent = recent.numpy()[: len(self)]
        self.rows = {**self.rows, "position": self.rows["position"] + n}
        if not pieces:
            return Drawn(np.zeros((len(self), 0), np.int32))
        joined = [np.concatenate(parts, axis=1) for parts in zip(*pieces, strict=True)]
        return Drawn(*joined) if scored else Drawn(joined[0])
