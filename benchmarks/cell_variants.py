"""The recurrent-layer variants that lost to charlm.models.fastrnn's, kept so bench_cell can re-run them.

Each is a FastLSTM / FastGRU subclass (same weights, same call) that overrides only ``_run``,
how a window is computed. Imported by ``bench_cell.py`` after TensorFlow's logging is quieted.

* ``AutodiffLSTM``/``AutodiffGRU``: the input projection hoisted out of the loop, TensorFlow
  differentiates the loop (idea (a) alone).
* ``FusedLSTM``: the hand-written backward pass with all four gates in one ``[H, 4H]``
  product per step (one split forward, one concat per step backward): the kept design before
  the per-gate products replaced it.
* ``Block1LSTM``: ``tf.raw_ops.BlockLSTM``, TensorFlow's fused CPU kernel (gates i, c, f, o,
  so the Keras columns are permuted per call).
* ``Block2LSTM``: ``tf.raw_ops.BlockLSTMV2`` (Keras's gate order) with ``BlockLSTMGradV2``
  called by hand: TensorFlow registers the V1 gradient kernel for it, which is wrong.
"""

from __future__ import annotations

import tensorflow as tf

from charlm.models import fastcells as C
from charlm.models import fastrnn as F


def grouped(cls, k):
    """``cls`` with its batch cut in k groups of rows, each its own loop."""
    return type(f"{cls.__name__}{k}", (cls,), {"batch_groups": k})


def _fused_projection(x, W, b):
    """X W + b for all gates at once, time-major [T, B, G]."""
    return C.time_major_projections(x, [W], [b])[0]


def _autodiff_loop(step, xw, states):
    """``states = step(xw_t, states)`` over time, differentiated by TensorFlow; returns
    (Y batch-major, final states)."""
    T = tf.shape(xw)[0]
    xs = tf.TensorArray(xw.dtype, size=T).unstack(xw)

    def body(t, hs, *states):
        states = step(xs.read(t), states)
        return (hs.write(t, states[0]), *states)

    hs, *states = C._loop(T, body, (C._array(xw, T, states[0]), *states))
    return tf.transpose(hs.stack(), [1, 0, 2]), list(states)


class AutodiffLSTM(F.FastLSTM):
    batch_groups = 1

    def _run(self, x, states, W, U, b):
        return _autodiff_loop(
            lambda xw_t, s: C.lstm_step(xw_t, *s, U)[:2], _fused_projection(x, W, b), states
        )


class AutodiffGRU(F.FastGRU):
    batch_groups = 1

    def _run(self, x, states, W, U, b):
        return _autodiff_loop(
            lambda xw_t, s: C.gru_step(xw_t, s[0], U, b[1])[:1],
            _fused_projection(x, W, b[0]),
            states,
        )


def _fused_forward(xw, h0, c0, U):
    """Forward with one [H, 4H] product per step; keeps what the backward pass needs."""
    T = tf.shape(xw)[0]

    def body(t, h, c, *arrays):
        c_prev = c
        h, c, gates = C.lstm_step(xw[t], h, c, U)
        return (h, c, *[a.write(t, v) for a, v in zip(arrays, (h, *gates, c_prev), strict=True)])

    h, c, *arrays = C._loop(T, body, (h0, c0, *[C._array(h0, T, h0) for _ in range(7)]))
    return [a.stack() for a in arrays], h, c


def _fused_backward(dH, dhT, dcT, P, B, Fg, U):
    """Back through time with dz = [dc, dc, dc, dh] * P (a concat per step), one product."""
    T = tf.shape(dH)[0]
    UT = tf.transpose(U)

    def body(t, dh, dc, dzs):
        dh = dh + dH[t]
        dc = dc + dh * B[t]
        dz = tf.concat([dc, dc, dc, dh], -1) * P[t]
        return tf.matmul(dz, UT), dc * Fg[t], dzs.write(t, dz)

    dh0, dc0, dzs = C._loop(T, body, (dhT, dcT, C._array(dH, T, P[0])), reverse=True)
    return dzs.stack(), dh0, dc0


@tf.custom_gradient
def _fused_sequence(xw, h0, c0, U):
    saved, hT, cT = _fused_forward(xw, h0, c0, U)

    def grad(dH, dhT, dcT):
        H, i, f, g, o, tc, c_prev = saved
        P = tf.concat(
            [
                C._sigmoid_grad(i, g),
                C._sigmoid_grad(f, c_prev),
                C._tanh_grad(g, i),
                C._sigmoid_grad(o, tc),
            ],
            -1,
        )
        dZ, dh0, dc0 = _fused_backward(dH, dhT, dcT, P, C._tanh_grad(tc, o), f, U)
        return dZ, dh0, dc0, C._outer_sum_prev(h0, H, dZ)

    return (saved[0], hT, cT), grad


class FusedLSTM(F.FastLSTM):
    batch_groups = 2  # as it was kept: 2 groups of rows

    def _run(self, x, states, W, U, b):
        y, h, c = _fused_sequence(_fused_projection(x, W, b), *states, U)
        return tf.transpose(y, [1, 0, 2]), [h, c]


def _icfo(m):
    """Keras's gate columns i, f, c, o reordered to BlockLSTM's i, c, f, o."""
    i, f, c, o = tf.split(m, 4, axis=-1)
    return tf.concat([i, c, f, o], -1)


class Block1LSTM(F.FastLSTM):
    batch_groups = 1

    def _run(self, x, states, W, U, b):
        zero = tf.zeros([self.units], x.dtype)
        _, cs, _, _, _, _, hs = tf.raw_ops.BlockLSTM(
            seq_len_max=tf.cast(tf.shape(x)[1], tf.int64),
            x=tf.transpose(x, [1, 0, 2]),
            cs_prev=states[1],
            h_prev=states[0],
            w=_icfo(tf.concat([W, U], 0)),
            wci=zero,
            wcf=zero,
            wco=zero,
            b=_icfo(b),
            forget_bias=0.0,
            cell_clip=-1.0,
            use_peephole=False,
        )
        return tf.transpose(hs, [1, 0, 2]), [hs[-1], cs[-1]]


@tf.custom_gradient
def _block_v2(x, h0, c0, w, b):
    zero = tf.zeros([w.shape[1] // 4], x.dtype)
    common = dict(
        seq_len_max=tf.cast(tf.shape(x)[0], tf.int64),
        x=x,
        cs_prev=c0,
        h_prev=h0,
        w=w,
        wci=zero,
        wcf=zero,
        wco=zero,
        b=b,
        use_peephole=False,
    )
    i, cs, f, o, ci, co, h = tf.raw_ops.BlockLSTMV2(cell_clip=0.0, **common)

    def grad(dh, dcs):
        dh = tf.zeros_like(h) if dh is None else dh
        dcs = tf.zeros_like(cs) if dcs is None else dcs
        g = tf.raw_ops.BlockLSTMGradV2(
            i=i, cs=cs, f=f, o=o, ci=ci, co=co, h=h, cs_grad=dcs, h_grad=dh, **common
        )
        return g[0], g[2], g[1], g[3], g[7]  # x, h_prev, cs_prev, w, b

    return (h, cs), grad


class Block2LSTM(F.FastLSTM):
    batch_groups = 1

    def _run(self, x, states, W, U, b):
        hs, cs = _block_v2(
            tf.transpose(x, [1, 0, 2]), states[0], states[1], tf.concat([W, U], 0), b
        )
        return tf.transpose(hs, [1, 0, 2]), [hs[-1], cs[-1]]
