"""The math of charlm's fast LSTM and GRU: Keras's equations, run over a whole window with a
hand-written backward pass. :mod:`charlm.models.fastrnn` wraps them in Keras layers.

The functions compute exactly what ``keras.layers.LSTM`` and ``keras.layers.GRU(reset_after=
True)`` compute (tanh/sigmoid, the same gate order). How they run was chosen by measuring
forward+backward on a 2-core CPU (``benchmarks/bench_cell.py``, figures in
``benchmarks/results/bench_cell.json``):

* The input projection ``X W + b`` of the whole window is one matrix product per gate over
  ``[T*B, D]`` before the loop (:func:`time_major_projections`); the loop only does ``h U``
  and the gate math.
* One product per gate, ``h U_k`` with ``U_k`` [H, H], rather than one ``[H, 4H]`` product
  and a split: no per-step split/concat copies, and four independent products a step. The
  training step took ~0.8-0.9x the time of the one-product version (LSTM 2x256).
* The backward pass is written by hand (``tf.custom_gradient``) instead of differentiating
  the loop. The forward loop keeps the activated gates; the gate derivatives' factors are
  computed for all steps at once; the loop back through time only carries ``dh`` (and
  ``dc``), one ``[B, H] x [H, H]`` product per gate and step; ``dU_k = Σ_t h_{t-1}^T dz_k,t``
  is one matrix product after it. Autodiff of the loop does three products per step.
* A window of one step (generation) runs :func:`lstm_step`/:func:`gru_step`, without a loop,
  all gates in one product (no per-call slicing of the weights).

Example::

    xw = time_major_projections(x, tf.split(W, 4, 1), tf.split(b, 4))  # x [B, T, D]
    H, h, c = lstm_sequence(xw, h0, c0, tf.split(U, 4, 1))              # H [T, B, H]
"""

from __future__ import annotations

import tensorflow as tf

__all__ = [
    "lstm_gates",
    "lstm_step",
    "lstm_sequence",
    "gru_gates",
    "gru_step",
    "gru_sequence",
    "time_major_projections",
]

# Steps t+1, t+2, ... may start while step t still runs (TensorArray reads/writes overlap).
_PARALLEL_ITERATIONS = 32


def _loop(T, body, loop_vars, reverse=False):
    """Run ``body(t, *loop_vars)`` for t = 0..T-1 (or T-1..0) in a tf.while_loop."""
    t0, step = (T - 1, -1) if reverse else (0, 1)

    def full_body(t, *vs):
        return (t + step, *body(t, *vs))

    _, *out = tf.while_loop(
        lambda t, *_: tf.logical_and(t >= 0, t < T),
        full_body,
        (t0, *loop_vars),
        maximum_iterations=T,
        parallel_iterations=_PARALLEL_ITERATIONS,
    )
    return out


def _sigmoid_grad(s, dy):
    """dy σ'(x) = dy s (1 - s) for s = σ(x), in one kernel."""
    return tf.raw_ops.SigmoidGrad(y=s, dy=dy)


def _tanh_grad(t, dy):
    """dy tanh'(x) = dy (1 - t²) for t = tanh(x), in one kernel."""
    return tf.raw_ops.TanhGrad(y=t, dy=dy)


def _outer_sum_prev(h0, H, dZ):
    """Σ_t h_{t-1}^T dz_t with h_{-1} = h0 (dW_h): one matmul over steps 1..T-1 (slices, no
    copy) plus step 0's. [B, H], [T, B, H], [T, B, G] -> [H, G]."""
    n, G = H.shape[-1], dZ.shape[-1]
    return tf.matmul(
        tf.reshape(H[:-1], [-1, n]), tf.reshape(dZ[1:], [-1, G]), transpose_a=True
    ) + tf.matmul(h0, dZ[0], transpose_a=True)


def _sum_rows(x):
    """Σ over every axis but the last, [..., N] -> [N]. BiasAddGrad's kernel is this sum, and
    it was ~5x faster here than reduce_sum over the leading axes of a [T, B, N] tensor."""
    return tf.raw_ops.BiasAddGrad(out_backprop=tf.reshape(x, [-1, x.shape[-1]]))


def _array(x, T, like):
    """An empty TensorArray of T elements shaped like ``like``."""
    return tf.TensorArray(x.dtype, size=T, element_shape=like.shape)


def time_major_projections(x, Ws, bs):
    """[X W_k + b_k for each gate k] for a batch-major window x [B, T, D], each time-major
    [T, B, H]: one matmul per gate over the whole window. (``bias_add``: its gradient kernel
    sums rows ~5x faster than a broadcast ``+``'s does.)"""
    x = tf.transpose(x, [1, 0, 2])
    x2 = tf.reshape(x, [-1, x.shape[-1]])
    shape = tf.concat([tf.shape(x)[:2], tf.shape(Ws[0])[1:]], 0)  # not -1: B may be 0
    return [
        tf.reshape(tf.nn.bias_add(tf.matmul(x2, W), b), shape) for W, b in zip(Ws, bs, strict=True)
    ]


# ------------------------------------------------------------------------------------ LSTM


def lstm_gates(z_i, z_f, z_g, z_o, c):
    """The LSTM's gate math from the four pre-activations: ``c' = σ(z_f) c + σ(z_i) tanh(z_g)``,
    ``h' = σ(z_o) tanh(c')``. Returns (h', c', the activated gates σ(z_i), σ(z_f), tanh(z_g),
    σ(z_o) and tanh(c'), which the backward pass reuses)."""
    i, f, g, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_g), tf.sigmoid(z_o)
    c = f * c + i * g
    tc = tf.tanh(c)
    return o * tc, c, (i, f, g, o, tc)


def lstm_step(xw_t, h, c, U):
    """One LSTM step from ``xw_t = x_t W + b`` [B, 4H], all gates in one product:
    ``[z_i, z_f, z_g, z_o] = split(xw_t + h U)``, then :func:`lstm_gates`."""
    return lstm_gates(*tf.split(xw_t + tf.matmul(h, U), 4, axis=-1), c)


def _lstm_forward(xw, h0, c0, U):
    """The LSTM over time-major per-gate projections ``xw`` (4 x [T, B, H]) with per-gate
    ``U`` (4 x [H, H]): ``z_k = xw_k + h U_k``. Returns ([H, I, F, G, O, tanh(C), C_prev], each
    [T, B, H], h_T, c_T): the outputs and what the backward pass needs."""
    T = tf.shape(xw[0])[0]

    def body(t, h, c, *arrays):
        c_prev = c
        h, c, gates = lstm_gates(*(x[t] + tf.matmul(h, u) for x, u in zip(xw, U, strict=True)), c)
        return (h, c, *[a.write(t, v) for a, v in zip(arrays, (h, *gates, c_prev), strict=True)])

    h, c, *arrays = _loop(T, body, (h0, c0, *[_array(h0, T, h0) for _ in range(7)]))
    return [a.stack() for a in arrays], h, c


def _lstm_backward(dH, dhT, dcT, P, B, F, U):
    """Back through time: ``dh_t = dY_t + Σ_k dz_k,t+1 U_k^T``, ``dc_t = dc_{t+1} f_{t+1} +
    dh_t B_t``, ``dz_k,t = dc_t P_k,t`` for i, f, g and ``dh_t P_o,t`` for o.
    Returns (4 x dZ_k [T, B, H], dh_0, dc_0)."""
    T = tf.shape(dH)[0]
    UT = [tf.transpose(u) for u in U]

    def body(t, dh, dc, *arrays):
        dh = dh + dH[t]
        dc = dc + dh * B[t]
        dz = (dc * P[0][t], dc * P[1][t], dc * P[2][t], dh * P[3][t])
        dh = tf.add_n([tf.matmul(d, ut) for d, ut in zip(dz, UT, strict=True)])
        return (dh, dc * F[t], *[a.write(t, d) for a, d in zip(arrays, dz, strict=True)])

    dh0, dc0, *arrays = _loop(
        T, body, (dhT, dcT, *[_array(dH, T, dhT) for _ in range(4)]), reverse=True
    )
    return [a.stack() for a in arrays], dh0, dc0


@tf.custom_gradient
def _lstm_sequence(x_i, x_f, x_g, x_o, h0, c0, u_i, u_f, u_g, u_o):
    """:func:`lstm_sequence` on flat arguments, with its hand-written backward pass."""
    U = (u_i, u_f, u_g, u_o)
    saved, hT, cT = _lstm_forward((x_i, x_f, x_g, x_o), h0, c0, U)

    def grad(dH, dhT, dcT):
        H, i, f, g, o, tc, c_prev = saved
        dH = tf.zeros_like(H) if dH is None else dH
        dhT = tf.zeros_like(hT) if dhT is None else dhT
        dcT = tf.zeros_like(cT) if dcT is None else dcT
        # dz = [dc g σ'(i), dc c_{t-1} σ'(f), dc i tanh'(g), dh tanh(c) σ'(o)]; dc += dh o tanh'(c)
        P = (_sigmoid_grad(i, g), _sigmoid_grad(f, c_prev), _tanh_grad(g, i), _sigmoid_grad(o, tc))
        dZ, dh0, dc0 = _lstm_backward(dH, dhT, dcT, P, _tanh_grad(tc, o), f, U)
        return (*dZ, dh0, dc0, *[_outer_sum_prev(h0, H, d) for d in dZ])

    return (saved[0], hT, cT), grad


def lstm_sequence(xw, h0, c0, U):
    """The LSTM over a time-major window from its per-gate input projections
    ``xw = [X W_k + b_k for k in i, f, g, o]`` (4 x [T, B, H]) and recurrent matrices ``U``
    (4 x [H, H]): ``h_t, c_t = lstm_gates(xw_k,t + h_{t-1} U_k ..., c_{t-1})``.
    Returns (H [T, B, H], h_T, c_T); the backward pass is written by hand (module docstring)."""
    return _lstm_sequence(*xw, h0, c0, *U)


# ------------------------------------------------------------------------------------- GRU


def gru_gates(x_z, x_r, x_h, m_z, m_r, m_h, h):
    """The GRU's gate math (Keras ``reset_after=True``) from the input parts ``x_k = x W_k +
    b_xk`` and recurrent parts ``m_k = h U_k + b_hk``: ``z = σ(x_z + m_z)``,
    ``r = σ(x_r + m_r)``, ``ĥ = tanh(x_h + r m_h)``, ``h' = z h + (1 - z) ĥ``.
    Returns (h', (z, r, ĥ, m_h), which the backward pass reuses)."""
    z = tf.sigmoid(x_z + m_z)
    r = tf.sigmoid(x_r + m_r)
    hh = tf.tanh(x_h + r * m_h)
    return z * h + (1 - z) * hh, (z, r, hh, m_h)


def gru_step(xw_t, h, U, b_h):
    """One GRU step from ``xw_t = x_t W + b_x`` [B, 3H], all gates in one product:
    ``m = h U + b_h``, then :func:`gru_gates` on the thirds of ``xw_t`` and ``m``."""
    return gru_gates(*tf.split(xw_t, 3, axis=-1), *tf.split(tf.matmul(h, U) + b_h, 3, axis=-1), h)


def _gru_forward(xw, h0, U, b_h):
    """The GRU over time-major per-gate projections ``xw`` (3 x [T, B, H]) with per-gate ``U``
    (3 x [H, H]) and ``b_h`` (3 x [H]). Returns ([H, Z, R, Ĥ, M_h, H_prev], each [T, B, H],
    h_T): the outputs and what the backward pass needs."""
    T = tf.shape(xw[0])[0]

    def body(t, h, *arrays):
        h_prev = h
        m = [tf.matmul(h, u) + b for u, b in zip(U, b_h, strict=True)]
        h, saved = gru_gates(*(x[t] for x in xw), *m, h)
        return (h, *[a.write(t, v) for a, v in zip(arrays, (h, *saved, h_prev), strict=True)])

    h, *arrays = _loop(T, body, (h0, *[_array(h0, T, h0) for _ in range(6)]))
    return [a.stack() for a in arrays], h


def _gru_backward(dH, dhT, A, R, Z, U):
    """Back through time: ``dh_t = dY_t + dh_{t+1} z_{t+1} + Σ_k dm_k,t+1 U_k^T`` with
    ``dm_k,t = dh_t A_k,t`` (z, r) and ``dm_h,t = dx_h,t r_t``, ``dx_h,t = dh_t A_h,t``.
    Returns ([dm_z, dm_r, dx_h, dm_h], each [T, B, H], dh_0)."""
    T = tf.shape(dH)[0]
    UT = [tf.transpose(u) for u in U]

    def body(t, dh, *arrays):
        dh = dh + dH[t]
        dx_h = dh * A[2][t]
        d = (dh * A[0][t], dh * A[1][t], dx_h, dx_h * R[t])
        dh = dh * Z[t] + tf.add_n(
            [tf.matmul(dm, ut) for dm, ut in zip((d[0], d[1], d[3]), UT, strict=True)]
        )
        return (dh, *[a.write(t, v) for a, v in zip(arrays, d, strict=True)])

    dh0, *arrays = _loop(T, body, (dhT, *[_array(dH, T, dhT) for _ in range(4)]), reverse=True)
    return [a.stack() for a in arrays], dh0


@tf.custom_gradient
def _gru_sequence(x_z, x_r, x_h, h0, u_z, u_r, u_h, b_z, b_r, b_h):
    """:func:`gru_sequence` on flat arguments, with its hand-written backward pass."""
    U = (u_z, u_r, u_h)
    saved, hT = _gru_forward((x_z, x_r, x_h), h0, U, (b_z, b_r, b_h))

    def grad(dH, dhT):
        H, z, r, hh, m_h, h_prev = saved
        dH = tf.zeros_like(H) if dH is None else dH
        dhT = tf.zeros_like(hT) if dhT is None else dhT
        a_h = _tanh_grad(hh, 1 - z)  # d pre-activation of ĥ (= dx_h) per unit of dh
        A = (_sigmoid_grad(z, h_prev - hh), _sigmoid_grad(r, a_h * m_h), a_h)
        (dm_z, dm_r, dx_h, dm_h), dh0 = _gru_backward(dH, dhT, A, r, z, U)
        dU = [_outer_sum_prev(h0, H, d) for d in (dm_z, dm_r, dm_h)]
        return (dm_z, dm_r, dx_h, dh0, *dU, *[_sum_rows(d) for d in (dm_z, dm_r, dm_h)])

    return (saved[0], hT), grad


def gru_sequence(xw, h0, U, b_h):
    """The GRU (``reset_after=True``) over a time-major window from its per-gate input
    projections ``xw = [X W_k + b_xk for k in z, r, h]`` (3 x [T, B, H]), recurrent matrices
    ``U`` and biases ``b_h`` (3 x [H, H], 3 x [H]): ``h_t = gru_gates(...)``. Returns
    (H [T, B, H], h_T); the backward pass is written by hand (module docstring)."""
    return _gru_sequence(*xw, h0, *U, *b_h)
