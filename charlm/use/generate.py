"""Generating text: prefix warm-up in one call, then an in-graph sampling loop.

The prefix (every row of the batch) is fed to the model in one call; the loop that picks a
character and feeds it back runs inside one XLA-compiled ``tf.function`` as a
``tf.while_loop`` carrying the hidden state, so nothing re-reads the window and N samples
cost about one. Text can be streamed: the loop runs a chunk of characters per call and hands
each chunk back.

Sampling the next character from logits (all in-graph, :func:`sample_next`):
temperature divides the logits; top-k keeps the k largest; top-p (nucleus) keeps the
smallest set whose probability reaches p; greedy takes the argmax. Randomness is
``tf.random.stateless_uniform`` seeded by ``(seed, position)``, so a seed gives the same
text however the output is chunked.

    >>> from ..config import Config
    >>> from ..models.lm import build_model
    >>> from ..text.vocab import Vocab
    >>> vocab = Vocab.from_text("分開 春眠不覺曉")
    >>> gen = Generator(build_model(Config(model="gru", layers=1, units=8), len(vocab)), vocab)
    >>> texts = gen.generate(["分開"], length=20, num_samples=2, top_p=0.9, seed=1)
    >>> [(t[:2], len(t)) for t in texts]
    [('分開', 22), ('分開', 22)]
    >>> gen.generate(["分開"], length=20, num_samples=2, top_p=0.9, seed=1) == texts
    True
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from ..errors import CharLMError
from ..sampling import SamplingOptions, StopCut


CHUNK = 512  # the most characters per call of the compiled loop (its output buffer's length)
PARTIAL = 256  # top-k and top-p look at this many largest logits, and at all only if need be


def sample_next(logits, temperature, top_k, top_p, greedy, seed):
    """Next ids ``[B]`` from ``logits [B, V]`` (float32); ``seed`` is a shape-[2] int tensor.

    Written for XLA: the k-th largest logit and the nucleus are read from the :data:`PARTIAL`
    largest logits in order (XLA needs a static k for ``top_k``; all are sorted only when
    the filters reach past those), and the categorical draw inverts the cumulative
    distribution at one stateless uniform per row (XLA has no kernel for
    ``stateless_categorical`` with an int64 seed)."""
    def cut(scaled, srt):
        """Top-k's and top-p's thresholds ``[B, 1]`` from ``srt``, the largest of ``scaled``
        in descending order (all of them or the first few), and whether the nucleus ends
        within ``srt``."""
        use_k = tf.logical_and(top_k > 0, top_k < tf.shape(scaled)[-1])
        k = tf.clip_by_value(top_k, 1, tf.shape(srt)[-1])  # past srt: the caller sorts all
        kth = tf.where(use_k, tf.gather(srt, [k - 1], axis=1), -np.inf)
        srt = tf.where(srt < kth, -np.inf, srt)  # what top-k keeps, then the nucleus of that
        kept = tf.where(scaled < kth, -np.inf, scaled)
        probs = tf.exp(srt - tf.reduce_logsumexp(kept, axis=-1, keepdims=True))
        mass_before = tf.cumsum(probs, axis=-1, exclusive=True)
        threshold = tf.reduce_min(tf.where(mass_before < top_p, srt, np.inf), axis=-1,
                                  keepdims=True)
        reached = tf.reduce_all(mass_before[:, -1] + probs[:, -1] >= top_p)
        return kth, tf.where(top_p < 1.0, threshold, -np.inf), reached

    def filtered(scaled):
        # XLA sorts thousands of logits slowly (~1 ms for 6,000 on a CPU): read the PARTIAL
        # largest, and sort them all only when top-k or the nucleus reaches past those
        vocab = scaled.shape[-1]

        def full():
            return cut(scaled, tf.sort(scaled, direction="DESCENDING"))[:2]

        if vocab is None or vocab <= PARTIAL:
            kth, threshold = full()
        else:
            kth, threshold, reached = cut(scaled, tf.math.top_k(scaled, k=PARTIAL).values)
            enough = tf.logical_and(tf.logical_or(top_k <= PARTIAL, top_k >= vocab),
                                    tf.logical_or(top_p >= 1.0, reached))
            kth, threshold = tf.cond(enough, lambda: (kth, threshold), full)
        return tf.where(scaled < tf.maximum(kth, threshold), -np.inf, scaled)

    def sample():
        scaled = logits / temperature
        scaled = tf.cond(tf.logical_or(top_k > 0, top_p < 1.0), lambda: filtered(scaled),
                         lambda: scaled)
        # inverse CDF: one uniform per row (XLA's CPU generator is slow per number, ~1 µs)
        cdf = tf.cumsum(tf.nn.softmax(scaled), axis=-1)
        u = tf.random.stateless_uniform([tf.shape(scaled)[0], 1], seed) * cdf[:, -1:]
        return tf.reduce_sum(tf.cast(cdf <= u, tf.int32), axis=-1)  # never a 0-probability id

    return tf.cond(greedy, lambda: tf.argmax(logits, -1, output_type=tf.int32), sample)


def compiled_loop(model, xla: bool = True):
    """The sampling loop of ``model``, compiled by XLA (a plain graph if not ``xla``):
    ``(logits, state, n, temperature, top_k, top_p, greedy, seed, position)`` -> ids
    ``[B, CHUNK]`` (the first ``n`` <= :data:`CHUNK` are the sample) and the logits and state
    after them.

    Each id is sampled from the logits and fed back with the state inside one
    ``tf.while_loop``; the randomness of the i-th is seeded by ``(seed, position + i)``.
    XLA fuses the per-character step into a few kernels: one stream runs 1.6-1.9x the speed
    of the same loop as a TensorFlow graph (BENCHMARKS.md). ``charlm sample`` and the
    SavedModel export call this same function, so an export samples what ``charlm sample``
    samples."""
    def loop(logits, state, n, temperature, top_k, top_p, greedy, seed, position):
        out = tf.TensorArray(tf.int32, size=CHUNK, element_shape=tf.TensorShape([None]))

        def body(i, logits, state, out):
            step_seed = tf.stack([seed, position + tf.cast(i, tf.int64)])
            nxt = sample_next(logits, temperature, top_k, top_p, greedy, step_seed)
            new_logits, state = model.step(nxt, state)
            return i + 1, new_logits, state, out.write(i, nxt)

        _, logits, state, out = tf.while_loop(lambda i, *_: i < n, body,
                                              (0, logits, state, out))
        return tf.transpose(out.stack()), logits, state

    return tf.function(loop, jit_compile=xla, reduce_retracing=True)


def sample_loop(loop, logits, state, length, temperature, top_k, top_p, greedy, seed):
    """``length`` ids per row ``[B, length]``, in-graph: calls of ``loop`` (from
    :func:`compiled_loop`) of :data:`CHUNK` characters each. What the SavedModel export
    traces; ``Generator.stream`` calls the same loop from Python, and where the calls split
    the text changes nothing (each id's seed is its position)."""
    chunks = (length + CHUNK - 1) // CHUNK
    parts = tf.TensorArray(tf.int32, size=chunks, element_shape=tf.TensorShape([None, CHUNK]))

    def body(c, logits, state, parts):
        n = tf.minimum(CHUNK, length - c * CHUNK)
        ids, logits, state = loop(logits, state, n, temperature, top_k, top_p, greedy, seed,
                                  tf.cast(c * CHUNK, tf.int64))
        return c + 1, logits, state, parts.write(c, ids)

    _, _, _, parts = tf.while_loop(lambda c, *_: c < chunks, body, (0, logits, state, parts))
    rows = tf.shape(logits)[0]
    ids = tf.cond(chunks > 0,  # an empty array cannot stack
                  lambda: tf.reshape(tf.transpose(parts.stack(), [1, 0, 2]), [rows, -1]),
                  lambda: tf.zeros([rows, 0], tf.int32))
    return ids[:, :length]


class Generator:
    """Batched, stateful, in-graph text generation with one model and its vocabulary."""

    def __init__(self, model, vocab, chunk: int = 64, xla: bool = True):
        self.model = model
        self.vocab = vocab
        self.chunk = chunk
        self.warm = tf.function(self._warm, reduce_retracing=True)
        self._loop = compiled_loop(model, xla)  # xla=False: for comparison (benchmarks)

    @property
    def default_prefix(self) -> str:
        """The prefix of a sample asked for without one: the vocabulary's first character."""
        return self.vocab.chars[1]

    def _warm(self, ids):
        """Feed ``ids [B, T]`` from a zero state in one call: the last logits and the state."""
        state = self.model.initial_state(tf.shape(ids)[0])
        logits, state = self.model(ids, state, training=False)
        return logits[:, -1], state

    def encode_prefixes(self, prefixes: list[str], warn=None) -> list[np.ndarray]:
        """Ids for each prefix; unknown characters warn (naming them) and map to ``<unk>``."""
        encoded = []
        for p in prefixes:
            if not p:
                raise CharLMError("a prefix must not be empty; give at least one character")
            unknown = self.vocab.unknown_chars(p)
            if unknown and warn:
                shown = ", ".join(repr(c) for c in unknown[:10])
                warn(f"warning: the prefix {p!r} has characters the model never saw ({shown}); "
                     "they are read as <unk>")
            encoded.append(self.vocab.encode(p).astype(np.int32))
        return encoded

    def stream(self, prefixes: list[str] | None, length: int | None = None, *,
               options: SamplingOptions | None = None, num_samples: int = 1, warn=None,
               chunk: int | None = None, **changes) -> Iterator[list[str]]:
        """Yield, chunk by chunk, the new text of every sample (``num_samples`` per prefix;
        no prefixes: one from the vocabulary's first character).

        ``options`` (:class:`~charlm.sampling.SamplingOptions`), with ``length`` and any of
        its fields given as keywords (``temperature=0.5``) on top. The first yield is the
        prefixes themselves, so the concatenated output of a sample starts with its prefix.
        A row that meets a stop string ends there (the stop string left out); generation
        ends when every row has.
        """
        options = SamplingOptions.of(options, length=length, **changes)
        rows = self.start(prefixes, options, num_samples, warn)
        yield rows.prefixes
        while not rows.done:
            yield rows.advance(chunk or self.chunk)

    def start(self, prefixes, options: SamplingOptions, num_samples: int = 1, warn=None):
        """The rows of one call, warmed up on their prefixes: :class:`Rows`."""
        if not (isinstance(num_samples, int) and num_samples >= 1):
            raise CharLMError(f"--num-samples must be at least 1, not {num_samples}")
        if options.seed is None:
            options = options.replace(seed=int.from_bytes(os.urandom(4), "little"))
        prefixes = list(prefixes or [self.default_prefix])
        encoded = self.encode_prefixes(prefixes, warn)
        logits, state = self.warm_up(encoded, num_samples)
        return Rows(self, [p for p in prefixes for _ in range(num_samples)], options,
                    logits, state)

    def warm_up(self, encoded: list[np.ndarray], copies: int = 1):
        """The logits and state after each prefix, ``copies`` rows per prefix, in order.

        Each distinct prefix is fed once, as one row, and its state is repeated for every row
        that starts with it: 16 samples of one prefix cost one prefix's warm-up.
        """
        distinct = {}
        for ids in encoded:
            key = ids.tobytes()
            if key not in distinct:
                logits, state = self.warm(tf.constant(ids[None, :]))
                distinct[key] = [logits.numpy(), *(s.numpy() for s in state)]
        # numpy, not eager TensorFlow ops: a few ms less per call, the same bits
        order = {key: i for i, key in enumerate(distinct)}
        rows = np.repeat([order[ids.tobytes()] for ids in encoded], copies)
        logits, *state = (tf.constant(np.concatenate(parts)[rows])
                          for parts in zip(*distinct.values(), strict=True))
        return logits, state

    def generate(self, prefixes: list[str] | str | None, length: int | None = None,
                 **kwargs) -> list[str]:
        """Whole samples (each starting with its prefix); see :meth:`stream` for the options."""
        if isinstance(prefixes, str):
            prefixes = [prefixes]
        kwargs.setdefault("chunk", max(1, length or SamplingOptions().length))
        parts = None
        for piece in self.stream(prefixes, length, **kwargs):
            parts = piece if parts is None else [a + b for a, b in zip(parts, piece, strict=True)]
        return parts


class Rows:
    """The rows of one generation, advanced a chunk at a time: the model's logits and state,
    the options, and each row's stop-string cut. :meth:`advance` returns each row's new
    text; :attr:`finish_reasons` says, once :attr:`done`, ``"stop"`` or ``"length"``."""

    def __init__(self, gen: Generator, prefixes: list[str], options: SamplingOptions,
                 logits, state):
        self.gen, self.prefixes, self.options = gen, prefixes, options
        self.logits, self.state, self.position = logits, state, 0
        self.cuts = [StopCut(options.stop) for _ in prefixes]
        o = options if not options.is_greedy else SamplingOptions(greedy=True, seed=options.seed)
        self.args = (tf.constant(float(o.temperature or 1.0)), tf.constant(int(o.top_k)),
                     tf.constant(float(o.top_p)), tf.constant(bool(o.is_greedy)),
                     tf.constant(int(o.seed), tf.int64))

    @property
    def done(self) -> bool:
        return self.position >= self.options.length or all(c.stopped for c in self.cuts)

    @property
    def finish_reasons(self) -> list[str]:
        return ["stop" if c.stopped else "length" for c in self.cuts]

    def advance(self, chunk: int) -> list[str]:
        """The next ``chunk`` characters of every row (fewer where a row stops)."""
        end, pieces = min(self.position + chunk, self.options.length), []
        for start in range(self.position, end, CHUNK):
            n = min(CHUNK, end - start)
            ids, self.logits, self.state = self.gen._loop(
                self.logits, self.state, tf.constant(n), *self.args, tf.constant(start, tf.int64))
            pieces.append(ids.numpy()[:, :n])
        self.position = end
        texts = [self.gen.vocab.decode(row) for row in np.concatenate(pieces, axis=1)]
        out = [cut.feed(text) for cut, text in zip(self.cuts, texts, strict=True)]
        if self.done:
            out = [o + cut.flush() for o, cut in zip(out, self.cuts, strict=True)]
        return out
