"""Generation: how the next character is drawn from the logits (temperature, top-k, top-p,
greedy, seeds), and the Generator around a model (prefix warm-up, batching, streaming)."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_close, error

from charlm.errors import CharLMError
from charlm.models.lm import build_model
from charlm.options.config import Config
from charlm.options.sampling import PENALTY_WINDOW, SamplingOptions
from charlm.text.vocab import Vocab
from charlm.use.draw import PARTIAL, penalised, sample_next, uniforms
from charlm.use.generate import Generator
from charlm.use.loop import CHUNK, ROW_DTYPES, Batch

DRAWS = 20_000  # independent draws per distribution: one row each, in one call


def draw(
    logits,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    greedy=False,
    seed=(1, 0),
    rows=DRAWS,
    xla=False,
    min_p=0.0,
):
    """Ids drawn by sample_next from ``rows`` copies of the 1-D ``logits`` (or from a given
    2-D batch when ``rows`` is None); compiled by XLA, as generation runs it, if ``xla``."""
    logits = tf.constant(logits, tf.float32)
    if rows is not None:
        logits = tf.tile(logits[None, :], [rows, 1])
    fn = tf.function(sample_next, jit_compile=True) if xla else sample_next
    b = logits.shape[0]  # every row the same options; seed = (the seed, the position)
    rows = {
        "temperature": tf.fill([b], float(temperature)),
        "top_k": tf.fill([b], int(top_k)),
        "top_p": tf.fill([b], float(top_p)),
        "min_p": tf.fill([b], float(min_p)),
        "greedy": tf.fill([b], bool(greedy)),
        "seed": tf.fill([b], tf.constant(seed[0], tf.int64)),
        "index": tf.range(b, dtype=tf.int64),
    }
    ids = fn(logits, rows, tf.fill([b], tf.constant(seed[1], tf.int64)))
    return ids.numpy()


def frequencies(ids, size):
    return np.bincount(ids, minlength=size) / len(ids)


def softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def assert_drawn_from(ids, probs):
    """The frequencies of ``ids`` match ``probs`` within 5 binomial standard deviations."""
    probs = np.asarray(probs, np.float64)
    freq = frequencies(ids, len(probs))
    std = np.sqrt(probs * (1 - probs) / len(ids))
    assert np.all(np.abs(freq - probs) <= 5 * std + 1e-12), (freq, probs)


def drawn_set(ids):
    return set(np.unique(ids).tolist())


LOGITS = np.array([0.0, 1.0, 3.0, 2.5, -1.0])  # argmax 2, then 3, 1, 0, 4


# -- sample_next on fixed logits ---------------------------------------------------------------


def test_greedy_takes_the_argmax_of_every_row_whatever_the_filters_and_seed():
    batch = np.array([LOGITS, LOGITS[::-1], [5.0, 0, 0, 0, 0]])
    for top_k, top_p, seed in [(0, 1.0, (1, 0)), (1, 0.1, (7, 3)), (3, 0.5, (2, 2))]:
        ids = draw(
            batch, temperature=0.3, top_k=top_k, top_p=top_p, greedy=True, seed=seed, rows=None
        )
        assert ids.tolist() == [2, 2, 0]


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 10.0])
def test_temperature_samples_from_the_softmax_of_the_logits_over_t(temperature):
    ids = draw(LOGITS, temperature=temperature)
    assert_drawn_from(ids, softmax(LOGITS / temperature))


def test_a_temperature_near_zero_always_takes_the_argmax():
    assert drawn_set(draw(LOGITS, temperature=0.01)) == {2}  # the runner-up is 0.5 / 0.01 behind


def test_the_argmax_gets_likelier_as_the_temperature_falls():
    share = [frequencies(draw(LOGITS, temperature=t), 5)[2] for t in (10.0, 2.0, 1.0, 0.5, 0.1)]
    assert share == sorted(share) and share[-1] > 0.99


def test_a_high_temperature_flattens_the_distribution_towards_uniform():
    ids = draw(LOGITS, temperature=1000.0)
    assert_drawn_from(ids, np.full(5, 0.2))


@pytest.mark.parametrize("k, kept", [(1, {2}), (2, {2, 3}), (3, {1, 2, 3})])
def test_top_k_never_samples_outside_the_k_largest_logits(k, kept):
    ids = draw(LOGITS, temperature=2.0, top_k=k)
    assert drawn_set(ids) == kept


def test_top_k_samples_the_kept_logits_in_their_softmax_proportions():
    ids = draw(LOGITS, top_k=3)
    probs = softmax(LOGITS)
    probs[[0, 4]] = 0
    assert_drawn_from(ids, probs / probs.sum())


def test_top_k_at_or_above_the_vocabulary_size_keeps_every_character():
    assert drawn_set(draw(LOGITS, temperature=5.0, top_k=5)) == set(range(5))
    assert drawn_set(draw(LOGITS, temperature=5.0, top_k=50)) == set(range(5))


def logits_of(probs):
    return np.log(np.asarray(probs, np.float64))


# the kept set of each top-p is the smallest most-likely set whose mass reaches p; the values of
# p are chosen off the exact sums (0.5, 0.8, 0.95), which float rounding may put on either side
@pytest.mark.parametrize(
    "top_p, kept",
    [
        (0.05, {0}),  # the most likely character is always kept
        (0.45, {0}),  # 0.5 >= 0.45
        (0.55, {0, 1}),  # 0.5 < 0.55 <= 0.5 + 0.3
        (0.79, {0, 1}),
        (0.81, {0, 1, 2}),  # 0.8 < 0.81 <= 0.95
        (0.96, {0, 1, 2, 3}),  # 0.95 < 0.96
    ],
)
def test_top_p_keeps_the_smallest_set_of_likeliest_characters_whose_mass_reaches_p(top_p, kept):
    ids = draw(logits_of([0.5, 0.3, 0.15, 0.05]), top_p=top_p)
    assert drawn_set(ids) == kept


def test_top_p_does_not_depend_on_the_order_of_the_characters():
    ids = draw(logits_of([0.05, 0.3, 0.15, 0.5]), top_p=0.81)
    assert drawn_set(ids) == {1, 2, 3}


def test_top_p_keeps_every_character_tied_with_the_last_one_it_needs():
    # p = 0.5 needs 0.4 and one 0.2; the two other 0.2s are just as likely, so they stay too
    assert drawn_set(draw(logits_of([0.4, 0.2, 0.2, 0.2]), top_p=0.5)) == {0, 1, 2, 3}


def test_top_p_keeps_a_tie_inside_the_set_and_drops_what_follows_it():
    assert drawn_set(draw(logits_of([0.3, 0.3, 0.2, 0.2]), top_p=0.5)) == {0, 1}


def test_top_p_samples_the_kept_characters_in_their_renormalised_proportions():
    ids = draw(logits_of([0.5, 0.3, 0.15, 0.05]), top_p=0.81)
    assert_drawn_from(ids, np.array([0.5, 0.3, 0.15, 0.0]) / 0.95)


def test_top_p_of_one_is_off_and_keeps_even_the_rarest_character():
    probs = [0.7, 0.2, 0.095, 0.005]  # the last one lies after 0.995 of the mass
    assert_drawn_from(draw(logits_of(probs), top_p=1.0), probs)
    assert drawn_set(draw(logits_of(probs), top_p=0.99)) == {0, 1, 2}


def test_top_p_applies_to_the_distribution_after_the_temperature():
    logits = logits_of([0.5, 0.3, 0.15, 0.05])  # at T = 0.5: ~[0.685, 0.247, 0.062, 0.007]
    assert drawn_set(draw(logits, temperature=1.0, top_p=0.6)) == {0, 1}
    assert drawn_set(draw(logits, temperature=0.5, top_p=0.6)) == {0}
    assert drawn_set(draw(logits, temperature=1.0, top_p=0.9)) == {0, 1, 2}
    assert drawn_set(draw(logits, temperature=0.5, top_p=0.9)) == {0, 1}


# -- a vocabulary larger than what the filters read first (PARTIAL logits) ------------------------

BIG = 4 * PARTIAL
ORDER = np.random.default_rng(3).permutation(BIG)  # ORDER[r]: the id of rank r


def ranked(logits_by_rank):
    """Logits whose r-th largest (of ``logits_by_rank``, descending) sits at id ORDER[r]."""
    out = np.empty(BIG)
    out[ORDER] = logits_by_rank
    return out


def ranks(ids):
    return np.argsort(ORDER)[ids]


FLAT = ranked(np.linspace(0.0, -1.0, BIG))  # every id likely, the ranks in order


@pytest.mark.parametrize("xla", [False, True])
@pytest.mark.parametrize("top_k", [5, PARTIAL + 44])  # within the PARTIAL read first, and past
def test_top_k_in_a_large_vocabulary_keeps_exactly_the_k_largest(top_k, xla):
    drawn = ranks(draw(FLAT, top_k=top_k, xla=xla))
    assert drawn.max() == top_k - 1 and set(drawn.tolist()) == set(range(top_k))


@pytest.mark.parametrize("xla", [False, True])
def test_top_p_in_a_large_vocabulary_within_the_first_logits_read(xla):
    probs = np.r_[0.5, 0.3, 0.15, np.full(BIG - 3, 0.05 / (BIG - 3))]
    assert set(ranks(draw(ranked(np.log(probs)), top_p=0.81, xla=xla)).tolist()) == {0, 1, 2}


@pytest.mark.parametrize("xla", [False, True])
def test_top_p_in_a_large_vocabulary_reaching_past_the_first_logits_read(xla):
    probs = softmax(np.linspace(0.0, -1.0, BIG))
    nucleus = int(np.sum(np.cumsum(probs) - probs < 0.5))  # ranks whose mass before is < p
    assert nucleus > PARTIAL + 50
    drawn = ranks(draw(FLAT, top_p=0.5, xla=xla))
    assert abs(int(drawn.max()) + 1 - nucleus) <= 1  # float32 may round the boundary either way
    assert len(set(drawn.tolist())) >= nucleus - 1


def test_the_same_seed_gives_the_same_ids_and_another_seed_other_ids():
    uniform = np.zeros(10)
    first = draw(uniform, seed=(5, 0), rows=1000)
    np.testing.assert_array_equal(draw(uniform, seed=(5, 0), rows=1000), first)
    assert (draw(uniform, seed=(6, 0), rows=1000) != first).mean() > 0.5
    assert (draw(uniform, seed=(5, 1), rows=1000) != first).mean() > 0.5  # the position counts


# -- the Generator, with a tiny untrained model ---------------------------------------------------

TEXT = "hello world, the cat sat on the mat\n"


@pytest.fixture(scope="module")
def generator():
    vocab = Vocab.from_text(TEXT)
    model = build_model(
        Config(model="gru", layers=1, units=16, embedding_dim=8, seed=1), len(vocab)
    )
    return Generator(model, vocab)


def test_a_prompt_longer_than_a_warm_up_piece_is_fed_in_pieces_to_the_same_state(generator):
    pieces = Generator(generator.model, generator.vocab, warm_piece=7)
    ids = np.random.default_rng(0).integers(1, len(generator.vocab), (2, 3 * 7 + 5))
    ids = ids.astype(np.int32)
    fed = pieces.feed(ids)
    logits, state = generator.model(tf.constant(ids), generator.model.initial_state(2))
    whole = [logits[:, -1].numpy(), *(s.numpy() for s in state)]
    for got, want in zip(fed, whole, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "length, chunk",
    [
        (25, 1),
        (25, 7),
        (25, 25),
        (CHUNK + 90, 64),
        (CHUNK + 90, CHUNK + 40),  # several calls of the compiled loop
    ],
)
def test_streamed_chunks_join_to_the_same_text_as_one_call(generator, length, chunk):
    options = dict(temperature=1.5, top_k=8, seed=11)
    whole = generator.generate(["the", "cat"], length=length, num_samples=2, **options)
    options = SamplingOptions(length=length, **options)
    pieces = list(generator.stream(["the", "cat"], options, num_samples=2, chunk=chunk))
    assert [len(p[0]) for p in pieces[1:]] == [chunk] * (length // chunk) + (
        [length % chunk] if length % chunk else []
    )
    assert ["".join(parts) for parts in zip(*pieces, strict=True)] == whole
    assert [len(t) for t in whole] == [3 + length] * 4


def test_the_first_yield_is_the_prefixes_one_per_sample(generator):
    stream = generator.stream(["the", "cat"], SamplingOptions(length=10, seed=1), num_samples=2)
    assert next(stream) == ["the", "the", "cat", "cat"]


def test_num_samples_gives_that_many_samples_per_prefix_each_starting_with_it(generator):
    texts = generator.generate(["the", "mat"], length=30, num_samples=3, seed=4)
    assert len(texts) == 6
    assert [t[:3] for t in texts] == ["the"] * 3 + ["mat"] * 3
    assert all(len(t) == 33 for t in texts)
    assert len(set(texts[:3])) == 3  # the rows of one prefix are drawn independently


def test_the_same_seed_gives_the_same_text_and_another_seed_another(generator):
    first = generator.generate("the", length=40, seed=3)
    assert generator.generate("the", length=40, seed=3) == first
    assert generator.generate("the", length=40, seed=4) != first


def test_each_distinct_prefix_is_warmed_once(generator):
    warmed = []
    warm = generator.warm

    def counting_warm(ids, state):
        warmed.extend(generator.vocab.decode(row) for row in ids.numpy())
        return warm(ids, state)

    generator.warm = counting_warm
    try:
        generator.generate(["the", "cat", "the", "the"], length=5, num_samples=3, seed=1)
    finally:
        generator.warm = warm
    assert warmed == ["the", "cat"]


def test_prefixes_fed_together_end_where_each_fed_alone_ends(generator):
    prefixes = ["the cat", "a", "the mat sat", "the cat", "on"]  # lengths 7, 1, 11, 7, 2
    encoded = generator.encode_prefixes(prefixes)
    together = {}
    generator.feed_together(encoded, together)
    assert len(together) == 4  # "the cat" fed once
    for ids in encoded:
        alone = generator.feed(ids[None, :])
        assert [a.shape for a in together[ids.tobytes()]] == [a.shape for a in alone]
        for got, want in zip(together[ids.tobytes()], alone, strict=True):
            assert_close(got, want)


def test_prefixes_fed_together_are_not_fed_again_by_start(generator):
    warmed, calls = {}, []
    generator.feed_together(generator.encode_prefixes(["the", "mat"]), warmed)
    warm = generator.warm

    def counting_warm(ids, state):
        calls.append(ids.numpy())
        return warm(ids, state)

    generator.warm = counting_warm
    try:
        rows = generator.start(["mat", "the"], SamplingOptions(length=5, seed=2), warmed=warmed)
    finally:
        generator.warm = warm
    assert calls == [] and rows.prefixes == ["mat", "the"]
    mat, the = (warmed[ids.tobytes()][0] for ids in generator.encode_prefixes(["mat", "the"]))
    np.testing.assert_array_equal(rows.batch.logits, np.concatenate([mat, the]))


def test_identical_prefixes_give_identical_rows_with_greedy(generator):
    texts = generator.generate(["the", "cat", "the"], length=30, num_samples=2, greedy=True)
    alone = generator.generate(["the"], length=30, greedy=True)[0]
    assert texts[0] == texts[1] == texts[4] == texts[5] == alone
    assert texts[2] == texts[3] != alone


def test_no_prefix_starts_from_the_vocabularys_first_character(generator):
    texts = generator.generate(None, length=5, seed=1)
    assert len(texts) == 1 and texts[0][0] == generator.vocab.chars[1] == "\n"


def test_length_zero_gives_back_the_prefixes(generator):
    assert generator.generate(["the", "cat"], length=0) == ["the", "cat"]


def test_a_prefix_with_characters_the_model_never_saw_warns_naming_them(generator):
    warnings = []
    texts = generator.generate(["thé €"], length=5, seed=1, warn=warnings.append)
    assert len(warnings) == 1
    assert "'thé €'" in warnings[0] and "'é', '€'" in warnings[0] and "<unk>" in warnings[0]
    assert texts[0].startswith("thé €")  # the prefix is given back as typed


def test_known_prefixes_do_not_warn(generator):
    warnings = []
    generator.generate(["the cat"], length=5, seed=1, warn=warnings.append)
    assert warnings == []


def test_an_empty_prefix_is_a_clear_error(generator):
    message = error(generator.generate, ["the", ""], length=5)
    assert "prefix must not be empty" in message


@pytest.mark.parametrize(
    "options, words",
    [
        (dict(temperature=-1.0), ["temperature must be 0 (greedy) or more"]),
        (dict(temperature=float("nan")), ["temperature must be 0 (greedy) or more"]),
        (dict(top_p=0.0), ["top_p must be in (0, 1]"]),
        (dict(top_p=1.5), ["top_p must be in (0, 1]"]),
        (dict(top_k=-2), ["top_k must be 0 or -1 (off) or a whole number"]),
        (dict(top_k=2**31), ["top_k must be 0 or -1 (off) or a whole number"]),
        (dict(length=-1), ["length must be a whole number from 0"]),
        (dict(seed=-1), ["seed must be a whole number from 0 to 2**63-1"]),
        (dict(seed=2**63), ["seed must be a whole number from 0 to 2**63-1"]),
        (dict(stop=("",)), ["stop must be non-empty text"]),
        (dict(num_samples=0), ["num_samples must be at least 1"]),
    ],
)
def test_bad_options_are_a_clear_error(generator, options, words):
    options = {"length": 5, **options}
    message = error(generator.generate, ["the"], **options)
    assert all(w in message for w in words), message


def test_a_temperature_of_zero_is_greedy(generator):
    assert generator.generate(["the"], length=20, temperature=0.0) == generator.generate(
        ["the"], length=20, greedy=True
    )


def test_a_sample_ends_before_its_first_stop_string(generator):
    free = generator.generate(["the"], length=40, seed=3)[0][3:]
    stop = free[10:12]
    first = free.find(stop)
    stopped = generator.generate(["the"], length=40, seed=3, stop=(stop, "never seen"))[0]
    assert stopped == "the" + free[:first]


def test_greedy_ignores_the_temperature_and_filters(generator):
    greedy = generator.generate(["the"], length=20, greedy=True)
    assert (
        generator.generate(["the"], length=20, greedy=True, temperature=0.0, top_p=0.0, seed=9)
        == greedy
    )


def test_errors_come_before_the_first_yield(generator):
    with pytest.raises(CharLMError):
        next(generator.stream([""], SamplingOptions(length=5)))


# -- per-row options and randomness: rows of different calls share one batch --------------------


def test_each_row_draws_with_its_own_options_whatever_shares_the_batch():
    logits = tf.constant(np.tile(LOGITS, (4, 1)), tf.float32)
    rows = dict(
        temperature=[1.0, 0.0, 2.0, 1.0],
        top_k=[0, 0, 1, 2],
        top_p=[1.0, 1.0, 1.0, 0.3],
        min_p=[0.0, 0.0, 0.0, 0.2],
        greedy=[False, True, False, False],
        seed=[3, 3, 8, 9],
        index=[0, 1, 0, 5],
    )
    args = {k: tf.constant(v, ROW_DTYPES[k]) for k, v in rows.items()}
    position = tf.constant([0, 4, 7, 2], tf.int64)
    together = sample_next(logits, args, position).numpy()
    alone = [
        sample_next(
            logits[i : i + 1], {k: a[i : i + 1] for k, a in args.items()}, position[i : i + 1]
        ).numpy()[0]
        for i in range(4)
    ]
    assert together.tolist() == alone
    assert together[1:3].tolist() == [2, 2]  # greedy, and top-k 1: the argmax


def test_the_uniforms_are_splitmix64_of_seed_index_and_position():
    """The hash written out in Python integers: a row's draw is a function of these three."""
    mask = 2**64 - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    def step(z, n):
        return mix((z + 0x9E3779B97F4A7C15 * (n + 1)) & mask)

    cases = [(5, 0, 0), (5, 1, 0), (2**63 - 1, 3, 7), (0, 0, 2**40)]
    expected = [(step(step(s, i), p) >> 40) / 2**24 for s, i, p in cases]
    seed, index, position = (tf.constant(c, tf.int64) for c in zip(*cases, strict=True))
    for fn in (uniforms, tf.function(uniforms, jit_compile=True)):
        assert fn(seed, index, position).numpy().tolist() == expected


def test_the_uniforms_are_spread_evenly():
    u = uniforms(
        tf.fill([50_000], tf.constant(9, tf.int64)),
        tf.zeros([50_000], tf.int64),
        tf.range(50_000, dtype=tf.int64),
    ).numpy()
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - 5_000) < 5 * np.sqrt(5_000 * 0.9))


def test_rows_of_two_calls_run_in_one_padded_batch_give_each_calls_own_text(generator):
    """What a server does: two calls' rows joined, padded, run together, split again."""
    calls = [
        (["the"], SamplingOptions(length=40, temperature=1.5, top_k=8, seed=11), 2),
        (["cat", "mat"], SamplingOptions(length=40, top_p=0.8, seed=3), 1),
    ]
    alone = [generator.generate(p, num_samples=n, options=o) for p, o, n in calls]
    rows = [generator.start(p, o, n) for p, o, n in calls]
    texts = [list(r.prefixes) for r in rows]
    while not all(r.done for r in rows):
        batch = Batch.join([r.batch for r in rows])
        drawn = batch.run(generator.loop, 16, size=8)  # 4 rows padded to 8
        start = 0
        for r, t in zip(rows, texts, strict=True):
            r.batch = batch.part(start, start + len(r.prefixes))
            t[:] = [
                a + b
                for a, b in zip(t, r.take(drawn.part(start, start + len(r.prefixes))), strict=True)
            ]
            start += len(r.prefixes)
    assert texts == alone


# -- penalties and min-p, against plain NumPy ----------------------------------------------------


def penalised_reference(logits, counts, repetition, frequency, presence):
    """The penalties written out in NumPy, one row: CTRL's division (multiplication for a
    negative logit) for a character seen, then OpenAI's count and presence terms."""
    out = logits.copy()
    seen = counts > 0
    out[seen] = np.where(out[seen] > 0, out[seen] / repetition, out[seen] * repetition)
    return out - frequency * counts - presence * seen


def test_the_penalties_are_ctrls_and_openais_rules():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (6, 40)).astype(np.float32)
    counts = rng.integers(0, 4, (6, 40)).astype(np.float32) * (rng.random((6, 40)) < 0.3)
    rows = {
        "repetition_penalty": np.array([1.0, 1.3, 0.7, 2.0, 1.0, 1.1], np.float32),
        "frequency_penalty": np.array([0.0, 0.5, -0.5, 2.0, 0.0, -2.0], np.float32),
        "presence_penalty": np.array([0.0, 0.2, 1.0, -1.0, 0.0, 2.0], np.float32),
    }
    got = penalised(
        tf.constant(logits), tf.constant(counts), {k: tf.constant(v) for k, v in rows.items()}
    )
    want = [
        penalised_reference(logits[r], counts[r], *(rows[k][r] for k in rows)) for r in range(6)
    ]
    np.testing.assert_allclose(got.numpy(), np.stack(want), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got.numpy()[[0, 4]], logits[[0, 4]])  # neutral: unchanged


@pytest.mark.parametrize("xla", [False, True])
def test_min_p_keeps_the_characters_that_likely_relative_to_the_likeliest(xla):
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum()
    kept = probs >= 0.2 * probs.max()  # ids 2 and 3: id 1 is e^-2 = 0.14 as likely as id 2
    ids = draw(LOGITS, min_p=0.2, xla=xla)
    want = np.where(kept, probs, 0) / probs[kept].sum()
    np.testing.assert_allclose(frequencies(ids, len(LOGITS)), want, atol=0.015)
    assert set(np.unique(ids)) == set(np.flatnonzero(kept))


def test_the_penalties_count_the_last_window_of_generated_characters(generator):
    """Greedy generation with every penalty on, 3x the window long, step by step in NumPy
    from the model's own logits: the same characters (so the window slides as documented:
    the last PENALTY_WINDOW generated, the prefix not counted)."""
    options = SamplingOptions(
        length=3 * PENALTY_WINDOW,
        greedy=True,
        repetition_penalty=1.5,
        frequency_penalty=0.3,
        presence_penalty=0.4,
        seed=1,
    )
    text = generator.generate(["the "], options=options)[0][4:]
    logits, *state = generator.feed(generator.vocab.encode("the ")[None, :].astype(np.int32))
    generated: list[int] = []
    for _ in range(options.length):
        counts = np.bincount(generated[-PENALTY_WINDOW:], minlength=len(generator.vocab))
        scores = penalised_reference(logits[0], counts.astype(np.float32), 1.5, 0.3, 0.4)
        generated.append(int(np.argmax(scores)))
        out, state = generator.model.step(tf.constant(generated[-1:]), state)
        logits = out.numpy()
    assert text == generator.vocab.decode(np.array(generated))
    assert len(set(text)) > 3  # the penalties made it move on (an untrained model repeats)


@pytest.mark.parametrize("piece, calls", [(1, 69), (7, 12), (None, 3), (lambda: 7, 12)])
def test_prompts_fed_in_pieces_end_where_fed_whole(generator, piece, calls):
    """What a server does with a long prompt (its warm-up between the streams' turns): the
    state and logits after pieces of any size are the whole prompt's, up to float rounding."""
    prompts = ["the cat sat on the mat " * 3, "a", "on the mat"]
    encoded = [generator.vocab.encode(p).astype(np.int32) for p in prompts]
    warmed: dict = {}
    # lengths 69, 1 and 10: with pieces of 7, calls end at 1, 8, 10, 17, 24 ... 66, 69
    # (it yields between calls, and the last call ends it)
    assert sum(1 for _ in generator.feeding(encoded, warmed, piece)) == calls - 1
    for ids in encoded:
        whole = generator.feed(ids[None, :])
        for got, want in zip(warmed[ids.tobytes()], whole, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
