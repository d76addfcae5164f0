"""The compiled sampling loop and the batches of rows it runs.

:func:`compiled_loop` draws a chunk of characters per call: each id is drawn from the logits
(:func:`~charlm.use.draw.sample_next`) and fed back with the state inside one XLA-compiled
``tf.while_loop``, so nothing re-reads the window. A :class:`Batch` holds rows between calls
(logits, state, and each row's options, seed, index and position, in numpy): batches of
several calls are joined and split between calls, and a row's text depends on its own
arrays alone. :class:`Rows` is one generation's rows with their stop strings, advanced a
chunk at a time.

    >>> row_options(SamplingOptions(top_k=5, seed=3), 2)["top_k"].tolist()
    [5, 5]
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import graphs
from ..models.lm import state_specs
from ..options.sampling import SamplingOptions
from .draw import sample_next
from .stops import StopCut

CHUNK = 512  # the most characters per call of the compiled loop (its output buffer's length)


def compiled_loop(model, xla: bool = True):
    """The sampling loop of ``model``, compiled by XLA (a plain graph if not ``xla``):
    ``(logits, state, n, temperature, top_k, top_p, greedy, seed, index, position)`` -> ids
    ``[B, CHUNK]`` (the first ``n`` <= :data:`CHUNK` are the sample) and the logits and state
    after them. The options and the seed, index and position are ``[B]`` tensors, one value
    per row (their dtypes: :data:`ROW_DTYPES`); ``n`` is a scalar.

    Each id is sampled from the logits and fed back with the state inside one
    ``tf.while_loop``; the randomness of a row's i-th is ``uniforms(seed, index,
    position + i)``. XLA fuses the per-character step into a few kernels: one stream runs
    1.6-1.9x the speed of the same loop as a TensorFlow graph (BENCHMARKS.md). XLA compiles
    it once per batch size. ``charlm sample``, the server and the SavedModel export call
    this same function, so they all sample the same text."""

    def loop(logits, state, n, temperature, top_k, top_p, greedy, seed, index, position):
        out = tf.TensorArray(tf.int32, size=CHUNK, element_shape=tf.TensorShape([None]))

        def body(i, logits, state, out):
            nxt = sample_next(
                logits,
                temperature,
                top_k,
                top_p,
                greedy,
                seed,
                index,
                position + tf.cast(i, tf.int64),
            )
            new_logits, state = model.step(nxt, state)
            return i + 1, new_logits, state, out.write(i, nxt)

        _, logits, state, out = tf.while_loop(lambda i, *_: i < n, body, (0, logits, state, out))
        return tf.transpose(out.stack()), logits, state

    # one trace for every batch size (XLA still compiles each size it is called with)
    specs = [
        tf.TensorSpec([None, model.vocab_size], tf.float32),
        state_specs(model),
        tf.TensorSpec([], tf.int32),
        *(tf.TensorSpec([None], dtype) for dtype in ROW_DTYPES.values()),
    ]
    return graphs.function(loop, input_signature=specs, jit_compile=xla)


def sample_loop(loop, logits, state, length, temperature, top_k, top_p, greedy, seed):
    """``length`` ids per row ``[B, length]``, in-graph: calls of ``loop`` (from
    :func:`compiled_loop`) of :data:`CHUNK` characters each, with the scalar options and
    seed given to every row and the rows indexed 0..B-1 (as ``charlm sample`` indexes the
    samples of one call). What the SavedModel export traces; ``Generator.stream`` calls the
    same loop from Python, and where the calls split the text changes nothing (each id's
    seed is its position)."""
    chunks = (length + CHUNK - 1) // CHUNK
    parts = tf.TensorArray(tf.int32, size=chunks, element_shape=tf.TensorShape([None, CHUNK]))
    rows = tf.shape(logits)[0]
    options = [tf.fill([rows], x) for x in (temperature, top_k, top_p, greedy, seed)]
    index = tf.range(tf.cast(rows, tf.int64))

    def body(c, logits, state, parts):
        n = tf.minimum(CHUNK, length - c * CHUNK)
        position = tf.fill([rows], tf.cast(c * CHUNK, tf.int64))
        ids, logits, state = loop(logits, state, n, *options, index, position)
        return c + 1, logits, state, parts.write(c, ids)

    _, _, _, parts = tf.while_loop(lambda c, *_: c < chunks, body, (0, logits, state, parts))
    ids = tf.cond(
        chunks > 0,  # an empty array cannot stack
        lambda: tf.reshape(tf.transpose(parts.stack(), [1, 0, 2]), [rows, -1]),
        lambda: tf.zeros([rows, 0], tf.int32),
    )
    return ids[:, :length]


# the per-row arrays of the compiled loop, in its argument order after n, and their dtypes
ROW_DTYPES = {
    "temperature": np.float32,
    "top_k": np.int32,
    "top_p": np.float32,
    "greedy": np.bool_,
    "seed": np.int64,
    "index": np.int64,
    "position": np.int64,
}
PAD_ROW = dict(temperature=1.0, top_k=0, top_p=1.0, greedy=True, seed=0, index=0, position=0)


def row_options(options: SamplingOptions, rows: int) -> dict[str, np.ndarray]:
    """The per-row arrays of the ``rows`` samples of one call with ``options`` (its seed
    set): indexed 0..rows-1, at position 0; a greedy call's temperature and filters are off.

    >>> row_options(SamplingOptions(temperature=0.5, seed=9), 2)["index"].tolist()
    [0, 1]
    """
    g = options.is_greedy
    values = dict(
        temperature=1.0 if g else options.temperature,
        top_k=0 if g else options.top_k,
        top_p=1.0 if g else options.top_p,
        greedy=g,
        seed=options.seed,
        position=0,
    )
    arrays: dict[str, np.ndarray] = {k: np.full(rows, v, ROW_DTYPES[k]) for k, v in values.items()}
    arrays["index"] = np.arange(rows, dtype=np.int64)
    return {k: arrays[k] for k in ROW_DTYPES}


class Batch:
    """Rows that advance together through the compiled loop: the logits ``[B, V]`` and the
    state after each row's text so far, and each row's options, seed, index and position
    (:data:`ROW_DTYPES`), all numpy arrays. Batches of several calls are joined
    (:meth:`join`) and split (:meth:`part`) between calls of the loop: a row's text depends
    on its own arrays alone, so it is the same in any batch."""

    def __init__(self, logits, state, rows: dict[str, np.ndarray]):
        self.logits, self.state, self.rows = logits, list(state), rows

    def __len__(self) -> int:
        return len(self.logits)

    @classmethod
    def join(cls, batches: list[Batch]) -> Batch:
        return cls(
            np.concatenate([b.logits for b in batches]),
            [np.concatenate(parts) for parts in zip(*(b.state for b in batches), strict=True)],
            {k: np.concatenate([b.rows[k] for b in batches]) for k in ROW_DTYPES},
        )

    def part(self, start: int, stop: int) -> Batch:
        """Rows ``start`` to ``stop`` (numpy views)."""
        return Batch(
            self.logits[start:stop],
            [s[start:stop] for s in self.state],
            {k: v[start:stop] for k, v in self.rows.items()},
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

    def run(self, loop, n: int, size: int = 0) -> np.ndarray:
        """The next ``n`` ids of every row, ``[B, n]``, from calls of ``loop``
        (:func:`compiled_loop`) of up to :data:`CHUNK` each, the batch padded to ``size``
        rows; the logits, state and positions move on by ``n``."""
        batch = self.padded(size)
        logits, state = tf.constant(batch.logits), [tf.constant(s) for s in batch.state]
        args = {k: tf.constant(v) for k, v in batch.rows.items()}
        pieces = []
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            args["position"] = tf.constant(batch.rows["position"] + start)
            ids, logits, state = loop(logits, state, tf.constant(m), *args.values())
            pieces.append(ids.numpy()[: len(self), :m])
        self.logits = logits.numpy()[: len(self)]
        self.state = [s.numpy()[: len(self)] for s in state]
        self.rows = {**self.rows, "position": self.rows["position"] + n}
        return np.concatenate(pieces, axis=1) if pieces else np.zeros((len(self), 0), np.int32)


class Rows:
    """The rows of one generation, advanced a chunk at a time: their :class:`Batch`, the
    options, and each row's stop-string cut. :meth:`advance` returns each row's new text
    (a server runs the batch itself, joined with other calls' rows, and hands the ids to
    :meth:`take`); :attr:`finish_reasons` says, once :attr:`done`, ``"stop"`` or
    ``"length"``. ``gen``: the :class:`~charlm.use.generate.Generator` whose loop and
    vocabulary they use."""

    def __init__(self, gen, prefixes: list[str], options: SamplingOptions, logits, state):
        self.gen, self.prefixes, self.options = gen, prefixes, options
        self.batch = Batch(
            np.asarray(logits), [np.asarray(s) for s in state], row_options(options, len(prefixes))
        )
        self.position = 0
        self.cuts = [StopCut(options.stop) for _ in prefixes]

    @property
    def done(self) -> bool:
        return self.position >= self.options.length or all(c.stopped for c in self.cuts)

    @property
    def finish_reasons(self) -> list[str]:
        return ["stop" if c.stopped else "length" for c in self.cuts]

    def advance(self, chunk: int) -> list[str]:
        """The next ``chunk`` characters of every row (fewer where a row stops)."""
        n = min(chunk, self.options.length - self.position)
        return self.take(self.batch.run(self.gen.loop, n))

    def take(self, ids: np.ndarray) -> list[str]:
        """Each row's new text from its next ids ``[B, n]``: those past the length are
        dropped, and a row's text ends before its first stop string."""
        n = min(ids.shape[1], self.options.length - self.position)
        self.position += n
        texts = [self.gen.vocab.decode(row) for row in ids[:, :n]]
        out = [cut.feed(text) for cut, text in zip(self.cuts, texts, strict=True)]
        if self.done:
            out = [o + cut.flush() for o, cut in zip(out, self.cuts, strict=True)]
        return out
