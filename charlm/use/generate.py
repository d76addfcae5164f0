"""Generating text with one model: the prefixes warmed up in one call each, then the
compiled sampling loop, a chunk at a time (:class:`Generator`).

The state after a prefix is fed to the model in one call, and repeated for every sample of
that prefix; the loop that draws a character and feeds it back runs inside one XLA-compiled
``tf.while_loop`` (:mod:`charlm.use.loop`), so nothing re-reads the window and N samples cost
about one. Text can be streamed: the loop runs a chunk of characters per call and hands each
chunk back. The draw itself, and why a seed gives the same text in any batch and however the
output is chunked: :mod:`charlm.use.draw`.

    >>> from ..options.config import Config
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

from .. import graphs
from ..models.lm import state_specs
from ..options.sampling import SamplingOptions, check_num_samples, check_prefixes
from .loop import Drawn, compiled_loop, scores_of
from .rows import Rows

# the most characters a row of a prompt's warm-up feeds in one call: a prompt of any length
# (up to MAX_PROMPT_CHARS) is fed in calls of this many, its logits [B, 4096, V] at a time
WARM_PIECE = 4096


class Generator:
    """Batched, stateful, in-graph text generation with one model and its vocabulary."""

    def __init__(
        self, model, vocab, chunk: int = 64, xla: bool = True, warm_piece: int = WARM_PIECE
    ):
        self.model = model
        self.vocab = vocab
        self.chunk, self.warm_piece = chunk, warm_piece
        # one trace for every batch size and prefix length: a new shape would retrace (~1 s)
        self.warm = graphs.function(
            self._warm, input_signature=[tf.TensorSpec([None, None], tf.int32), state_specs(model)]
        )
        self._loop = compiled_loop(model, xla)  # xla=False: for comparison (benchmarks)
        self.warm_scored = graphs.function(
            self._warm_scored,
            input_signature=[tf.TensorSpec([1, None], tf.int32), state_specs(model)],
        )

    @property
    def loop(self):
        """The compiled sampling loop (:func:`~charlm.use.loop.compiled_loop`) that every batch runs."""
        return self._loop

    @property
    def default_prefix(self) -> str:
        """The prefix of a sample asked for without one: the vocabulary's first character."""
        return self.vocab.chars[1]

    def _warm(self, ids, state):
        """Feed ``ids [B, T]`` from ``state`` in one call: the last logits and the state."""
        logits, state = self.model(ids, state, training=False)
        return logits[:, -1], state

    def _warm_scored(self, ids, state):
        """:meth:`_warm` of one row, and the log-probabilities of its characters after the
        first (each predicted from those before it), from the same call."""
        logits, state = self.model(ids, state, training=False)
        scores = scores_of(logits[0, :-1], ids[0, 1:])
        return logits[:, -1], state, scores

    def score_prefix(self, ids: np.ndarray, warmed: dict) -> Drawn:
        """Feed one prefix's ``ids [T]`` from a zero state: its characters after the first
        with their log-probabilities (as ``charlm eval`` scores them), and its logits and
        state put in ``warmed`` (see :meth:`warm_up`), so its warm-up is this same call."""
        state = self.model.initial_state(1)
        logits, state, scores = self.warm_scored(tf.constant(ids[None, :]), state)
        warmed[ids.tobytes()] = [logits.numpy(), *(s.numpy() for s in state)]
        return Drawn(ids[1:], *(x.numpy() for x in scores))

    def feed(self, ids: np.ndarray, state=None) -> list[np.ndarray]:
        """``[logits, *state]`` (numpy) after feeding ``ids [B, T]`` from ``state`` (default:
        zeros), ``warm_piece`` characters a call (:data:`WARM_PIECE`): the memory a prompt takes is bounded
        whatever its length (its logits are ``[B, T, V]`` floats)."""
        if state is None:
            state = self.model.initial_state(len(ids))
        state = [tf.convert_to_tensor(s) for s in state]
        piece = self.warm_piece
        for start in range(0, ids.shape[1], piece):
            logits, state = self.warm(tf.constant(ids[:, start : start + piece]), state)
        return [logits.numpy(), *(s.numpy() for s in state)]

    def feed_together(self, encoded: list[np.ndarray], warmed: dict) -> None:
        """Feed the prefixes ``encoded`` not yet in ``warmed`` as rows of one batch, and put
        each one's ``[logits, *state]`` in ``warmed`` (see :meth:`warm_up`): what a server
        does with the requests that arrive together, so that the last of a burst does not
        wait for every other's warm-up (a batch of 16 prefixes costs about one)."""
        for _ in self.feeding(encoded, warmed):
            pass

    def feeding(self, encoded: list[np.ndarray], warmed: dict, piece=None) -> Iterator[None]:
        """:meth:`feed_together` one call at a time, each of at most ``piece`` characters a
        row (None: no limit; a function: asked before each call): it yields between calls,
        so that a server can run its live streams' turns between the calls of a long
        prompt's warm-up, and ends with the last call.

        Rows of different lengths share the calls up to the shortest one's end, which ends
        that one, and so on: one call per distinct length (or piece), whose lengths add up to
        the longest. A row's numbers equal those of its prefix fed alone up to float rounding
        (as a row of the loop's batch does), not bit for bit."""
        todo = {ids.tobytes(): ids for ids in encoded if ids.tobytes() not in warmed}
        live = sorted(todo.values(), key=len)
        state, done = None, 0
        while live:
            most = piece() if callable(piece) else piece
            end = len(live[0]) if most is None else min(len(live[0]), done + most)
            logits, *state = self.feed(np.stack([ids[done:end] for ids in live]), state)
            ending = sum(len(ids) == end for ids in live)
            for r, ids in enumerate(live[:ending]):
                warmed[ids.tobytes()] = [logits[r : r + 1], *(s[r : r + 1] for s in state)]
            live, state, done = live[ending:], [s[ending:] for s in state], end
            if live:  # the last call ends the iteration at once: its rows join this turn
                yield

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
        options: SamplingOptions,
        num_samples: int = 1,
        warn=None,
        chunk: int | None = None,
    ) -> Iterator[list[str]]:
        """Yield, chunk by chunk, the new text of every sample (``num_samples`` per prefix;
        no prefixes: one from the vocabulary's first character) drawn with ``options``
        (:class:`~charlm.options.sampling.SamplingOptions`; loose keywords are made into options by
        :meth:`generate` and ``charlm.Run``). The first yield is the prefixes themselves, so
        the concatenated output of a sample starts with its prefix. A row that meets a stop
        string ends there (the stop string left out); generation ends when every row has.
        """
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
        scored: bool = False,
    ):
        """The rows of one call, warmed up on their prefixes: :class:`~charlm.use.rows.Rows` (``warmed``: see
        :meth:`warm_up`; ``scored``: with each character's log-probabilities)."""
        check_num_samples(num_samples)
        options = options.seeded()
        prefixes = list(prefixes or [self.default_prefix])
        encoded = self.encode_prefixes(prefixes, warn)
        logits, state = self.warm_up(encoded, num_samples, warmed)
        prefixes = [p for p in prefixes for _ in range(num_samples)]
        return Rows(self, prefixes, options, logits, state, scored)

    def warm_up(self, encoded: list[np.ndarray], copies: int = 1, warmed: dict | None = None):
        """The logits and state (numpy) after each prefix, ``copies`` rows per prefix, in order.

        Each distinct prefix is fed once, as one row, and its state is repeated for every row
        that starts with it: 16 samples of one prefix cost one prefix's warm-up. ``warmed``,
        a dict kept by the caller, carries the prefixes fed across calls (a server's requests
        that arrive together, fed by :meth:`feed_together`).
        """
        warmed = {} if warmed is None else warmed
        for ids in encoded:
            key = ids.tobytes()
            if key not in warmed:
                warmed[key] = self.feed(ids[None, :])
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
        """Whole samples (each starting with its prefix). Keywords: :meth:`stream`'s
        ``num_samples``, ``warn`` and ``chunk``; ``options``, with ``length`` and any of its
        fields (``temperature=0.5``) on top."""
        prefixes = [prefixes] if isinstance(prefixes, str) else prefixes
        how = {k: kwargs.pop(k) for k in ("num_samples", "warn", "chunk") if k in kwargs}
        options = SamplingOptions.of(kwargs.pop("options", None), length=length, **kwargs)
        how.setdefault("chunk", max(1, options.length))
        parts: list[str] | None = None
        for piece in self.stream(prefixes, options, **how):
            parts = piece if parts is None else [a + b for a, b in zip(parts, piece, strict=True)]
        assert parts is not None  # the first piece of a stream is always its prefixes
        return parts
