"""Minibatch samplers over a stream of character ids, with the d2l chapter's exact semantics.

A sampler turns the training ids into, for each epoch, a *plan*: an integer array
``starts[num_batches, batch_size]``. Row ``r`` of batch ``b`` reads the window
``ids[s : s + seq_len]`` as inputs and ``ids[s + 1 : s + seq_len + 1]`` as targets, where
``s = starts[b, r]`` — targets are the inputs shifted by one character.

- ``random``: cut the text into non-overlapping windows of ``seq_len``, shuffle them, and deal
  them out ``batch_size`` at a time (a last partial batch is dropped). Each batch starts from
  a zero hidden state.
- ``consecutive``: split the text into ``batch_size`` contiguous streams and walk along them
  ``seq_len`` at a time: row ``r`` of batch ``b + 1`` starts exactly where row ``r`` of batch
  ``b`` ended, so the hidden state is carried across batches (gradients stopped at the
  boundary) and reset only at the start of an epoch.

Where the text is cut (``cut``) follows one of the book's two editions:

- ``"random-offset"`` (d2l 2nd edition, ``seq_data_iter_random/sequential``): drop a random
  offset ``0 <= o < seq_len`` from the front each epoch, so the windows move from epoch to
  epoch; the streams are ``(len - o - 1) // batch_size`` long.
- ``"fixed"`` (d2l 1st edition, ``data_iter_random/consecutive``): no offset. Random windows
  start at ``k * seq_len``, ``k < (len - 1) // seq_len``; consecutive stream ``r`` starts at
  ``r * batch_len`` with ``batch_len = len // batch_size``, and an epoch has
  ``(batch_len - 1) // seq_len`` batches.

The randomness of epoch ``e`` comes from ``numpy.random.default_rng([seed, e])`` alone, so a
resumed run regenerates the same plan and skips the batches already done.

    >>> s = ConsecutiveSampler(np.arange(100), seq_len=5, batch_size=2)
    >>> plan = s.plan(epoch=0, seed=0)
    >>> bool((plan[1] - plan[0] == 5).all())   # each row continues where it stopped
    True
    >>> ConsecutiveSampler(np.arange(100), 5, 2, cut="fixed").plan(0, 0)[0].tolist()
    [0, 50]
"""

from __future__ import annotations

import numpy as np

from ..errors import CharLMError
from ..options.config import CHOICES

CUTS = CHOICES["cut"]  # ("random-offset", "fixed"): d2l 2nd edition | 1st edition

# an epoch with fewer batches left is gathered batch by batch instead of through a tf.data
# pipeline, whose building and teardown (~27 ms an epoch) took over half the time of a one-line
# corpus: 400 steps in 172 epochs took 8.3 s with the pipeline and 3.6 s without (Intel Xeon)
PIPELINE_MIN_BATCHES = 64


class Sampler:
    """Base class: holds the ids, window sizes and cut; subclasses define :meth:`plan`."""

    name = ""
    carries_state = False  # True: the hidden state flows from batch b to batch b + 1

    def __init__(self, ids: np.ndarray, seq_len: int, batch_size: int, cut: str = "random-offset"):
        if seq_len < 1 or batch_size < 1:
            raise CharLMError("seq-len and batch-size must be at least 1")
        if cut not in CUTS:
            raise CharLMError(f"unknown cut '{cut}'; use {' or '.join(CUTS)}")
        self.ids = ids
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.cut = cut
        if self.min_batches() < 1:
            raise CharLMError(
                f"the training text ({len(ids)} characters) is too short for one batch of "
                f"{batch_size} x {seq_len} characters with the {self.name} sampler; "
                f"use a smaller --seq-len or --batch-size, or more text"
            )

    @property
    def fixed(self) -> bool:
        """True: the 1st edition's fixed cut; False: a random offset each epoch (2nd)."""
        return self.cut == "fixed"

    def plan(self, epoch: int, seed: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def min_batches(self) -> int:
        """Batches in the shortest possible epoch (the largest offset)."""
        largest = 0 if self.fixed else self.seq_len - 1
        return min(self._num_batches(offset) for offset in (0, largest))

    def _offset(self, epoch: int, seed: int) -> tuple[int, np.random.Generator]:
        """This epoch's offset (always 0 for the fixed cut) and its random generator."""
        rng = np.random.default_rng([seed, epoch])
        return (0 if self.fixed else int(rng.integers(0, self.seq_len))), rng

    def _num_batches(self, offset: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


class RandomSampler(Sampler):
    """Shuffled non-overlapping windows; state reset every batch.

    Both cuts take the windows ``offset + k * seq_len`` for ``k < (len - offset - 1) //
    seq_len`` (the last one still has its target); the fixed cut's offset is always 0.
    """

    name = "random"
    carries_state = False

    def _num_windows(self, offset: int) -> int:
        return (len(self.ids) - offset - 1) // self.seq_len

    def _num_batches(self, offset: int) -> int:
        return self._num_windows(offset) // self.batch_size

    def plan(self, epoch: int, seed: int) -> np.ndarray:
        offset, rng = self._offset(epoch, seed)
        starts = offset + self.seq_len * rng.permutation(self._num_windows(offset))
        num_batches = self._num_batches(offset)
        return starts[: num_batches * self.batch_size].reshape(num_batches, self.batch_size)


class ConsecutiveSampler(Sampler):
    """``batch_size`` parallel contiguous streams; batch b + 1 continues batch b row by row."""

    name = "consecutive"
    carries_state = True

    def _row_len(self, offset: int) -> int:
        """The distance between the starts of two streams."""
        if self.fixed:  # 1st edition: batch_len = len // batch_size
            return len(self.ids) // self.batch_size
        return (len(self.ids) - offset - 1) // self.batch_size  # 2nd: inputs only

    def _num_batches(self, offset: int) -> int:
        if self.fixed:  # 1st edition: epoch_size = (batch_len - 1) // num_steps
            return (self._row_len(offset) - 1) // self.seq_len
        return self._row_len(offset) // self.seq_len

    def plan(self, epoch: int, seed: int) -> np.ndarray:
        offset, _ = self._offset(epoch, seed)
        rows = offset + self._row_len(offset) * np.arange(self.batch_size)
        steps = self.seq_len * np.arange(self._num_batches(offset))
        return steps[:, None] + rows[None, :]


SAMPLERS = {"random": RandomSampler, "consecutive": ConsecutiveSampler}


def make_sampler(
    kind: str, ids: np.ndarray, seq_len: int, batch_size: int, cut: str = "random-offset"
) -> Sampler:
    """The sampler called ``kind`` (``"random"`` or ``"consecutive"``) with ``cut``
    (``"random-offset"`` or ``"fixed"``)."""
    if kind not in SAMPLERS:
        raise CharLMError(f"unknown sampler '{kind}'; use random or consecutive")
    return SAMPLERS[kind](ids, seq_len, batch_size, cut)


def windows(ids: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets ``[..., seq_len]`` for an array of window starts (numpy, for tests)."""
    idx = np.asarray(starts)[..., None] + np.arange(seq_len)
    return ids[idx], ids[idx + 1]


def dataset(ids, plan: np.ndarray, seq_len: int, skip: int = 0):
    """The ``(inputs, targets)`` int32 tensor batches of ``plan``: a prefetching
    ``tf.data.Dataset``, or, where fewer than :data:`PIPELINE_MIN_BATCHES` batches are left
    after ``skip``, the same batches gathered as they are asked for.

    ``ids`` is the whole training stream: a numpy array, typically memory-mapped from the
    run's id file (a tensor works too). Each batch's windows are gathered from it in numpy,
    so the corpus is never copied whole into a tensor. ``skip`` drops the first batches (a
    resumed run continues mid-epoch).
    """
    import tensorflow as tf

    ids = np.asarray(ids)
    offsets = np.arange(seq_len + 1)

    def gather_windows(starts):
        window = ids[starts[:, None] + offsets].astype(np.int32)
        return window[:, :-1], window[:, 1:]

    if len(plan) - skip < PIPELINE_MIN_BATCHES:
        return (tuple(map(tf.constant, gather_windows(starts))) for starts in plan[skip:])

    def gather(starts):
        x, y = tf.numpy_function(gather_windows, [starts], (tf.int32, tf.int32), stateful=False)
        shape = [plan.shape[1], seq_len]
        return tf.ensure_shape(x, shape), tf.ensure_shape(y, shape)

    ds = tf.data.Dataset.from_tensor_slices(plan[skip:].astype(np.int64))
    ds = ds.map(gather, num_parallel_calls=1, deterministic=True).prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False  # auto-tuning froze training 40-55 s at epoch ends here
    options.deterministic = True
    return ds.with_options(options)
