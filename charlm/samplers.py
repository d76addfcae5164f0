"""Minibatch samplers over a stream of character ids, with the d2l chapter's exact semantics.

A sampler turns the training ids into, for each epoch, a *plan*: an integer array
``starts[num_batches, batch_size]``. Row ``r`` of batch ``b`` reads the window
``ids[s : s + seq_len]`` as inputs and ``ids[s + 1 : s + seq_len + 1]`` as targets, where
``s = starts[b, r]`` — targets are the inputs shifted by one character.

- ``random``: drop a random offset ``0 <= o < seq_len`` from the front, cut the rest into
  non-overlapping windows of ``seq_len``, shuffle them, and deal them out ``batch_size`` at a
  time (a last partial batch is dropped). Each batch starts from a zero hidden state.
- ``consecutive``: drop a random offset, split what is left into ``batch_size`` contiguous
  streams, and walk along them ``seq_len`` at a time: row ``r`` of batch ``b + 1`` starts
  exactly where row ``r`` of batch ``b`` ended, so the hidden state is carried across
  batches (gradients stopped at the boundary) and reset only at the start of an epoch.

The randomness of epoch ``e`` comes from ``numpy.random.default_rng([seed, e])`` alone, so a
resumed run regenerates the same plan and skips the batches already done.

    >>> s = ConsecutiveSampler(np.arange(100), seq_len=5, batch_size=2)
    >>> plan = s.plan(epoch=0, seed=0)
    >>> bool((plan[1] - plan[0] == 5).all())   # each row continues where it stopped
    True
"""

from __future__ import annotations

import numpy as np

from .errors import CharLMError


class Sampler:
    """Base class: holds the ids and window sizes; subclasses define :meth:`plan`."""

    name = ""
    carries_state = False  # True: the hidden state flows from batch b to batch b + 1

    def __init__(self, ids: np.ndarray, seq_len: int, batch_size: int):
        if seq_len < 1 or batch_size < 1:
            raise CharLMError("seq-len and batch-size must be at least 1")
        self.ids = ids
        self.seq_len = seq_len
        self.batch_size = batch_size
        if self.min_batches() < 1:
            raise CharLMError(
                f"the training text ({len(ids)} characters) is too short for one batch of "
                f"{batch_size} x {seq_len} characters with the {self.name} sampler; "
                f"use a smaller --seq-len or --batch-size, or more text")

    def plan(self, epoch: int, seed: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def min_batches(self) -> int:
        """Batches in the shortest possible epoch (the largest random offset)."""
        return min(self._num_batches(offset) for offset in (0, self.seq_len - 1))

    def _offset(self, epoch: int, seed: int) -> tuple[int, np.random.Generator]:
        rng = np.random.default_rng([seed, epoch])
        return int(rng.integers(0, self.seq_len)), rng

    def _num_batches(self, offset: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


class RandomSampler(Sampler):
    """Shuffled non-overlapping windows from a random offset; state reset every batch."""

    name = "random"
    carries_state = False

    def _num_batches(self, offset: int) -> int:
        return ((len(self.ids) - offset - 1) // self.seq_len) // self.batch_size

    def plan(self, epoch: int, seed: int) -> np.ndarray:
        offset, rng = self._offset(epoch, seed)
        num_windows = (len(self.ids) - offset - 1) // self.seq_len
        starts = offset + self.seq_len * rng.permutation(num_windows)
        num_batches = num_windows // self.batch_size
        return starts[: num_batches * self.batch_size].reshape(num_batches, self.batch_size)


class ConsecutiveSampler(Sampler):
    """``batch_size`` parallel contiguous streams; batch b + 1 continues batch b row by row."""

    name = "consecutive"
    carries_state = True

    def _row_len(self, offset: int) -> int:
        return (len(self.ids) - offset - 1) // self.batch_size

    def _num_batches(self, offset: int) -> int:
        return self._row_len(offset) // self.seq_len

    def plan(self, epoch: int, seed: int) -> np.ndarray:
        offset, _ = self._offset(epoch, seed)
        row_len = self._row_len(offset)
        rows = offset + row_len * np.arange(self.batch_size)
        steps = self.seq_len * np.arange(self._num_batches(offset))
        return steps[:, None] + rows[None, :]


SAMPLERS = {"random": RandomSampler, "consecutive": ConsecutiveSampler}


def make_sampler(kind: str, ids: np.ndarray, seq_len: int, batch_size: int) -> Sampler:
    """The sampler called ``kind`` (``"random"`` or ``"consecutive"``)."""
    try:
        return SAMPLERS[kind](ids, seq_len, batch_size)
    except KeyError:
        raise CharLMError(f"unknown sampler '{kind}'; use random or consecutive") from None


def windows(ids: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets ``[..., seq_len]`` for an array of window starts (numpy, for tests)."""
    idx = np.asarray(starts)[..., None] + np.arange(seq_len)
    return ids[idx], ids[idx + 1]


def dataset(ids_tensor, plan: np.ndarray, seq_len: int, skip: int = 0):
    """A prefetching ``tf.data.Dataset`` of ``(inputs, targets)`` int32 batches for ``plan``.

    ``ids_tensor`` is the whole training stream as a tensor (built once per run);
    ``skip`` drops the first batches (a resumed run continues mid-epoch).
    """
    import tensorflow as tf

    offsets = tf.range(seq_len + 1, dtype=tf.int64)

    def gather(starts):
        idx = starts[:, None] + offsets[None, :]
        window = tf.cast(tf.gather(ids_tensor, idx), tf.int32)
        return window[:, :-1], window[:, 1:]

    ds = tf.data.Dataset.from_tensor_slices(plan[skip:].astype(np.int64))
    ds = ds.map(gather, num_parallel_calls=1, deterministic=True).prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False  # auto-tuning froze training 40-55 s at epoch ends here
    options.deterministic = True
    return ds.with_options(options)
