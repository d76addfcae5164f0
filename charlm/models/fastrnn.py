"""Keras LSTM and GRU layers with Keras's math and weights, and a faster loop on the CPU.

``FastLSTM`` and ``FastGRU`` compute exactly what ``keras.layers.LSTM`` and
``keras.layers.GRU(reset_after=True)`` compute (tanh/sigmoid, the same gate order, the same
weight shapes), so their weights are interchangeable through ``get_weights``/``set_weights``
and the same seeded initializers give the same initial weights. What differs is how the
sequence is run: the math lives in :mod:`charlm.models.fastcells` (the input projection
hoisted out of the loop, one product per gate, a hand-written backward pass); this module
holds the Keras side (weights, arguments, config, saving) and one more measured choice:

* The batch is cut in 2 groups of rows, each its own loop, so that both cores run one (the
  independent per-gate products alone did not use the second core).
* A window of one step (generation) runs the step directly, without a loop.

The weights live on ``layer.cell`` as in Keras's layers, so ``tf.train.Checkpoint``s are
interchangeable too.

LSTM 2x256, batch 64 x 100, a training step (fwd+bwd+Adam) on an AMD EPYC (AVX-512, bf16)
whose 2 cores were shared with other jobs: 1.66-1.81x Keras's speed (medians of interleaved
rounds; ~1.65x in CPU time; best rounds 114 vs 201 ms); GRU 1.2-1.5x; generation (T = 1)
~1.6x at batch 1, ~1.1x at batch 64. XLA (``jit_compile``) cut CPU time ~5% but ran slower.
TensorFlow's fused CPU kernels lost: ``BlockLSTM``/``BlockLSTMV2`` ran at ~0.77x Keras's
speed, and ``BlockLSTMV2``'s registered gradient is wrong (TF registers the V1 gradient for
it, whose gate order differs: call ``BlockLSTMGradV2`` yourself); ``GRUBlockCell`` computes
the reset-*before* GRU, which is not Keras's ``reset_after=True``.

Example::

    y, h, c = FastLSTM(256)(x, initial_state=[h0, c0])   # x [B, T, D] -> y [B, T, 256]
    y, h = FastGRU(256)(x, initial_state=[h0])
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from .fastcells import (
    gru_sequence,
    gru_step,
    lstm_sequence,
    lstm_step,
    time_major_projections,
)

__all__ = ["FastLSTM", "FastGRU", "cpu_has_native_bf16"]


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 natively (``avx512_bf16`` or ``amx_bf16`` flags);
    False when the flags cannot be read."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


# ---------------------------------------------------------------------------- Keras layers


class _WeightHolder(keras.layers.Layer):
    """Where the weights live: ``layer.cell.kernel`` etc., as in keras.layers.LSTM/GRU, so a
    ``tf.train.Checkpoint`` written with Keras's layer (``.../cell/kernel``) restores into the
    fast one and back. Never called."""


class _FastRNN(keras.layers.Layer):
    """What FastLSTM and FastGRU share: Keras's weights, arguments, call convention and config.

    A subclass sets ``gates`` (4 or 3), ``state_count`` (2 or 1) and defines ``_bias_shape``,
    ``_bias_initializer`` and ``_run(x, states, W, U, b)``, which returns (Y [B, T, H], states).
    """

    gates = 4
    state_count = 1
    # How many groups of rows the batch is cut in, each run by its own (independent) loop, so
    # that the two cores each run one. LSTM 2x256 training, rounds where this process got both
    # cores: ~130 ms a step with 2 groups, never under 184 ms with 1 (Keras: 235). Rounds with
    # one core: 2 groups cost ~8% (LSTM) to ~11% (GRU) more CPU time.
    batch_groups = 2

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        return_sequences=True,
        return_state=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.seed = seed  # Keras's RNNs use it only for dropout, which these layers do not have

    def build(self, input_shape):
        n, cell = self.units, _WeightHolder(name=self.name + "_cell", dtype=self.dtype_policy)
        cell.kernel = cell.add_weight(
            name="kernel",
            shape=(input_shape[-1], self.gates * n),
            initializer=self.kernel_initializer,
        )
        cell.recurrent_kernel = cell.add_weight(
            name="recurrent_kernel",
            shape=(n, self.gates * n),
            initializer=self.recurrent_initializer,
        )
        cell.bias = cell.add_weight(
            name="bias", shape=self._bias_shape(), initializer=self._bias_initializer()
        )
        cell.built = True
        self.cell = cell

    # the weights live on ``self.cell``, as Keras's RNN layers keep them (see _WeightHolder)
    kernel = property(lambda self: self.cell.kernel)
    recurrent_kernel = property(lambda self: self.cell.recurrent_kernel)
    bias = property(lambda self: self.cell.bias)

    def call(self, inputs, initial_state=None):
        dtype = self.compute_dtype
        x = tf.cast(inputs, dtype)
        if initial_state is None:
            zeros = tf.zeros([tf.shape(x)[0], self.units], dtype)
            states = [zeros] * self.state_count
        else:
            states = [tf.cast(s, dtype) for s in initial_state]
        W, U, b = (tf.cast(v, dtype) for v in (self.kernel, self.recurrent_kernel, self.bias))
        y, states = _in_batch_groups(
            lambda x, states: self._run(x, states, W, U, b), x, states, self.batch_groups
        )
        if not self.return_sequences:
            y = states[0]
        return [y, *states] if self.return_state else y

    def compute_output_spec(self, inputs, initial_state=None):
        batch, steps = inputs.shape[0], inputs.shape[1]

        def spec(*shape):  # a new KerasTensor per output: a functional model tells them apart
            return keras.KerasTensor((batch, *shape), dtype=self.compute_dtype)

        y = spec(steps, self.units) if self.return_sequences else spec(self.units)
        return [y, *[spec(self.units) for _ in range(self.state_count)]] if self.return_state else y

    def get_config(self):
        ser = keras.initializers.serialize
        return {
            **super().get_config(),
            "units": self.units,
            "kernel_initializer": ser(self.kernel_initializer),
            "recurrent_initializer": ser(self.recurrent_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "seed": self.seed,
        }


def _in_batch_groups(run, x, states, groups):
    """``run(x, states) -> (y, states)`` on ``groups`` groups of rows of the batch, concatenated
    back; a window of one step (generation) runs whole."""
    if _one_step(x) or groups == 1:
        return run(x, states)
    B = tf.shape(x)[0]
    sizes = [(B + i) // groups for i in range(groups)]  # they sum to B
    outs = [
        run(xg, list(sg))
        for xg, *sg in zip(tf.split(x, sizes), *(tf.split(s, sizes) for s in states), strict=True)
    ]
    return (
        tf.concat([y for y, _ in outs], 0),
        [tf.concat([s[j] for _, s in outs], 0) for j in range(len(states))],
    )


def _one_step(x):
    """Whether the window is statically one step long (generation): then no loop is run."""
    return x.shape[1] == 1


@keras.saving.register_keras_serializable(package="charlm")
class FastLSTM(_FastRNN):
    """``keras.layers.LSTM(units, return_sequences=True, return_state=True)`` with the same math
    and weights (kernel [D, 4H], recurrent_kernel [H, 4H], bias [4H], gates i, f, c, o), run
    faster on the CPU: ``c_t = σ(f) c_{t-1} + σ(i) tanh(g)``, ``h_t = σ(o) tanh(c_t)``.

    >>> y, h, c = FastLSTM(8)(tf.zeros([2, 5, 3]), initial_state=[tf.zeros([2, 8])] * 2)
    >>> y.shape, h.shape, c.shape
    (TensorShape([2, 5, 8]), TensorShape([2, 8]), TensorShape([2, 8]))
    """

    gates = 4
    state_count = 2

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_shape(self):
        return (4 * self.units,)

    def _bias_initializer(self):
        """Keras's: the bias initializer's values, with the forget gate's set to 1 when
        ``unit_forget_bias``."""
        if not self.unit_forget_bias:
            return self.bias_initializer
        n, init = self.units, self.bias_initializer

        def initializer(_shape, dtype=None):
            return tf.concat(
                [init((n,), dtype=dtype), tf.ones((n,), dtype=dtype), init((2 * n,), dtype=dtype)],
                0,
            )

        return initializer

    def _run(self, x, states, W, U, b):
        h, c = states
        if _one_step(x):
            h, c, _ = lstm_step(tf.nn.bias_add(tf.matmul(x[:, 0], W), b), h, c, U)
            return h[:, None], [h, c]
        xw = time_major_projections(x, tf.split(W, 4, 1), tf.split(b, 4))
        y, h, c = lstm_sequence(xw, h, c, tf.split(U, 4, 1))
        return tf.transpose(y, [1, 0, 2]), [h, c]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


@keras.saving.register_keras_serializable(package="charlm")
class FastGRU(_FastRNN):
    """``keras.layers.GRU(units, reset_after=True, return_sequences=True, return_state=True)``
    with the same math and weights (kernel [D, 3H], recurrent_kernel [H, 3H], bias [2, 3H] =
    input and recurrent biases, gates z, r, h), run faster on the CPU:
    ``ĥ = tanh(x W_h + b_xh + r (h U_h + b_hh))``, ``h_t = z h_{t-1} + (1 - z) ĥ``.

    >>> y, h = FastGRU(8)(tf.zeros([2, 5, 3]), initial_state=[tf.zeros([2, 8])])
    >>> y.shape, h.shape
    (TensorShape([2, 5, 8]), TensorShape([2, 8]))
    """

    gates = 3
    state_count = 1

    def _bias_shape(self):
        return (2, 3 * self.units)

    def _bias_initializer(self):
        return self.bias_initializer

    def _run(self, x, states, W, U, b):
        (h,) = states
        b_x, b_h = b[0], b[1]
        if _one_step(x):
            h, _ = gru_step(tf.nn.bias_add(tf.matmul(x[:, 0], W), b_x), h, U, b_h)
            return h[:, None], [h]
        xw = time_major_projections(x, tf.split(W, 3, 1), tf.split(b_x, 3))
        y, h = gru_sequence(xw, h, tf.split(U, 3, 1), tf.split(b_h, 3))
        return tf.transpose(y, [1, 0, 2]), [h]
