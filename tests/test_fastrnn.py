"""FastLSTM / FastGRU compute what keras.layers.LSTM / GRU compute, forward and backward."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_close

from charlm.models.fastrnn import FastGRU, FastLSTM, cpu_has_native_bf16

# (batch, steps, input dim, units): T = 1 is generation
SHAPES = [(1, 1, 3, 4), (5, 1, 6, 8), (1, 6, 3, 4), (5, 7, 5, 8), (2, 33, 16, 12)]
PAIRS = {"lstm": (keras.layers.LSTM, FastLSTM, 2), "gru": (keras.layers.GRU, FastGRU, 1)}


def close(actual, expected):
    return assert_close(actual, expected, floor=1e-6)


def pair(kind, shape, seed=0):
    """A built Keras layer, the fast layer with the same (perturbed, non-default) weights,
    and inputs: x [B, T, D] and initial states."""
    B, T, D, H = shape
    keras_cls, fast_cls, n_states = PAIRS[kind]
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=(B, T, D)), tf.float32)
    states = [tf.constant(rng.normal(size=(B, H)) * 0.5, tf.float32) for _ in range(n_states)]
    ref = keras_cls(H, return_sequences=True, return_state=True)
    ref(x, initial_state=states)
    # non-zero biases (both GRU biases too) so that every term of the math is exercised
    ref.set_weights(
        [w + rng.normal(size=w.shape).astype("float32") * 0.3 for w in ref.get_weights()]
    )
    fast = fast_cls(H)
    fast(x, initial_state=states)
    fast.set_weights(ref.get_weights())
    return ref, fast, x, states


def loss_of(outputs):
    """A loss that weights every output (sequence and final states) differently."""
    y, *states = (tf.cast(t, tf.float32) for t in outputs)
    w = tf.sin(tf.range(tf.size(y), dtype=tf.float32))
    return tf.reduce_sum(tf.reshape(y, [-1]) * w) + sum(
        (1.0 + i) * tf.reduce_sum(s * s) for i, s in enumerate(states)
    )


def outputs_and_grads(layer, x, states, loss=loss_of):
    with tf.GradientTape() as tape:
        tape.watch([x, *states])
        out = layer(x, initial_state=states)
        value = loss(out)
    grads = tape.gradient(value, [x, *states, *layer.trainable_variables])
    return out, grads


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("shape", SHAPES)
def test_outputs_and_final_states_equal_keras(kind, shape):
    ref, fast, x, states = pair(kind, shape)
    expected = ref(x, initial_state=states)
    actual = fast(x, initial_state=states)
    assert len(actual) == len(expected) == 1 + PAIRS[kind][2]
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        close(a, e)


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("shape", SHAPES)
def test_gradients_wrt_inputs_states_and_weights_equal_keras(kind, shape):
    ref, fast, x, states = pair(kind, shape, seed=1)
    _, expected = outputs_and_grads(ref, x, states)
    _, actual = outputs_and_grads(fast, x, states)
    assert len(actual) == len(expected) == 1 + len(states) + 3
    for a, e in zip(actual, expected, strict=True):
        close(a, e)


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("groups", [2, 3])
def test_the_batch_cut_in_groups_of_rows_computes_the_same(kind, groups):
    """batch_groups > 1 (a tuning knob): 5 rows in 2 or 3 groups, and 1 row (empty groups)."""
    for batch in (5, 1):
        ref, fast, x, states = pair(kind, (batch, 6, 3, 4), seed=6)
        fast.batch_groups = groups
        _, expected = outputs_and_grads(ref, x, states)
        _, actual = outputs_and_grads(fast, x, states)
        for a, e in zip(fast(x, initial_state=states), ref(x, initial_state=states), strict=True):
            close(a, e)
        for a, e in zip(actual, expected, strict=True):
            close(a, e)


@pytest.mark.parametrize("kind", PAIRS)
def test_gradients_when_only_the_sequence_is_used(kind):
    """The final states' gradients arrive as None/zeros when the loss ignores them."""
    ref, fast, x, states = pair(kind, (3, 9, 4, 6), seed=2)
    only_y = lambda out: tf.reduce_sum(out[0] * out[0])  # noqa: E731
    _, expected = outputs_and_grads(ref, x, states, only_y)
    _, actual = outputs_and_grads(fast, x, states, only_y)
    for a, e in zip(actual, expected, strict=True):
        close(a, e)


@pytest.mark.parametrize("kind", PAIRS)
def test_a_compiled_call_with_unknown_length_matches_including_one_step(kind):
    """Inside tf.function with T unknown at trace time the loop runs, for T = 1 too."""
    ref, fast, x, states = pair(kind, (2, 5, 3, 4), seed=3)
    spec = [tf.TensorSpec([None, None, 3])] + [tf.TensorSpec([None, 4])] * len(states)
    call = tf.function(lambda x, *s: fast(x, initial_state=list(s)), input_signature=spec)
    for steps in (5, 1):
        for a, e in zip(
            call(x[:, :steps], *states), ref(x[:, :steps], initial_state=states), strict=True
        ):
            close(a, e)


@pytest.mark.parametrize("kind", PAIRS)
def test_without_initial_state_starts_from_zeros(kind):
    ref, fast, x, states = pair(kind, (2, 4, 3, 5), seed=4)
    for a, e in zip(fast(x), ref(x), strict=True):
        close(a, e)


@pytest.mark.parametrize("kind", PAIRS)
def test_return_flags_shape_the_output_like_keras(kind):
    keras_cls, fast_cls, _ = PAIRS[kind]
    x = tf.random.stateless_normal([2, 6, 3], seed=[0, 1])
    for seq, state in [(False, False), (True, False), (False, True)]:
        ref = keras_cls(4, return_sequences=seq, return_state=state)
        fast = fast_cls(4, return_sequences=seq, return_state=state)
        expected, actual = ref(x), fast(x)
        fast.set_weights(ref.get_weights())
        actual = fast(x)
        for a, e in zip(tf.nest.flatten(actual), tf.nest.flatten(expected), strict=True):
            close(a, e)


@pytest.mark.parametrize("kind", PAIRS)
def test_same_seeded_initializers_give_keras_initial_weights(kind):
    """So a model that swaps the layer in starts from the same weights and loss."""
    keras_cls, fast_cls, _ = PAIRS[kind]
    init = keras.initializers
    args = dict(
        kernel_initializer=init.GlorotUniform(3), recurrent_initializer=init.Orthogonal(seed=4)
    )
    ref, fast = keras_cls(6, **args), fast_cls(6, **args)
    ref.build((None, None, 5))
    fast.build((None, None, 5))
    assert [w.shape for w in fast.get_weights()] == [w.shape for w in ref.get_weights()]
    for a, e in zip(fast.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("kind", PAIRS)
def test_config_round_trips_and_takes_the_arguments_charlm_passes_to_keras(kind):
    _, fast_cls, _ = PAIRS[kind]
    init = keras.initializers
    layer = fast_cls(
        12,
        return_sequences=True,
        return_state=True,
        name="rnn_0",
        dtype="mixed_bfloat16",
        seed=7,
        kernel_initializer=init.GlorotUniform(1),
        recurrent_initializer=init.Orthogonal(seed=2),
    )
    config = layer.get_config()
    assert config["units"] == 12 and config["seed"] == 7 and config["name"] == "rnn_0"
    assert fast_cls.from_config(config).get_config() == config
    clone = fast_cls.from_config(config)
    layer.build((None, None, 3))
    clone.build((None, None, 3))
    for a, e in zip(
        clone.get_weights(), layer.get_weights(), strict=True
    ):  # seeded: the same weights
        np.testing.assert_array_equal(a, e)


def model_with(kind, vocab=11, units=16, seed=0, layer_cls=None):
    """A small charlm-shaped model: [ids, *states] -> [logits, *states], with the fast layer
    (or ``layer_cls``)."""
    _, fast_cls, n_states = PAIRS[kind]
    fast_cls = layer_cls or fast_cls
    ids = keras.Input(shape=(None,), dtype="int32")
    states = [keras.Input(shape=(units,)) for _ in range(n_states)]
    x = keras.layers.Embedding(
        vocab, 8, embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed)
    )(ids)
    x, *new = fast_cls(
        units,
        kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
        recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 2),
        return_sequences=True,
        return_state=True,
        seed=seed,
        name="rnn",
    )(x, initial_state=states)
    logits = keras.layers.Dense(vocab, kernel_initializer=keras.initializers.GlorotUniform(seed))(x)
    return keras.Model([ids, *states], [logits, *new])


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("steps", [1, 6])
def test_a_functional_model_returns_every_state_like_the_keras_model(kind, steps):
    """Each state output is its own tensor (h is not c), for a window and for one step."""
    keras_cls, _, n_states = PAIRS[kind]
    fast = model_with(kind)
    ref = model_with(kind, layer_cls=keras_cls)
    ref.set_weights(fast.get_weights())
    ids = tf.constant(np.random.default_rng(1).integers(0, 11, (3, steps)), tf.int32)
    states = [tf.random.stateless_normal([3, 16], seed=[i, 5]) for i in range(n_states)]
    for a, e in zip(fast([ids, *states]), ref([ids, *states]), strict=True):
        close(a, e)


@pytest.mark.parametrize("kind", PAIRS)
def test_a_model_saves_and_loads_in_safe_mode_with_identical_outputs(kind, tmp_path):
    model = model_with(kind)
    ids = tf.constant(np.random.default_rng(0).integers(0, 11, (3, 7)), tf.int32)
    states = [
        tf.random.stateless_normal([3, 16], seed=[i, 2]) for i in range(len(model.inputs) - 1)
    ]
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.get_layer("rnn")) is type(model.get_layer("rnn"))
    assert loaded.get_layer("rnn").get_config() == model.get_layer("rnn").get_config()
    for a, e in zip(loaded([ids, *states]), model([ids, *states]), strict=True):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("kind", PAIRS)
def test_a_checkpoint_written_with_the_keras_layer_restores_into_the_fast_one(kind, tmp_path):
    """tf.train.Checkpoint paths match (the weights live on ``layer.cell``): runs checkpointed
    with keras.layers.LSTM/GRU resume with the fast layer, and back."""
    keras_cls, _, n_states = PAIRS[kind]
    ref, fast = model_with(kind, layer_cls=keras_cls, seed=3), model_with(kind)
    path = tf.train.Checkpoint(model=ref).write(str(tmp_path / "ck"))
    tf.train.Checkpoint(model=fast).read(path).assert_existing_objects_matched()
    for a, e in zip(fast.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(a, e)
    back = model_with(kind, layer_cls=keras_cls, seed=4)
    path = tf.train.Checkpoint(model=fast).write(str(tmp_path / "back"))
    tf.train.Checkpoint(model=back).read(path).assert_existing_objects_matched()
    for a, e in zip(back.get_weights(), fast.get_weights(), strict=True):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("kind", PAIRS)
def test_a_tiny_model_learns(kind):
    """Trained 40 steps on a repeating text, the loss falls well below its start."""
    model = model_with(kind)
    text = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] * 20, np.int32)
    x = tf.constant(np.stack([text[i : i + 12] for i in range(0, 96, 12)]))
    y = tf.constant(np.stack([text[i + 1 : i + 13] for i in range(0, 96, 12)]))
    zeros = [tf.zeros([8, 16]) for _ in model.inputs[1:]]
    opt = keras.optimizers.Adam(0.02)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model([x, *zeros], training=True)[0])
        opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    losses = [float(step()) for _ in range(40)]
    assert losses[0] > 2.0  # ~ln 11 at the start
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("kind", PAIRS)
def test_mixed_bfloat16_computes_in_bfloat16_like_keras(kind):
    keras_cls, fast_cls, n_states = PAIRS[kind]
    ref, fast, x, states = pair(kind, (4, 6, 5, 8), seed=5)
    ref16 = keras_cls(8, return_sequences=True, return_state=True, dtype="mixed_bfloat16")
    fast16 = fast_cls(8, dtype="mixed_bfloat16")
    ref16(x, initial_state=states)
    fast16(x, initial_state=states)
    ref16.set_weights(ref.get_weights())
    fast16.set_weights(ref.get_weights())
    assert all(w.dtype == "float32" for w in fast16.weights)
    out16, grads16 = outputs_and_grads(fast16, x, states)
    out, _ = outputs_and_grads(ref16, x, states)
    assert all(t.dtype == tf.bfloat16 for t in out16)
    for a, e in zip(out16, out, strict=True):  # bfloat16 has 8 bits of mantissa
        np.testing.assert_allclose(tf.cast(a, tf.float32), tf.cast(e, tf.float32), atol=0.05)
    assert all(bool(tf.reduce_all(tf.math.is_finite(tf.cast(g, tf.float32)))) for g in grads16)


def test_cpu_has_native_bf16_reads_the_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(info) is True
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 amx_bf16 amx_tile\n")
    assert cpu_has_native_bf16(info) is True
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert cpu_has_native_bf16(info) is False
    info.write_text("processor\t: 0\n")
    assert cpu_has_native_bf16(info) is False
    assert cpu_has_native_bf16(tmp_path / "missing") is False
