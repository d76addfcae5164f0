"""The transformer family (``--model gpt``): a decoder-only transformer whose state is its
key/value cache, as a :class:`~charlm.models.lm.LanguageModel`.

Pre-norm blocks (LayerNorm, causal self-attention, LayerNorm, an MLP of 4x the width with
GELU), rotary position embeddings (RoPE) on the queries and keys, an untied output layer.
One functional ``keras.Model`` ``[ids, *state] -> [logits, *state]``, as the recurrent
families are, so the trainer, the generator, the evaluator, the server and the run folder
take it as they are; its layers are registered Keras layers (package ``charlm``), so it saves
to a ``.keras`` file that loads with ``safe_mode=True`` and runs no code from the file.

The state of a row is, per layer, its keys and values of the last ``context`` characters,
``(heads, context, head_dim)`` each, in a ring (character ``p`` in slot ``p % context``),
and the row's position, the number of characters it has seen. A call with ``T`` new
characters attends over the ring and the new characters together, each query to the keys of
the ``context`` characters up to it (a sliding window): so a character of generation costs
O(context), and generation goes on past the context with no re-run of the window. Keys are
cached rotated at their own positions: with RoPE, a score depends only on how far apart the
two characters are, never on where the ring starts. Positions are float32: exact up to 2**24
characters a row, and the rotation angles of positions past about 10**5 lose precision, so a
stream that runs for hundreds of thousands of characters drifts (none of charlm's does yet).

A block attends over the last ``context`` characters of the block below it; stacked, a
character's logits depend on the last ``layers * (context - 1) + 1`` characters (as with
Mistral's sliding window), and a window, the same characters one at a time, and any chunks
of them give the same logits.

Training feeds windows from a zero state (an empty ring): the first character of a window sees
only itself, as in nanoGPT, and the step calls :meth:`GPTLM.fresh`, the same blocks with no
ring read or written, compiled with XLA in a budget of 5 minutes or more
(``training.step.uses_xla``); with ``--sampler consecutive`` the ring carries the previous
window, and each window also sees the ``context`` characters before it.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from ..options.sampling import seed_plus
from .keras_rnn import KerasLM
from .keras_rnn import load as load_keras

ROPE_BASE = 10000.0


def _normal(seed: int) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=0.02, seed=seed)


class _Sized(keras.layers.Layer):
    """What a block and its attention are made with, saved in their config: the width, the
    heads, the context, the dropout and the seed. Inputs are not cast to the compute dtype
    (``autocast=False``): the position stays float32 (in bfloat16 it is exact only up to
    256); the ring is cast where it is read."""

    def __init__(
        self, units: int, heads: int, context: int, dropout: float = 0.0, seed: int = 0, **kw
    ):
        kw.pop("autocast", None)
        super().__init__(autocast=False, **kw)
        self.units, self.heads, self.context = units, heads, context
        self.dropout, self.seed = dropout, seed

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "heads": self.heads,
            "context": self.context,
            "dropout": self.dropout,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="charlm")
class CausalAttention(_Sized):
    """Multi-head causal self-attention over a key/value ring of ``context`` characters and
    the new ones, with rotary positions; returns the output and the new ring."""

    def __init__(
        self, units: int, heads: int, context: int, dropout: float = 0.0, seed: int = 0, **kw
    ):
        super().__init__(units, heads, context, dropout, seed, **kw)
        self.head_dim = units // heads
        self.qkv = keras.layers.Dense(
            3 * units, use_bias=False, kernel_initializer=_normal(seed), dtype=self.dtype_policy
        )
        self.out = keras.layers.Dense(
            units,
            use_bias=False,
            kernel_initializer=_normal(seed_plus(seed, 1)),
            dtype=self.dtype_policy,
        )
        self.drop = keras.layers.Dropout(dropout, seed=seed_plus(seed, 2))

    def build(self, input_shape: Any) -> None:
        self.qkv.build(input_shape)
        self.out.build((*input_shape[:-1], self.units))

    def call(self, x, k_ring, v_ring, position, training=False):
        steps = ops.shape(x)[1]
        at = position[:, None] + ops.cast(ops.arange(steps), "float32")[None, :]  # [B, T]
        q, k, v = self._qkv(x, at)
        k_ring, v_ring = ops.cast(k_ring, q.dtype), ops.cast(v_ring, q.dtype)
        keys, values = ops.concatenate([k_ring, k], 2), ops.concatenate([v_ring, v], 2)
        key_at = ops.concatenate([_ring_positions(position, self.context), at], 1)  # [B, C+T]
        seen = (key_at[:, None, :] >= 0) & (key_at[:, None, :] <= at[:, :, None])
        seen = seen & (key_at[:, None, :] > at[:, :, None] - self.context)  # [B, T, C+T]
        y = self._attend(q, keys, values, seen[:, None], training)
        return y, _written(k_ring, k, at, self.context), _written(v_ring, v, at, self.context)

    def fresh(self, x, training=False):
        """The output for windows that start from an empty ring: each character attends to
        the last ``context`` characters up to it in its own window, and no ring is read or
        written. The same numbers as :meth:`call` from a zero state (but for dropout's
        masks on the attention weights, which have no ring slots here), for less work: a
        training step of nanoGPT's CPU shape (4x128, context 64, batch 12) took 112 ms this
        way against 129 ms through the ring, and 84 ms against 108 ms compiled with XLA
        (AMD EPYC, AVX2 only, 2026-12-07; medians of 4 interleaved rounds)."""
        steps = ops.shape(x)[1]
        at = ops.cast(ops.arange(steps), "float32")  # [T]
        q, k, v = self._qkv(x, at[None, :])
        seen = (at[None, :] <= at[:, None]) & (at[None, :] > at[:, None] - self.context)
        return self._attend(q, k, v, seen[None, None], training)

    def _qkv(self, x, at):
        """The queries, keys and values ``[B, H, T, D]`` of ``x`` ``[B, T, units]``, the
        queries and keys rotated at the positions ``at`` (``[B, T]``, or ``[1, T]``)."""
        batch, steps = ops.shape(x)[0], ops.shape(x)[1]
        qkv = ops.reshape(self.qkv(x), (batch, steps, 3, self.heads, self.head_dim))
        q, k, v = (ops.transpose(qkv[:, :, i], (0, 2, 1, 3)) for i in range(3))  # [B, H, T, D]
        return _rotated(q, at), _rotated(k, at), v

    def _attend(self, q, keys, values, seen, training):
        """Each query's softmax-weighted sum of the values whose keys it has ``seen`` (a mask
        that broadcasts to ``[B, H, T, K]``), through the output layer: ``[B, T, units]``."""
        batch, steps = ops.shape(q)[0], ops.shape(q)[2]
        scores = ops.einsum("bhqd,bhkd->bhqk", q, keys) / math.sqrt(self.head_dim)
        scores = ops.where(seen, ops.cast(scores, "float32"), -1e9)
        weights = self.drop(ops.cast(ops.softmax(scores, axis=-1), q.dtype), training=training)
        y = ops.transpose(ops.einsum("bhqk,bhkd->bhqd", weights, values), (0, 2, 1, 3))
        return self.out(ops.reshape(y, (batch, steps, self.units)))


def _rotated(x, at):
    """``x`` ``[B, H, T, D]`` rotated by RoPE at positions ``at`` ``[B, T]``: each pair of
    features (i, i + D/2) turned by ``at * base**(-2i/D)``."""
    half = ops.shape(x)[-1] // 2
    inverse = ROPE_BASE ** (-ops.cast(ops.arange(half), "float32") / ops.cast(half, "float32"))
    angle = at[:, None, :, None] * inverse  # [B, 1, T, D/2]
    cos, sin = ops.cast(ops.cos(angle), x.dtype), ops.cast(ops.sin(angle), x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return ops.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def _ring_positions(position, context: int):
    """The position of the character in each slot of a row's ring (negative: empty): slot
    ``s`` holds the latest ``p < position`` with ``p % context == s``."""
    last = position[:, None] - 1.0
    slots = ops.cast(ops.arange(context), "float32")[None, :]
    return last - ops.mod(last - slots, float(context))


def _written(ring, new, at, context: int):
    """``ring`` ``[B, H, C, D]`` with the new keys (or values) ``[B, H, T, D]`` at positions
    ``at`` written into their slots; of more than ``context`` new ones, the last ``context``."""
    steps = ops.shape(new)[2]
    last = ops.cast(ops.arange(steps) >= steps - context, new.dtype)  # [T]
    slot = ops.one_hot(ops.cast(ops.mod(at, float(context)), "int32"), context, dtype=new.dtype)
    into = slot * last[None, :, None]  # [B, T, C]
    kept = 1.0 - ops.max(into, axis=1)  # [B, C]
    return ring * kept[:, None, :, None] + ops.einsum("btc,bhtd->bhcd", into, new)


@keras.saving.register_keras_serializable(package="charlm")
class Block(_Sized):
    """One pre-norm transformer block: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(
        self, units: int, heads: int, context: int, dropout: float = 0.0, seed: int = 0, **kw
    ):
        super().__init__(units, heads, context, dropout, seed, **kw)
        policy = self.dtype_policy
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5, dtype=policy)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5, dtype=policy)
        self.attention = CausalAttention(units, heads, context, dropout, seed, dtype=policy)
        self.up = keras.layers.Dense(
            4 * units,
            activation="gelu",
            kernel_initializer=_normal(seed_plus(seed, 3)),
            dtype=policy,
        )
        self.down = keras.layers.Dense(
            units, kernel_initializer=_normal(seed_plus(seed, 4)), dtype=policy
        )
        self.drop = keras.layers.Dropout(dropout, seed=seed_plus(seed, 5))

    def build(self, input_shape: Any) -> None:
        for layer in (self.norm1, self.norm2, self.attention, self.up):
            layer.build(input_shape)
        self.down.build((*input_shape[:-1], 4 * self.units))

    def call(self, x, k_ring, v_ring, position, training=False):
        y, k_ring, v_ring = self.attention(
            self.norm1(x), k_ring, v_ring, position, training=training
        )
        return self._mlp(x + self.drop(y, training=training), training), k_ring, v_ring

    def fresh(self, x, training=False):
        """The block on windows that start from an empty ring (:meth:`CausalAttention.fresh`)."""
        y = self.attention.fresh(self.norm1(x), training)
        return self._mlp(x + self.drop(y, training=training), training)

    def _mlp(self, x, training):
        return x + self.drop(self.down(self.up(self.norm2(x))), training=training)


@keras.saving.register_keras_serializable(package="charlm")
class Advance(keras.layers.Layer):
    """A row's position after the characters ``ids`` ``[B, T]``: ``position + T``."""

    def call(self, position, ids):
        return position + ops.cast(ops.shape(ids)[1], "float32")


def build_gpt_model(
    vocab_size: int,
    layers: int,
    units: int,
    heads: int,
    context: int,
    dropout: float = 0.0,
    precision: str = "float32",
    seed: int = 0,
) -> keras.Model:
    """A functional model ``[ids, k_0, v_0, ..., position] -> [logits, k_0, v_0, ...,
    position]``; every initializer seeded from ``seed``.

    >>> m = build_gpt_model(vocab_size=30, layers=2, units=32, heads=4, context=16)
    >>> [tuple(t.shape) for t in m.inputs[1:]]
    [(None, 4, 16, 8), (None, 4, 16, 8), (None, 4, 16, 8), (None, 4, 16, 8), (None,)]
    """
    policy = "mixed_bfloat16" if precision == "mixed_bfloat16" else "float32"
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    ring = (heads, context, units // heads)
    rings = [keras.Input(shape=ring, name=f"{kv}_{i}") for i in range(layers) for kv in "kv"]
    position = keras.Input(shape=(), name="position")
    x = keras.layers.Embedding(
        vocab_size, units, embeddings_initializer=_normal(seed), dtype=policy, name="embedding"
    )(ids)
    x = keras.layers.Dropout(dropout, seed=seed_plus(seed, 1))(x)
    new_rings = []
    for i in range(layers):
        block = Block(units, heads, context, dropout, seed_plus(seed, 10 * (i + 1)), dtype=policy)
        x, k, v = block(x, rings[2 * i], rings[2 * i + 1], position)
        new_rings += [k, v]
    x = keras.layers.LayerNormalization(epsilon=1e-5, dtype=policy, name="norm")(x)
    logits = keras.layers.Dense(
        vocab_size,
        kernel_initializer=_normal(seed_plus(seed, 1000)),
        dtype="float32",
        name="logits",
    )(x)
    outputs = [logits, *new_rings, Advance(name="advance", dtype="float32")(position, ids)]
    return keras.Model([ids, *rings, position], outputs, name="charlm_gpt")


class GPTLM(KerasLM):
    """A :class:`~charlm.models.lm.LanguageModel` around :func:`build_gpt_model`'s model:
    :class:`KerasLM`'s calls, saving and loading, and a step that is a window of one."""

    def step(self, ids, state):
        """One character per row, ids ``[B]``: the window of one through the whole model
        (attention over the ring: O(context))."""
        logits, state = self(ids[:, None], state)
        return logits[:, 0], state

    def fresh(self, ids, training=False):
        """The logits of windows ``ids`` ``[B, T]`` from an empty ring, each block's
        :meth:`Block.fresh` (the layers of the model, called in its order)."""
        layers = self.keras_model.layers
        x = self.keras_model.get_layer("embedding")(ids)
        (dropout,) = (layer for layer in layers if isinstance(layer, keras.layers.Dropout))
        x = dropout(x, training=training)
        for block in (layer for layer in layers if isinstance(layer, Block)):
            x = block.fresh(x, training)
        logits = self.keras_model.get_layer("logits")(self.keras_model.get_layer("norm")(x))
        return ops.cast(logits, "float32")


def build(cfg: Any, vocab_size: int) -> GPTLM:
    """A transformer of ``cfg``'s shape (layers, units, heads, context) and precision."""
    return GPTLM(
        build_gpt_model(
            vocab_size,
            cfg.layers,
            cfg.units,
            cfg.heads,
            cfg.context,
            cfg.dropout,
            cfg.precision,
            cfg.seed,
        )
    )


def load(cfg: Any, vocab_size: int, path, way_out: str) -> GPTLM:
    """A ``.keras`` file of this family, safely (its layers are this module's, registered)."""
    return GPTLM(load_keras(cfg, vocab_size, path, way_out).keras_model)
