"""Generating text: prefix warm-up in one call, then an in-graph sampling loop.

The prefix (every row of the batch) is fed to the model in one call; the loop that picks a
character and feeds it back runs inside one XLA-compiled ``tf.function`` as a
``tf.while_loop`` carrying the hidden state, so nothing re-reads the window and N samples
cost about one. Text can be streamed: the loop runs a chunk of characters per call and hands
each chunk back.

Sampling the next character from logits (all in-graph, :func:`sample_next`):
temperature divides the logits; top-k keeps the k largest; top-p (nucleus) keeps the
smallest set whose probability reaches p; greedy takes the argmax. Every option is a
per-row tensor, so rows of different requests share one compiled step (the server's batch).
A row's randomness is a counter-based hash of ``(seed, index, position)`` (:func:`uniforms`):
its request's seed, the row's index among its request's samples and its own character
count. So a seed gives the same text however the output is chunked and whatever other rows
share the batch.

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

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from ..errors import CharLMError
from ..sampling import SamplingOptions, StopCut, check_prefixes

CHUNK = 512  # the most characters per call of the compiled loop (its output buffer's length)
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


def sample_next(logits, temperature, top_k, top_p, greedy, seed, index, position):
    """Next ids ``[B]`` from ``logits [B, V]`` (float32); every other argument is a ``[B]``
    tensor, one value per row (``seed``, ``index``, ``position``: int64, see :func:`uniforms`).

    Written for XLA: the k-th largest logit and the nucleus are read from the :data:`PARTIAL`
    largest logits in order (XLA needs a static k for ``top_k``; all are sorted only when
    some row's filters reach past those), and the categorical draw inverts the cumulative
    distribution at one uniform per row (XLA has no kernel for ``stateless_categorical``
    with an int64 seed). A greedy row takes the argmax and ignores its other options."""

    def cut(scaled, srt):
        """Top-k's and top-p's thresholds ``[B, 1]`` from ``srt``, the largest of ``scaled``
        in descending order (all of them or the first few), and whether each row's nucleus
        ends within ``srt``."""
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
            enough = tf.reduce_all(
                tf.logical_and(
                    tf.logical_or(top_k <= PARTIAL, top_k >= vocab),
                    tf.logical_or(top_p >= 1.0, reached),
                )
            )
            kth, threshold = tf.cond(enough, lambda: (kth, threshold), full)
        return tf.where(scaled < tf.maximum(kth, threshold), -np.inf, scaled)

    def sample():
        scaled = logits / tf.where(greedy, 1.0, temperature)[:, None]  # a greedy row's 0 too
        scaled = tf.cond(
            tf.reduce_any(tf.logical_or(top_k > 0, top_p < 1.0)),
            lambda: filtered(scaled),
            lambda: scaled,
        )
        # inverse CDF: one uniform per row
        cdf = tf.cumsum(tf.nn.softmax(scaled), axis=-1)
        u = uniforms(seed, index, position)[:, None] * cdf[:, -1:]
        drawn = tf.reduce_sum(tf.cast(cdf <= u, tf.int32), axis=-1)  # never a 0-probability id
        return tf.where(greedy, argmax(), drawn)

    def argmax():
        return tf.argmax(logits, -1, output_type=tf.int32)

    return tf.cond(tf.reduce_all(greedy), argmax, sample)


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

    return tf.function(loop, jit_compile=xla, reduce_retracing=True)


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
    arrays = {k: np.full(rows, v, ROW_DTYPES[k]) for k, v in values.items()}
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


class Generator:
    """Batched, stateful, in-graph text generation with one model and its vocabulary."""

    def __init__(self, model, vocab, chunk: int = 64, xla: bool = True):
        self.model = model
        self.vocab = vocab
        self.chunk = chunk
        self.warm = tf.function(self._warm, reduce_retracing=True)
        self._loop = compiled_loop(model, xla)  # xla=False: for comparison (benchmarks)

    @property
    def loop(self):
        """The compiled sampling loop (:func:`compiled_loop`) that every batch runs."""
        return self._loop

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
        check_prefixes(prefixes)
        encoded = []
        for p in prefixes:
            unknown = self.vocab.unknown_chars(p)
            if unknown and warn:
                shown = ", ".join(repr(c) for c in unknown[:10])
                warn(
                    f"warning: the prefix {p!r} has characters the model never saw ({shown}); "
                    "they are read as <unk>"
                )
            encoded.append(self.vocab.encode(p).astype(np.int32))
        return encoded

    def stream(
        self,
        prefixes: list[str] | None,
        length: int | None = None,
        *,
        options: SamplingOptions | None = None,
        num_samples: int = 1,
        warn=None,
        chunk: int | None = None,
        **changes,
    ) -> Iterator[list[str]]:
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

    def start(
        self,
        prefixes,
        options: SamplingOptions,
        num_samples: int = 1,
        warn=None,
        warmed: dict | None = None,
    ):
        """The rows of one call, warmed up on their prefixes: :class:`Rows` (``warmed``: see
        :meth:`warm_up`)."""
        if not (isinstance(num_samples, int) and num_samples >= 1):
            raise CharLMError(f"--num-samples must be at least 1, not {num_samples}")
        options = options.seeded()
        prefixes = list(prefixes or [self.default_prefix])
        encoded = self.encode_prefixes(prefixes, warn)
        logits, state = self.warm_up(encoded, num_samples, warmed)
        return Rows(self, [p for p in prefixes for _ in range(num_samples)], options, logits, state)

    def warm_up(self, encoded: list[np.ndarray], copies: int = 1, warmed: dict | None = None):
        """The logits and state (numpy) after each prefix, ``copies`` rows per prefix, in order.

        Each distinct prefix is fed once, as one row, and its state is repeated for every row
        that starts with it: 16 samples of one prefix cost one prefix's warm-up. ``warmed``,
        a dict kept by the caller, carries the prefixes fed across calls (a server's requests
        that arrive together with the same prompt).
        """
        warmed = {} if warmed is None else warmed
        for ids in encoded:
            key = ids.tobytes()
            if key not in warmed:
                logits, state = self.warm(tf.constant(ids[None, :]))
                warmed[key] = [logits.numpy(), *(s.numpy() for s in state)]
        # numpy, not eager TensorFlow ops: a few ms less per call, the same bits
        keys = list(dict.fromkeys(ids.tobytes() for ids in encoded))
        order = {key: i for i, key in enumerate(keys)}
        rows = np.repeat([order[ids.tobytes()] for ids in encoded], copies)
        logits, *state = (
            np.concatenate(parts)[rows] for parts in zip(*(warmed[k] for k in keys), strict=True)
        )
        return logits, state

    def generate(
        self, prefixes: list[str] | str | None, length: int | None = None, **kwargs
    ) -> list[str]:
        """Whole samples (each starting with its prefix); see :meth:`stream` for the options."""
        if isinstance(prefixes, str):
            prefixes = [prefixes]
        kwargs.setdefault("chunk", max(1, length or SamplingOptions().length))
        parts = None
        for piece in self.stream(prefixes, length, **kwargs):
            parts = piece if parts is None else [a + b for a, b in zip(parts, piece, strict=True)]
        return parts


class Rows:
    """The rows of one generation, advanced a chunk at a time: their :class:`Batch`, the
    options, and each row's stop-string cut. :meth:`advance` returns each row's new text
    (a server runs the batch itself, joined with other calls' rows, and hands the ids to
    :meth:`take`); :attr:`finish_reasons` says, once :attr:`done`, ``"stop"`` or
    ``"length"``."""

    def __init__(
        self, gen: Generator, prefixes: list[str], options: SamplingOptions, logits, state
    ):
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
