"""What counting scores: the unigram and bigram count models a trained run is read beside, and
the lines that show them (``charlm train``'s last line, ``runs``, ``info``)."""

import collections
import math

import numpy as np
import pytest
from conftest import CORPORA, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from charlm.text.baselines import BIGRAM_WEIGHT, count_baselines


def brute_force(ids, train_chars, vocab_size):
    """The same models, counted with dictionaries, one character at a time."""
    train, val = ids[:train_chars], ids[train_chars:]
    uni = collections.Counter(train)
    pairs = collections.Counter(zip(train, train[1:], strict=False))
    led = collections.Counter(train[:-1])

    def p_uni(c):
        return (uni[c] + 1) / (len(train) + vocab_size)

    nats_uni = [-math.log(p_uni(c)) for c in val]
    nats_bi = []
    for i, c in enumerate(val):
        before = val[i - 1] if i else (train[-1] if train else None)
        if before is None:
            nats_bi.append(-math.log(p_uni(c)))
            continue
        p_pair = pairs[before, c] / led[before] if led[before] else 0.0
        nats_bi.append(-math.log(BIGRAM_WEIGHT * p_pair + (1 - BIGRAM_WEIGHT) * p_uni(c)))
    return sum(nats_uni) / len(val), sum(nats_bi) / len(val)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40).flatmap(lambda v: st.tuples(
    st.just(v), st.lists(st.integers(0, v - 1), min_size=2, max_size=300), st.floats(0.05, 0.95)
)))  # fmt: skip
def test_the_counts_are_those_of_counting_one_character_at_a_time(case):
    vocab_size, ids, share = case
    train_chars = max(0, min(len(ids) - 1, int(len(ids) * share)))
    got = count_baselines(np.array(ids, np.uint16), train_chars, vocab_size)
    unigram, bigram = brute_force(ids, train_chars, vocab_size)
    assert got["unigram"] == pytest.approx(unigram, rel=1e-9)
    assert got["bigram"] == pytest.approx(bigram, rel=1e-9)


def test_a_text_where_each_character_names_the_next_is_cheaper_for_the_bigram():
    ids = np.tile(np.arange(5), 200)
    counted = count_baselines(ids, train_chars=800, vocab_size=5)
    assert counted["unigram"] == pytest.approx(math.log(5), rel=1e-3)
    assert counted["bigram"] == pytest.approx(-math.log(0.5 + 0.5 / 5), rel=1e-3)
    assert math.isnan(count_baselines(ids, train_chars=1000, vocab_size=5)["bigram"])


def test_a_run_ends_beside_its_counts_and_says_when_it_is_above_the_bigram(workdir):
    # 3 steps of a tiny model cannot learn what counting pairs knows: the line says so
    code, _, err = run_cli(
        "train", CORPORA / "timemachine.txt", "--steps", "3", "--units", "16",
        "--embedding-dim", "8", "--layers", "1", "--batch-size", "4", "--seq-len", "16",
        "--name", "tiny", cwd=workdir,
    )  # fmt: skip
    assert code == 0, err
    ids = np.load(workdir / "runs/tiny/ids.npy")
    text = (CORPORA / "timemachine.txt").read_text(encoding="utf-8")
    train_chars = len(ids) - len((workdir / "runs/tiny/val.txt").read_text(encoding="utf-8"))
    counted = count_baselines(ids, train_chars, int(ids.max()) + 1)
    assert len(text) == len(ids)
    done = [line for line in err.splitlines() if line.startswith("done: ")]
    assert len(done) == 1
    assert f"(bigram {counted['bigram']:.2f}, unigram {counted['unigram']:.2f})" in done[0]
    note = [line for line in err.splitlines() if line.startswith("note: val loss")]
    assert len(note) == 1 and f"above the {counted['bigram']:.2f} of a bigram" in note[0]
    assert "--time-budget" in note[0]
    code, out, _ = run_cli("runs", cwd=workdir)
    assert code == 0 and "BIGRAM" in out.splitlines()[0]
    assert f"{counted['bigram']:.4f}" in out
    code, out, _ = run_cli("info", "tiny", cwd=workdir)
    assert code == 0 and f"(bigram {counted['bigram']:.2f}, unigram" in out
