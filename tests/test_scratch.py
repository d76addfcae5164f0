"""Specification of charlm.models.scratch (RNN/GRU/LSTM from their equations) and charlm.training.clipping."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_close

from charlm.models.scratch import GRUCell, LSTMCell, RNNCell, ScratchLM
from charlm.training.clipping import clip_by_global_norm

SHAPES = [(1, 1, 3, 4), (3, 7, 5, 8), (2, 20, 16, 32)]  # B, T, D, H


# --------------------------------------------------------------------------------------------
# Equivalence with Keras: same weights -> same outputs, final states and gradients.
# --------------------------------------------------------------------------------------------


def _slices(n, u):
    return [slice(i * u, (i + 1) * u) for i in range(n)]


def _rnn_map(c, u):
    """(keras weight index, numpy index into that weight, math-named variable)."""
    return [(0, np.s_[:], c.W_xh), (1, np.s_[:], c.W_hh), (2, np.s_[:], c.b_h)]


def _lstm_map(c, u):
    out = []
    for s, (W_x, W_h, b) in zip(
        _slices(4, u),
        [
            (c.W_xi, c.W_hi, c.b_i),
            (c.W_xf, c.W_hf, c.b_f),
            (c.W_xc, c.W_hc, c.b_c),
            (c.W_xo, c.W_ho, c.b_o),
        ],
        strict=True,
    ):
        out += [(0, np.s_[:, s], W_x), (1, np.s_[:, s], W_h), (2, np.s_[s], b)]
    return out


def _gru_map(c, u):
    out = []
    gates = [(c.W_xz, c.W_hz, c.b_z), (c.W_xr, c.W_hr, c.b_r), (c.W_xh, c.W_hh, c.b_h)]
    for s, (W_x, W_h, b) in zip(_slices(3, u), gates, strict=True):
        out += [(0, np.s_[:, s], W_x), (1, np.s_[:, s], W_h)]
        if c.reset_after:  # z and r: input and recurrent bias are both the one b in the math
            out += [(2, np.s_[0, s], b), (2, np.s_[1, s], c.b_hh if b is c.b_h else b)]
        else:
            out += [(2, np.s_[s], b)]
    return out


CASES = {
    "rnn": (
        lambda h: keras.layers.SimpleRNN(h, return_sequences=True, return_state=True),
        lambda d, h: RNNCell(d, h),
        _rnn_map,
    ),
    "lstm": (
        lambda h: keras.layers.LSTM(h, return_sequences=True, return_state=True),
        lambda d, h: LSTMCell(d, h),
        _lstm_map,
    ),
    "gru_reset_after": (
        lambda h: keras.layers.GRU(h, return_sequences=True, return_state=True),
        lambda d, h: GRUCell(d, h, reset_after=True),
        _gru_map,
    ),
    "gru_d2l": (
        lambda h: keras.layers.GRU(h, return_sequences=True, return_state=True, reset_after=False),
        lambda d, h: GRUCell(d, h, reset_after=False),
        _gru_map,
    ),
}


def _pair(kind, B, T, D, H, seed=0):
    """A Keras layer with random weights, the scratch cell loaded from it, inputs, states."""
    make_keras, make_cell, weight_map = CASES[kind]
    rng = np.random.default_rng(seed)
    layer = make_keras(H)
    layer.build((None, None, D))
    layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in layer.get_weights()])
    cell = make_cell(D, H)
    cell.load_keras_weights(layer)
    X = tf.constant(rng.normal(0, 1, (B, T, D)), tf.float32)
    state = [tf.constant(rng.normal(0, 0.5, (B, H)), tf.float32) for _ in range(cell.state_size)]
    return layer, cell, X, state, weight_map(cell, H)


def _loss(outputs, state, seed=1):
    """A scalar that depends on every output and every final state, with random weights."""
    rng = np.random.default_rng(seed)
    total = tf.reduce_sum(outputs * rng.normal(size=outputs.shape).astype("float32"))
    for s in state:
        total += tf.reduce_sum(s * rng.normal(size=s.shape).astype("float32"))
    return total


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("B,T,D,H", SHAPES)
def test_cell_outputs_and_final_state_equal_keras(kind, B, T, D, H):
    layer, cell, X, state, _ = _pair(kind, B, T, D, H)
    keras_outputs, *keras_state = layer(X, initial_state=state)
    outputs, final_state = cell(X, state)
    assert_close(outputs.numpy(), keras_outputs.numpy())
    assert len(final_state) == len(keras_state) == cell.state_size
    for ours, theirs in zip(final_state, keras_state, strict=True):
        assert_close(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("B,T,D,H", SHAPES)
def test_cell_gradients_equal_keras(kind, B, T, D, H):
    layer, cell, X, state, weight_map = _pair(kind, B, T, D, H)
    with tf.GradientTape() as tape:
        keras_outputs, *keras_state = layer(X, initial_state=state)
        keras_loss = _loss(keras_outputs, keras_state)
    keras_grads = [g.numpy() for g in tape.gradient(keras_loss, layer.trainable_weights)]
    with tf.GradientTape() as tape:
        outputs, final_state = cell(X, state)
        loss = _loss(outputs, final_state)
    grads = dict(
        zip(
            [id(v) for v in cell.trainable_variables],
            tape.gradient(loss, cell.trainable_variables),
            strict=True,
        )
    )
    assert {id(variable) for _, _, variable in weight_map} == set(grads)  # every parameter
    for index, part, variable in weight_map:
        assert_close(grads[id(variable)].numpy(), keras_grads[index][part])


def test_gru_rejects_keras_layer_with_other_reset_after():
    layer = keras.layers.GRU(4, reset_after=True)
    layer.build((None, None, 3))
    with pytest.raises(ValueError, match="reset_after"):
        GRUCell(3, 4, reset_after=False).load_keras_weights(layer)


# --------------------------------------------------------------------------------------------
# Clipping: g <- min(1, θ/‖g‖) g over all gradients together.
# --------------------------------------------------------------------------------------------


def _random_grads(scale, seed):
    rng = np.random.default_rng(seed)
    return [
        tf.constant(rng.normal(0, scale, shape), tf.float32) for shape in [(5, 7), (7,), (3, 4, 2)]
    ]


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3, 1e6])
@pytest.mark.parametrize("clip_norm", [0.5, 5.0])
def test_clipping_equals_tf_clip_by_global_norm(scale, clip_norm):
    grads = _random_grads(scale, seed=int(scale) % 97)
    clipped, norm = clip_by_global_norm(grads, clip_norm)
    expected, expected_norm = tf.clip_by_global_norm(grads, clip_norm)
    np.testing.assert_allclose(norm.numpy(), expected_norm.numpy(), rtol=1e-6)
    for ours, theirs in zip(clipped, expected, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=0)


def test_clipped_gradients_have_global_norm_theta():
    clipped, norm = clip_by_global_norm(_random_grads(100.0, seed=3), 2.0)
    assert norm.numpy() > 2.0
    np.testing.assert_allclose(tf.linalg.global_norm(clipped).numpy(), 2.0, rtol=1e-6)


def test_clipping_leaves_gradients_within_theta_bitwise_unchanged():
    grads = _random_grads(0.01, seed=4)
    clipped, norm = clip_by_global_norm(grads, float(tf.linalg.global_norm(grads)) * 1.5)
    for ours, original in zip(clipped, grads, strict=True):
        assert np.array_equal(ours.numpy(), original.numpy())


def test_clipping_passes_none_gradients_through():
    grads = [None, tf.constant([3.0, 4.0]), None]
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert clipped[0] is None and clipped[2] is None
    np.testing.assert_allclose(clipped[1].numpy(), [0.6, 0.8], rtol=1e-6)
    assert norm.numpy() == pytest.approx(5.0)


def test_clipping_zero_gradients_gives_zeros_not_nan():
    clipped, norm = clip_by_global_norm([tf.zeros([3]), tf.zeros([2, 2])], 1.0)
    assert norm.numpy() == 0.0
    assert all(np.array_equal(g.numpy(), np.zeros(g.shape)) for g in clipped)


@pytest.mark.parametrize("clip_norm", [None, 0.0, -1.0])
def test_clipping_disabled_returns_gradients_and_norm(clip_norm):
    grads = _random_grads(10.0, seed=5)
    clipped, norm = clip_by_global_norm(grads, clip_norm)
    assert all(ours is original for ours, original in zip(clipped, grads, strict=True))
    np.testing.assert_allclose(norm.numpy(), tf.linalg.global_norm(grads).numpy(), rtol=1e-6)


def test_clipping_non_finite_norm_returns_zeros_without_nan():
    clipped, norm = clip_by_global_norm([tf.constant([np.inf, 1.0]), tf.constant([2.0])], 1.0)
    assert np.isinf(norm.numpy())
    assert all(np.array_equal(g.numpy(), np.zeros(g.shape)) for g in clipped)


def test_clipping_works_inside_tf_function_with_tensor_theta():
    clip = tf.function(lambda grads, theta: clip_by_global_norm(grads, theta))
    grads = _random_grads(10.0, seed=6)
    clipped, norm = clip(grads, tf.constant(1.0))
    expected, expected_norm = tf.clip_by_global_norm(grads, 1.0)
    np.testing.assert_allclose(norm.numpy(), expected_norm.numpy(), rtol=1e-6)
    for ours, theirs in zip(clipped, expected, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_clipping_indexed_slices_counts_repeated_rows_once_summed():
    sparse = tf.IndexedSlices(
        tf.constant([[3.0, 0.0], [0.0, 4.0], [3.0, 0.0]]),
        tf.constant([0, 1, 0]),
        tf.constant([4, 2]),
    )
    clipped, norm = clip_by_global_norm([sparse], 1.0)
    dense = tf.convert_to_tensor(sparse)  # row 0 = [6, 0]
    np.testing.assert_allclose(norm.numpy(), tf.norm(dense).numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        tf.convert_to_tensor(clipped[0]).numpy(), (dense / tf.norm(dense)).numpy(), rtol=1e-6
    )


# --------------------------------------------------------------------------------------------
# ScratchLM: the model interface shared with the Keras models.
# --------------------------------------------------------------------------------------------

V = 11
CONFIGS = [
    dict(cell="rnn"),
    dict(cell="gru"),
    dict(cell="gru", reset_after=True),
    dict(cell="lstm"),
    dict(cell="lstm", embedding_dim=6),
]


def _ids(B, T, seed=0):
    return tf.constant(np.random.default_rng(seed).integers(0, V, (B, T)), tf.int32)


@pytest.mark.parametrize("config", CONFIGS)
def test_model_returns_logits_of_shape_batch_time_vocab(config):
    model = ScratchLM(V, units=8, layers=2, **config)
    logits, state = model(_ids(3, 5), model.initial_state(3))
    assert logits.shape == (3, 5, V) and logits.dtype == tf.float32
    assert [s.shape for s in state] == [s.shape for s in model.initial_state(3)]


@pytest.mark.parametrize("cell,per_layer", [("rnn", 1), ("gru", 1), ("lstm", 2)])
@pytest.mark.parametrize("layers", [1, 3])
def test_initial_state_is_zeros_per_layer(cell, per_layer, layers):
    state = ScratchLM(V, cell, units=8, layers=layers).initial_state(4)
    assert len(state) == per_layer * layers
    for s in state:
        assert s.shape == (4, 8) and s.dtype == tf.float32
        assert not np.any(s.numpy())


@pytest.mark.parametrize("config", CONFIGS)
def test_stepping_one_char_at_a_time_equals_one_call_on_the_sequence(config):
    model = ScratchLM(V, units=8, layers=2, **config)
    ids = _ids(2, 6)
    whole, whole_state = model(ids, model.initial_state(2))
    state, steps = model.initial_state(2), []
    for t in range(6):
        logits, state = model(ids[:, t : t + 1], state)
        steps.append(logits)
    assert_close(tf.concat(steps, axis=1).numpy(), whole.numpy())
    for s, w in zip(state, whole_state, strict=True):
        assert_close(s.numpy(), w.numpy())


def test_state_carries_across_calls():
    model = ScratchLM(V, "lstm", units=8, layers=2)
    ids = _ids(2, 8)
    whole, _ = model(ids, model.initial_state(2))
    _, state = model(ids[:, :5], model.initial_state(2))
    rest, _ = model(ids[:, 5:], state)
    assert_close(rest.numpy(), whole[:, 5:].numpy())


def test_tf_function_accepts_any_sequence_length_without_retracing():
    model = ScratchLM(V, "gru", units=8, layers=2)
    spec = [tf.TensorSpec([None, None], tf.int32), [tf.TensorSpec([None, 8], tf.float32)] * 2]
    call = tf.function(lambda ids, state: model(ids, state), input_signature=spec)
    for T in [1, 4, 9]:
        ids = _ids(3, T)
        logits, _ = call(ids, model.initial_state(3))
        eager, _ = model(ids, model.initial_state(3))
        assert_close(logits.numpy(), eager.numpy())
    assert call.experimental_get_tracing_count() == 1


def test_weights_are_drawn_from_normal_0_001_and_biases_are_zero():
    model = ScratchLM(V, "lstm", units=128, layers=1)
    cell = model.cells[0]
    for W in [cell.W_hi, cell.W_hf, cell.W_ho, cell.W_hc, model.W_hq]:
        assert np.std(W.numpy()) == pytest.approx(0.01, rel=0.05)
        assert abs(np.mean(W.numpy())) < 1e-3
    for b in [cell.b_i, cell.b_f, cell.b_o, cell.b_c, model.b_q]:
        assert not np.any(b.numpy())


def test_same_seed_gives_same_weights_and_other_seed_other_weights():
    a, b, c = (ScratchLM(V, "gru", units=8, layers=2, seed=s) for s in (7, 7, 8))
    for va, vb, vc in zip(
        a.trainable_variables, b.trainable_variables, c.trainable_variables, strict=True
    ):
        assert np.array_equal(va.numpy(), vb.numpy())
        if va.name.startswith("W"):
            assert not np.array_equal(va.numpy(), vc.numpy())


def test_trainable_variables_are_float32_in_a_fixed_order_and_all_receive_gradients():
    model = ScratchLM(V, "lstm", units=8, layers=2, embedding_dim=4)
    names = [v.name for v in model.trainable_variables]
    assert names == [
        v.name for v in ScratchLM(V, "lstm", units=8, layers=2, embedding_dim=4).trainable_variables
    ]
    assert len(names) == 1 + 2 * 12 + 2  # E, two LSTM cells, W_hq and b_q
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    with tf.GradientTape() as tape:
        logits, _ = model(_ids(2, 3), model.initial_state(2))
        loss = tf.reduce_sum(logits)
    assert all(g is not None for g in tape.gradient(loss, model.trainable_variables))


def test_gru_reset_after_adds_the_recurrent_candidate_bias():
    assert hasattr(ScratchLM(V, "gru", units=4, reset_after=True).cells[0], "b_hh")
    assert not hasattr(ScratchLM(V, "gru", units=4).cells[0], "b_hh")


def test_dropout_only_when_training():
    model = ScratchLM(V, "lstm", units=16, layers=2, dropout=0.5)
    ids, state = _ids(2, 5), model.initial_state(2)
    inference, _ = model(ids, state)
    np.testing.assert_array_equal(model(ids, state)[0].numpy(), inference.numpy())
    assert not np.allclose(model(ids, state, training=True)[0].numpy(), inference.numpy())


def test_zero_dropout_training_equals_inference():
    model = ScratchLM(V, "rnn", units=8, layers=2, dropout=0.0)
    ids, state = _ids(2, 5), model.initial_state(2)
    np.testing.assert_array_equal(
        model(ids, state, training=True)[0].numpy(), model(ids, state)[0].numpy()
    )


def test_checkpoint_restores_weights(tmp_path):
    model = ScratchLM(V, "gru", units=8, layers=2, embedding_dim=4, seed=1)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    other = ScratchLM(V, "gru", units=8, layers=2, embedding_dim=4, seed=2)
    tf.train.Checkpoint(model=other).restore(path).assert_consumed()
    ids = _ids(2, 5)
    np.testing.assert_array_equal(
        other(ids, other.initial_state(2))[0].numpy(), model(ids, model.initial_state(2))[0].numpy()
    )


def test_checkpoint_restores_dropout_generator_state(tmp_path):
    model = ScratchLM(V, "rnn", units=8, dropout=0.5, seed=1)
    ids, state = _ids(2, 5), model.initial_state(2)
    model(ids, state, training=True)  # advance the generator before saving
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    other = ScratchLM(V, "rnn", units=8, dropout=0.5, seed=2)
    tf.train.Checkpoint(model=other).restore(path).assert_consumed()
    np.testing.assert_array_equal(
        other(ids, state, training=True)[0].numpy(), model(ids, state, training=True)[0].numpy()
    )


def test_get_config_rebuilds_the_same_model():
    model = ScratchLM(
        V, "gru", units=8, layers=2, embedding_dim=3, dropout=0.1, reset_after=True, seed=5
    )
    rebuilt = ScratchLM(**model.get_config())
    for a, b in zip(model.trainable_variables, rebuilt.trainable_variables, strict=True):
        assert np.array_equal(a.numpy(), b.numpy())


def test_unknown_cell_is_rejected():
    with pytest.raises(ValueError, match="cell"):
        ScratchLM(V, "transformer")
