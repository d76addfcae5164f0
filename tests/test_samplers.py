"""The samplers follow the d2l chapter exactly (see charlm/text/samplers.py).

The fixed cut is compared batch for batch with the 1st edition's own ``data_iter_random`` and
``data_iter_consecutive``, ported in tests/book_reference.py (no code shared with charlm).
"""

import numpy as np
import pytest
from book_reference import data_iter_consecutive, data_iter_random, replay_order
from hypothesis import given, settings
from hypothesis import strategies as st

from charlm.errors import CharLMError
from charlm.text.samplers import (
    PIPELINE_MIN_BATCHES,
    ConsecutiveSampler,
    RandomSampler,
    dataset,
    make_sampler,
    windows,
)

IDS = np.arange(1000, dtype=np.int64)


def sampler_shapes(max_chars: int) -> dict:
    """What the sampler properties draw: a corpus of 2 to ``max_chars`` ids, a window, a batch
    size, an epoch and a sampler kind (``@given(**sampler_shapes(400))``)."""
    return dict(
        n=st.integers(2, max_chars),
        seq_len=st.integers(1, 40),
        batch_size=st.integers(1, 16),
        epoch=st.integers(0, 5),
        kind=st.sampled_from(["random", "consecutive"]),
    )


def test_targets_are_inputs_shifted_by_one():
    data = np.random.default_rng(0).integers(0, 50, 500)
    for kind in ("random", "consecutive"):
        s = make_sampler(kind, data, seq_len=7, batch_size=4)
        x, y = windows(data, s.plan(0, 0), 7)
        starts = s.plan(0, 0)
        assert np.array_equal(x[..., 1:], y[..., :-1])
        assert np.array_equal(y[..., -1], data[starts + 7])


def test_consecutive_rows_continue_exactly_where_the_previous_batch_ended():
    s = ConsecutiveSampler(IDS, seq_len=10, batch_size=4)
    plan = s.plan(epoch=3, seed=1)
    x, _ = windows(IDS, plan, 10)
    for b in range(len(plan) - 1):
        assert np.array_equal(x[b, :, -1] + 1, x[b + 1, :, 0])


def test_consecutive_streams_are_contiguous_and_disjoint():
    s = ConsecutiveSampler(IDS, seq_len=10, batch_size=4)
    plan = s.plan(0, 0)
    x, _ = windows(IDS, plan, 10)
    rows = [np.concatenate(list(x[:, r])) for r in range(4)]
    for row in rows:
        assert np.array_equal(np.diff(row), np.ones(len(row) - 1))
    assert len(set(np.concatenate(rows).tolist())) == sum(len(r) for r in rows)


def test_random_windows_do_not_overlap_and_are_aligned_to_one_offset():
    s = RandomSampler(IDS, seq_len=10, batch_size=8)
    plan = s.plan(epoch=2, seed=5)
    flat = np.sort(plan.ravel())
    assert np.all(np.diff(flat) >= 10)
    assert len(set((flat % 10).tolist())) == 1


def test_random_windows_are_shuffled():
    s = RandomSampler(IDS, seq_len=10, batch_size=8)
    flat = s.plan(0, 0).ravel()
    assert not np.all(np.diff(flat) > 0)


def test_offsets_and_order_vary_across_epochs_but_not_across_calls():
    for cls in (RandomSampler, ConsecutiveSampler):
        s = cls(IDS, seq_len=10, batch_size=4)
        assert np.array_equal(s.plan(4, 9), s.plan(4, 9))
        offsets = {int(s.plan(e, 0).min() % 10) for e in range(30)}
        assert len(offsets) > 3


def test_a_text_too_short_for_one_batch_is_refused_clearly():
    with pytest.raises(CharLMError, match="too short for one batch.*--seq-len"):
        ConsecutiveSampler(np.arange(50), seq_len=10, batch_size=8)
    with pytest.raises(CharLMError, match="too short"):
        RandomSampler(np.arange(50), seq_len=10, batch_size=8)


@pytest.mark.parametrize("batch_size", [5, 1])  # 64 batches and more: through tf.data
def test_dataset_yields_the_planned_batches_and_skips_for_resume(batch_size):
    s = ConsecutiveSampler(IDS.astype(np.uint16), seq_len=5, batch_size=batch_size)
    plan = s.plan(0, 0)
    assert (len(plan) - 2 >= PIPELINE_MIN_BATCHES) == (batch_size == 1)
    import tensorflow as tf

    batches = list(dataset(tf.constant(s.ids), plan, 5, skip=2))
    assert len(batches) == len(plan) - 2
    for (x, y), starts in zip(batches, plan[2:], strict=True):
        assert x.dtype == y.dtype == tf.int32 and x.shape == y.shape == (batch_size, 5)
        want_x, want_y = windows(IDS, starts, 5)
        assert np.array_equal(x.numpy(), want_x) and np.array_equal(y.numpy(), want_y)


@settings(max_examples=200, deadline=None)
@given(**sampler_shapes(max_chars=400))
def test_samplers_never_index_outside_the_data_and_cover_what_the_definition_says(
    n, seq_len, batch_size, epoch, kind
):
    ids = np.arange(n)
    try:
        s = make_sampler(kind, ids, seq_len, batch_size)
    except CharLMError:
        return  # too short: refused (tested above)
    plan = s.plan(epoch, seed=7)
    assert plan.shape[1] == batch_size and plan.shape[0] >= s.min_batches() >= 1
    assert plan.min() >= 0 and plan.max() + seq_len <= n - 1  # the last target exists
    offset = int(plan.min()) % seq_len if kind == "random" else int(plan.min())
    assert 0 <= offset < seq_len
    covered = np.sort((plan[..., None] + np.arange(seq_len)).ravel())
    assert len(np.unique(covered)) == covered.size  # no position read twice
    if kind == "random":
        usable = (n - offset - 1) // seq_len
        assert plan.size == usable // batch_size * batch_size
    else:
        row_len = (n - offset - 1) // batch_size
        assert plan.shape[0] == row_len // seq_len
        # every row starts where the previous row's stream starts + row_len
        assert np.all(np.diff(plan[0]) == row_len)


# -- the cut: a random offset each epoch (2nd edition, the default) or fixed (1st edition) ----


def book_batches(kind: str, ids: np.ndarray, seq_len: int, batch_size: int, plan=None):
    """The book's (X, Y) batches, stacked: ([batches, batch_size, seq_len], same)."""
    if kind == "consecutive":
        pairs = list(data_iter_consecutive(ids, batch_size, seq_len))
    else:
        shuffle = replay_order(plan.ravel() // seq_len)  # charlm's order, the book's windows
        pairs = list(data_iter_random(ids, batch_size, seq_len, shuffle))
    if not pairs:
        return None
    return np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs])


@settings(max_examples=300, deadline=None)
@given(**sampler_shapes(max_chars=600))
def test_the_fixed_cut_gives_exactly_the_first_editions_batches(
    n, seq_len, batch_size, epoch, kind
):
    ids = np.random.default_rng(n).integers(0, 30, n)
    try:
        plan = make_sampler(kind, ids, seq_len, batch_size, cut="fixed").plan(epoch, seed=3)
    except CharLMError:  # refused as too short exactly when the book has no batch to give
        assert book_batches(kind, ids, seq_len, batch_size, np.zeros((0, 1), int)) is None
        return
    x, y = windows(ids, plan, seq_len)
    book_x, book_y = book_batches(kind, ids, seq_len, batch_size, plan)
    assert np.array_equal(x, book_x)
    assert np.array_equal(y, book_y)


def test_the_fixed_cut_on_the_d2l_recipe_sizes():
    """10,000 characters, windows of 35, batch 32: 8 batches an epoch with either sampler;
    consecutive streams start every 312 characters, random windows every 35."""
    ids = np.arange(10000)
    consecutive = ConsecutiveSampler(ids, 35, 32, cut="fixed").plan(0, 0)
    assert consecutive.shape == (8, 32)
    assert np.array_equal(consecutive[0], 312 * np.arange(32))
    random_plan = RandomSampler(ids, 35, 32, cut="fixed").plan(0, 0)
    assert random_plan.shape == (8, 32)
    assert np.all(random_plan % 35 == 0) and random_plan.max() < 285 * 35


def test_the_fixed_cut_reads_the_same_windows_every_epoch_in_a_new_order():
    consecutive = ConsecutiveSampler(IDS, 10, 4, cut="fixed")
    assert all(
        np.array_equal(consecutive.plan(e, s), consecutive.plan(0, 0))
        for e in range(5)
        for s in range(3)
    )
    shuffled = RandomSampler(IDS, 10, 4, cut="fixed")
    plans = [shuffled.plan(e, 0) for e in range(5)]
    assert all(set(p.ravel() % 10) == {0} for p in plans)
    assert len({tuple(p.ravel()) for p in plans}) == 5


def test_a_random_offset_each_epoch_is_the_default_cut():
    for kind in ("random", "consecutive"):
        s = make_sampler(kind, IDS, 10, 4)
        assert s.cut == "random-offset"
        explicit = make_sampler(kind, IDS, 10, 4, cut="random-offset")
        assert np.array_equal(s.plan(2, 1), explicit.plan(2, 1))


def test_an_unknown_cut_is_refused_clearly():
    with pytest.raises(CharLMError, match="unknown cut 'first'; use random-offset or fixed"):
        make_sampler("random", IDS, 10, 4, cut="first")
