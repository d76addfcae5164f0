"""What counting alone scores on the held-out text: the floor a trained model must beat.

From the training ids, two count models predict each held-out character; their mean
cross-entropy, in nats per character, is what ``charlm train`` prints beside a run's val loss:

- **unigram**: a character's frequency in the training text, add-one smoothed over the
  vocabulary (every id, ``<unk>`` included, counts once more than it was seen);
- **bigram**: the frequency of a character after the one before it, interpolated half and half
  with the unigram (a pair never seen keeps half the unigram's probability).

The Tang poems' split scores unigram 6.621 and bigram 5.782 nats/char (BENCHMARKS.md); tiny
Shakespeare's 3.3 and 2.5. Pure numpy, one pass over the ids (a 2.2M-character corpus of 5,992
characters in ~0.03 s), no TensorFlow.

    >>> ids = np.array([1, 2, 1, 2, 1, 2, 1, 2])
    >>> b = count_baselines(ids, train_chars=6, vocab_size=3)
    >>> b["bigram"] < b["unigram"]
    True
"""

from __future__ import annotations

import numpy as np

BIGRAM_WEIGHT = 0.5  # of the bigram's probability in its mix with the unigram


def count_baselines(ids, train_chars: int, vocab_size: int, unigram=None) -> dict[str, float]:
    """The unigram and bigram count models' nats/char on ``ids[train_chars:]``, counted on
    ``ids[:train_chars]`` (NaN for both where nothing is held out); ``unigram``: the training
    ids' :func:`unigram_probabilities`, where the caller has them already."""
    ids = np.asarray(ids)
    train, val = ids[:train_chars].astype(np.int64), ids[train_chars:].astype(np.int64)
    if len(val) == 0:
        return {"unigram": float("nan"), "bigram": float("nan")}
    if unigram is None:
        unigram = unigram_probabilities(train, vocab_size)
    previous = np.concatenate([train[-1:], val[:-1]]) if len(train) else val[:-1]
    targets = val[len(val) - len(previous) :]
    p_uni = unigram[targets]
    p_pair = _pair_probability(train, previous, targets, vocab_size)
    p_mix = BIGRAM_WEIGHT * p_pair + (1 - BIGRAM_WEIGHT) * p_uni
    first = -np.log(unigram[val[:1]]) if len(targets) < len(val) else np.zeros(0)
    return {
        "unigram": float(-np.log(unigram[val]).mean()),
        "bigram": float(np.concatenate([first, -np.log(p_mix)]).mean()),
    }


def unigram_probabilities(train_ids, vocab_size: int) -> np.ndarray:
    """Each id's add-one frequency in ``train_ids``: the unigram count model, ``[vocab_size]``.
    Its logarithm is also where a fresh model's output bias starts (charlm.api.training), so
    that its first step already predicts as well as counting single characters."""
    counts = np.bincount(np.asarray(train_ids, dtype=np.int64), minlength=vocab_size)
    return (counts[:vocab_size] + 1.0) / (len(train_ids) + vocab_size)


def _pair_probability(train, previous, targets, vocab_size: int) -> np.ndarray:
    """P(target | previous) counted on the training pairs (0 where ``previous`` never led)."""
    if len(train) < 2:
        return np.zeros(len(targets))
    pairs = np.unique(train[:-1] * vocab_size + train[1:], return_counts=True)
    led = np.bincount(train[:-1], minlength=vocab_size)
    asked = previous * vocab_size + targets
    where = np.searchsorted(pairs[0], asked).clip(max=len(pairs[0]) - 1)
    count = np.where(pairs[0][where] == asked, pairs[1][where], 0)
    return count / np.maximum(led[previous], 1)
