"""Scoring text: nats/char, bits/char and perplexity, each character scored once, the hidden
state carried across chunks (or reset every window), checked against the model run by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import error

from charlm.models.lm import build_model
from charlm.options.config import Config
from charlm.text.vocab import Vocab
from charlm.use.evaluate import Scorer, score

TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, "
    "it was the age of foolishness, it was the epoch of belief.\n"
)
VOCAB = Vocab.from_text(TEXT)
IDS = VOCAB.encode(TEXT)  # 138 characters: 137 predictions
RTOL = 1e-5  # float32 logits summed in float64


class Tiny:
    """A tiny untrained model, a Scorer of it (built once, reused as training reuses it), and
    its logits computed independently: one graph call over a whole sequence."""

    def __init__(self, kind):
        self.model = build_model(
            Config(model=kind, layers=1, units=16, embedding_dim=8, seed=3), len(VOCAB)
        )
        if kind.startswith("scratch"):  # d2l's N(0, 0.01²) weights barely use the state
            for v in self.model.trainable_variables:
                v.assign(v * 100.0)
        self.scorer = Scorer(self.model)
        spec = [
            tf.TensorSpec([1, None], tf.int32),
            [tf.TensorSpec([1, *s], tf.float32) for s in self.model.state_shapes],
        ]
        self.logits = tf.function(
            lambda ids, state: self.model(ids, state)[0], input_signature=spec
        )

    def nats(self, ids) -> np.ndarray:
        """The cross-entropy of each next character of ``ids``, by one call of the model over
        all of them from a zero state, in float64."""
        ids = np.asarray(ids, np.int32)
        logits = self.logits(tf.constant(ids[None, :-1]), self.model.initial_state(1))
        logits = logits.numpy()[0].astype(np.float64)
        top = logits.max(-1, keepdims=True)
        log_probs = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
        return -log_probs[np.arange(len(ids) - 1), ids[1:]]


@pytest.fixture(scope="module", params=["lstm", "scratch-gru"])
def tiny(request):
    return Tiny(request.param)


def test_the_score_is_the_mean_cross_entropy_of_the_model_over_the_whole_text(tiny):
    expected = tiny.nats(IDS).mean()
    result = tiny.scorer(IDS, batch_size=1, seq_len=len(IDS))
    assert result["chars"] == len(IDS) - 1
    assert result["nats_per_char"] == pytest.approx(expected, rel=RTOL)
    assert result["perplexity"] == pytest.approx(math.exp(expected), rel=RTOL)
    assert result["bits_per_char"] == pytest.approx(expected / math.log(2), rel=RTOL)


def test_perplexity_is_exp_of_the_nats_and_bits_are_nats_over_ln_2(tiny):
    result = tiny.scorer(IDS, batch_size=3, seq_len=10)
    assert result["perplexity"] == pytest.approx(math.exp(result["nats_per_char"]), rel=1e-12)
    assert result["bits_per_char"] == pytest.approx(
        result["nats_per_char"] / math.log(2), rel=1e-12
    )


@pytest.mark.parametrize("seq_len", [1, 7, 50])
def test_carrying_the_state_across_chunks_equals_one_call_over_the_whole_text(tiny, seq_len):
    result = tiny.scorer(IDS, batch_size=1, seq_len=seq_len, carry_state=True)
    assert result["nats_per_char"] == pytest.approx(tiny.nats(IDS).mean(), rel=RTOL)


def test_with_several_streams_each_stream_is_scored_as_one_call_from_zeros(tiny):
    """137 predictions in 4 streams of ceil(137 / 4) = 35 (the last one 32), fed 5 at a time."""
    result = tiny.scorer(IDS, batch_size=4, seq_len=5, carry_state=True)
    x = IDS[:-1]
    per_stream = [
        tiny.nats(np.append(x[r : r + 35], IDS[min(r + 35, len(x))])) for r in range(0, len(x), 35)
    ]
    assert [len(n) for n in per_stream] == [35, 35, 35, 32]
    assert result["nats_per_char"] == pytest.approx(np.concatenate(per_stream).mean(), rel=RTOL)


@pytest.mark.parametrize("seq_len", [5, 16])
def test_reset_state_scores_each_window_independently_from_zeros(tiny, seq_len):
    result = tiny.scorer(IDS, batch_size=1, seq_len=seq_len, carry_state=False)
    windows = [tiny.nats(IDS[i : i + seq_len + 1]) for i in range(0, len(IDS) - 1, seq_len)]
    assert sum(len(w) for w in windows) == len(IDS) - 1
    assert result["nats_per_char"] == pytest.approx(np.concatenate(windows).mean(), rel=RTOL)


def test_resetting_the_state_loses_the_context_carrying_keeps(tiny):
    carried = tiny.scorer(IDS, batch_size=1, seq_len=5, carry_state=True)["nats_per_char"]
    reset = tiny.scorer(IDS, batch_size=1, seq_len=5, carry_state=False)["nats_per_char"]
    assert reset != pytest.approx(carried, rel=RTOL)


class Bigram:
    """A LanguageModel whose prediction depends only on the current character (its state
    passes through unchanged): its score is the same however the text is cut, so any
    character scored twice, skipped or padded in would show."""

    vocab_size = len(VOCAB)
    state_shapes = [(1,)]
    weights_suffix = ""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.table = rng.normal(0, 2, (self.vocab_size, self.vocab_size)).astype(np.float32)

    def initial_state(self, batch_size):
        return [tf.zeros([batch_size, 1])]

    def __call__(self, ids, state, training=False):
        return tf.gather(tf.constant(self.table), ids), state

    def expected(self, ids) -> float:
        logits = self.table[ids[:-1]].astype(np.float64)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return float(-log_probs[np.arange(len(ids) - 1), ids[1:]].mean())


@pytest.mark.parametrize(
    "batch_size, seq_len",
    [(1, 1000), (1, 1), (2, 10), (4, 7), (8, 3), (64, 256), (137, 1), (500, 1)],
)
def test_every_character_is_scored_exactly_once_however_the_text_is_cut(batch_size, seq_len):
    bigram = Bigram()
    for carry_state in (True, False):
        result = Scorer(bigram)(
            IDS, batch_size=batch_size, seq_len=seq_len, carry_state=carry_state
        )
        assert result["chars"] == len(IDS) - 1
        assert result["nats_per_char"] == pytest.approx(bigram.expected(IDS), rel=RTOL)


def test_two_characters_are_the_shortest_text_that_can_be_scored():
    bigram = Bigram()
    result = score(bigram, IDS[:2])
    assert result["chars"] == 1
    assert result["nats_per_char"] == pytest.approx(bigram.expected(IDS[:2]), rel=RTOL)


@pytest.mark.parametrize("ids", [IDS[:1], IDS[:0]])
def test_text_too_short_to_score_is_a_clear_error(ids):
    message = error(score, Bigram(), ids)
    assert "too short to score" in message and "at least 2 characters" in message


def test_a_scorer_can_be_reused_on_texts_of_other_lengths(tiny):
    for n in (40, 138, 17):
        expected = tiny.nats(IDS[:n]).mean()
        assert tiny.scorer(IDS[:n], batch_size=1, seq_len=16)["nats_per_char"] == pytest.approx(
            expected, rel=RTOL
        )


def test_a_memory_mapped_id_file_scores_as_the_array_does(tiny, tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, IDS.astype(np.uint8))  # as charlm.text.idfile writes a small vocabulary's ids
    mapped = np.load(path, mmap_mode="r")
    for carry_state in (True, False):
        got = tiny.scorer(mapped, batch_size=4, seq_len=9, carry_state=carry_state)
        want = tiny.scorer(IDS, batch_size=4, seq_len=9, carry_state=carry_state)
        assert got["nats_per_char"] == pytest.approx(want["nats_per_char"], rel=RTOL)
