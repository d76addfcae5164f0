"""The transformer family (charlm.models.gpt): its state is a key/value ring of the last
``context`` characters, so a window, its characters one at a time and its chunks all give the
same logits, also past the context; it saves to a .keras file that loads in safe mode."""

import json
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from charlm.models.families import family
from charlm.models.lm import build_model, load_model
from charlm.options.config import Config
from charlm.training.step import uses_xla

CFG = Config(model="gpt", layers=2, units=32, heads=4, context=8, seed=1)
VOCAB = 20
ROWS, STEPS = 3, 30  # STEPS: past the context, several times over
ATOL = 1e-5


@pytest.fixture(scope="module")
def model():
    return build_model(CFG, VOCAB)


@pytest.fixture(scope="module")
def ids():
    return tf.constant(np.random.default_rng(0).integers(0, VOCAB, (ROWS, STEPS)), tf.int32)


def test_the_state_is_the_tables_shapes_a_ring_per_block_and_the_position(model):
    assert model.state_shapes == family("gpt").state(CFG)
    assert model.state_shapes == [(4, 8, 8)] * 4 + [()]
    assert [tuple(s.shape) for s in model.initial_state(5)] == [(5, 4, 8, 8)] * 4 + [(5,)]


def test_the_weight_count_is_the_tables(model):
    assert model.count_params() == family("gpt").params(CFG, VOCAB, CFG.layers, CFG.units)


def test_one_character_at_a_time_gives_the_windows_logits_past_the_context(model, ids):
    whole, after_whole = model(ids, model.initial_state(ROWS))
    state, logits = model.initial_state(ROWS), []
    for t in range(STEPS):
        out, state = model.step(ids[:, t], state)
        logits.append(out)
    np.testing.assert_allclose(tf.stack(logits, 1), whole, atol=ATOL)
    for a, b in zip(state, after_whole, strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL)
    assert state[-1].numpy().tolist() == [STEPS] * ROWS  # each row's position


def test_a_fresh_window_gives_the_logits_and_gradients_from_an_empty_ring(ids):
    """What a training step from a zero state computes (model.fresh: no ring read or
    written), windows longer than the context included. (With dropout the two draw
    different masks: the attention's weights have the ring's slots in one and not the
    other.)"""
    cfg = CFG.replace(seed=3)
    model = build_model(cfg, VOCAB)
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        ring, _ = model(ids, model.initial_state(ROWS), training=True)
        ring_sum = tf.reduce_sum(ring * ring)
    twin = build_model(cfg, VOCAB)  # the same seeds: the same weights and dropout draws
    with tf.GradientTape() as twin_tape:
        fresh = twin.fresh(ids, training=True)
        fresh_sum = tf.reduce_sum(fresh * fresh)
    np.testing.assert_allclose(fresh, ring, atol=ATOL)
    grads = zip(
        tape.gradient(ring_sum, variables),
        twin_tape.gradient(fresh_sum, twin.trainable_variables),
        strict=True,
    )
    for a, b in grads:
        a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
        np.testing.assert_allclose(b, a, atol=ATOL * (1 + float(tf.reduce_max(tf.abs(a)))))


@pytest.mark.parametrize("size", [1, 5, 8, 13])
def test_chunks_with_the_state_carried_give_the_windows_logits(model, ids, size):
    whole, _ = model(ids, model.initial_state(ROWS))
    state, logits = model.initial_state(ROWS), []
    for start in range(0, STEPS, size):
        out, state = model(ids[:, start : start + size], state)
        logits.append(out)
    np.testing.assert_allclose(tf.concat(logits, 1), whole, atol=ATOL)


@pytest.mark.parametrize("layers", [1, 2])
def test_a_character_sees_the_context_of_each_block_below_it(ids, layers):
    """A block attends to the last ``context`` characters of the block below: a character
    ``layers * (context - 1)`` places back changes the logits, one place further does not."""
    model = build_model(CFG.replace(layers=layers), VOCAB)
    whole, _ = model(ids, model.initial_state(ROWS))
    t, reach = 25, layers * (CFG.context - 1)
    for back, changes in ((reach + 1, False), (reach, True)):
        edited = ids.numpy().copy()
        edited[:, t - back] = (edited[:, t - back] + 1) % VOCAB
        out, _ = model(tf.constant(edited), model.initial_state(ROWS))
        differs = not np.allclose(out[:, t], whole[:, t], atol=ATOL)
        assert differs == changes, back


def test_rows_at_different_positions_share_a_batch(model, ids):
    """A row that joins a batch late (the server's batcher) sees only its own characters."""
    state = model.initial_state(1)
    _, state = model(ids[:1, :11], state)  # row 0 has seen 11 characters
    joined = [tf.concat([a, b], 0) for a, b in zip(state, model.initial_state(1), strict=True)]
    together, _ = model(tf.stack([ids[0, 11:15], ids[1, :4]]), joined)
    alone, _ = model(ids[1:2, :4], model.initial_state(1))
    np.testing.assert_allclose(together[1], alone[0], atol=ATOL)


def test_the_keras_file_loads_in_safe_mode_with_the_same_logits(model, ids, tmp_path):
    path = tmp_path / "best.keras"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    assert "lambda" not in json.dumps(config).lower()
    loaded = load_model(CFG, VOCAB, path)
    a, _ = model(ids, model.initial_state(ROWS))
    b, _ = loaded(ids, loaded.initial_state(ROWS))
    np.testing.assert_array_equal(a, b)


def test_in_bfloat16_it_trains_and_generates_in_float32_with_the_same_weights(ids):
    bf16 = build_model(CFG.replace(precision="mixed_bfloat16"), VOCAB)
    f32 = bf16.in_float32()
    assert f32 is not bf16 and type(f32) is type(bf16)
    for a, b in zip(bf16.trainable_variables, f32.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    rough, _ = bf16(ids, bf16.initial_state(ROWS))
    exact, _ = f32(ids, f32.initial_state(ROWS))
    np.testing.assert_allclose(rough, exact, atol=0.1)


@pytest.mark.parametrize(
    ("settings", "xla"),
    [
        ({"time_budget": "20m"}, True),
        ({}, False),  # no budget: the run may be as short as a test's
        ({"time_budget": "90s"}, False),  # compiling costs more than it wins back
        ({"precision": "mixed_bfloat16"}, False),  # never measured under XLA
        ({"model": "lstm"}, False),  # charlm's fast cells ran slower under XLA
    ],
)
def test_the_transformers_float32_step_is_compiled_with_xla_where_it_pays(settings, xla):
    assert uses_xla(CFG.replace(**settings)) == xla
