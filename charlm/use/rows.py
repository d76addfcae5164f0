"""One generation's rows, advanced a chunk at a time (:class:`Rows`): their batch of the
compiled loop (:mod:`charlm.use.loop`), their stop strings, and, when asked, each generated
character's log-probabilities (:class:`Scored`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..options.sampling import SamplingOptions
from .loop import Batch, Drawn, row_options
from .stops import StopCut


@dataclass(frozen=True)
class Scored:
    """One generated character with its log-probability and the likeliest characters' (as
    many as :data:`TOP_LOGPROBS`, the likeliest first), from the model's own distribution."""

    char: str
    logprob: float
    top: tuple[tuple[str, float], ...]


class Rows:
    """The rows of one generation, advanced a chunk at a time: their :class:`Batch`, the
    options, and each row's stop-string cut. :meth:`advance` returns each row's new text
    (a server runs the batch itself, joined with other calls' rows, and hands what it drew to
    :meth:`take`); :attr:`finish_reasons` says, once :attr:`done`, ``"stop"`` or
    ``"length"``. ``gen``: the :class:`~charlm.use.generate.Generator` whose loop and
    vocabulary they use. ``scored``: the characters' log-probabilities are drawn too, and
    :attr:`scores` holds, after each :meth:`take`, a :class:`Scored` per character it gave
    each row."""

    def __init__(
        self, gen, prefixes: list[str], options: SamplingOptions, logits, state, scored=False
    ):
        self.gen, self.prefixes, self.options, self.scored = gen, prefixes, options, scored
        self.batch = Batch(
            np.asarray(logits), [np.asarray(s) for s in state], row_options(options, len(prefixes))
        )
        self.position = 0
        self.cuts = [StopCut(options.stop) for _ in prefixes]
        self.held: list[list[Scored]] = [[] for _ in prefixes]  # drawn, not yet given
        self.scores: list[list[Scored]] = [[] for _ in prefixes]

    @property
    def done(self) -> bool:
        return self.position >= self.options.length or all(c.stopped for c in self.cuts)

    @property
    def finish_reasons(self) -> list[str]:
        return ["stop" if c.stopped else "length" for c in self.cuts]

    def advance(self, chunk: int) -> list[str]:
        """The next ``chunk`` characters of every row (fewer where a row stops)."""
        n = min(chunk, self.options.length - self.position)
        return self.take(self.batch.run(self.gen.loop, n, scored=self.scored))

    def take(self, drawn: Drawn) -> list[str]:
        """Each row's new text from what it drew next (:class:`Drawn`): characters past the
        length are dropped, and a row's text ends before its first stop string."""
        n = min(drawn.ids.shape[1], self.options.length - self.position)
        self.position += n
        texts = [self.gen.vocab.decode(row) for row in drawn.ids[:, :n]]
        if self.scored:
            for r, held in enumerate(self.held):
                held += self._scored(drawn.part(r, r + 1), n)
        out = [cut.feed(text) for cut, text in zip(self.cuts, texts, strict=True)]
        if self.done:
            out = [o + cut.flush() for o, cut in zip(out, self.cuts, strict=True)]
        self.scores = [held[: len(o)] for held, o in zip(self.held, out, strict=True)]
        self.held = [held[len(o) :] for held, o in zip(self.held, out, strict=True)]
        return out

    def _scored(self, row: Drawn, n: int) -> list[Scored]:
        """A :class:`Scored` for each of the first ``n`` characters of one row."""
        return scored_chars(self.gen.vocab, Drawn(*(a[0, :n] for a in row.arrays())))


def scored_chars(vocab, drawn: Drawn) -> list[Scored]:
    """A :class:`Scored` per character of one row's scored :class:`Drawn` (arrays ``[n]`` and
    ``[n, TOP_LOGPROBS]``)."""
    decode = vocab.decode
    assert drawn.logprobs is not None and drawn.top_ids is not None
    assert drawn.top_logprobs is not None
    return [
        Scored(
            decode(drawn.ids[i : i + 1]),
            float(lp),
            tuple(
                (decode(top_ids[j : j + 1]), float(alt))
                for j, alt in enumerate(top_lps)
                if np.isfinite(alt)
            ),
        )
        for i, (lp, top_ids, top_lps) in enumerate(
            zip(drawn.logprobs, drawn.top_ids, drawn.top_logprobs, strict=True)
        )
    ]
