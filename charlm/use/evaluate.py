"""Scoring text: mean nats per character, bits per character and perplexity.

Every character after the first is scored once, as the model's prediction from everything
before it. The text is cut into ``batch_size`` contiguous streams that run side by side; each
stream is fed ``seq_len`` characters per call with its hidden state carried from call to call
(or reset every window with ``carry_state=False``, the way nanoGPT-style figures are scored).
A transformer's state is its key/value cache of the last ``context`` characters: carried, it is
a sliding window, each character predicted from the ``context`` characters before it.
The loop over chunks is in Python; all the work on a chunk is one graph call.

    >>> from ..options.config import Config
    >>> from ..models.lm import build_model
    >>> from ..text.vocab import Vocab
    >>> vocab = Vocab.from_text("hello world")
    >>> model = build_model(Config(model="gru", layers=1, units=8), len(vocab))  # untrained
    >>> r = score(model, vocab.encode("hello world"), seq_len=4)
    >>> r["chars"], r["perplexity"] == math.exp(r["nats_per_char"])
    (10, True)
    >>> len(vocab), round(r["perplexity"])   # untrained: as unsure as a uniform guess
    (9, 9)
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from .. import graphs
from ..errors import CharLMError
from ..models.lm import state_specs


class Scorer:
    """Scores id arrays with one model; the graph is built once and reused (e.g. every validation)."""

    def __init__(self, model):
        self.model = model
        # one trace for every chunk shape: the last chunk of a text is usually shorter
        ids = tf.TensorSpec([None, None], tf.int32)
        weights = tf.TensorSpec([None, None], tf.float64)
        self._chunk = graphs.function(
            self._chunk_impl, input_signature=[ids, ids, weights, state_specs(model)]
        )

    def _chunk_impl(self, x, y, w, state):
        logits, state = self.model(x, state, training=False)
        nats = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        return tf.reduce_sum(tf.cast(nats, tf.float64) * w), state

    def __call__(
        self, ids: np.ndarray, batch_size: int = 64, seq_len: int = 256, carry_state: bool = True
    ) -> dict:
        """``{"nats_per_char", "bits_per_char", "perplexity", "chars"}`` for ``ids``.

        ``ids`` may be memory-mapped: each call reads only its chunk of every stream, so
        scoring needs memory for one chunk, not for the text."""
        ids = np.asarray(ids)  # a view of a memory map, not a copy
        n = len(ids) - 1
        if n < 1:
            raise CharLMError("the text is too short to score: it needs at least 2 characters")
        streams = max(1, min(batch_size, n // max(1, seq_len) or 1))
        length = -(-n // streams)  # ceil: stream r scores positions r·length .. (r+1)·length - 1
        zeros = self.model.initial_state(streams)
        state, total = zeros, 0.0
        for start in range(0, length, seq_len):
            if not carry_state:
                state = zeros
            x, y, w = _chunk_of_streams(ids, n, streams, length, start, seq_len)
            nats, state = self._chunk(tf.constant(x), tf.constant(y), tf.constant(w), state)
            total += float(nats)
        mean = total / n
        return {
            "nats_per_char": mean,
            "bits_per_char": mean / math.log(2),
            "perplexity": math.exp(min(mean, 700.0)),
            "chars": n,
        }


def _chunk_of_streams(ids, n: int, streams: int, length: int, start: int, seq_len: int):
    """Inputs, targets and weights ``[streams, ≤ seq_len]`` of positions ``start ..`` of every
    stream, from one read of each stream's window (its targets are the inputs moved by one);
    positions past the text (the last stream's tail) get weight 0."""
    steps = min(seq_len, length - start)
    at = (np.arange(streams) * length + start)[:, None] + np.arange(steps + 1)
    window = np.asarray(ids[np.minimum(at, n).ravel()], np.int32).reshape(at.shape)
    return window[:, :-1], window[:, 1:], (at[:, :-1] < n).astype(np.float64)


def score(model, ids, batch_size: int = 64, seq_len: int = 256, carry_state: bool = True) -> dict:
    """Score ``ids`` with ``model`` once (see :class:`Scorer`)."""
    return Scorer(model)(ids, batch_size, seq_len, carry_state)
