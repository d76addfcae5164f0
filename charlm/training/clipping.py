"""Gradient clipping by global norm (d2l, "Gradient Clipping"):

    g ← min(1, θ / ‖g‖) · g,    ‖g‖ = sqrt(Σ_i Σ_j g_ij²)

where g is every gradient of every parameter taken together as one vector, so all of them
are scaled by the same factor and the update keeps its direction.

Example::

    grads = tape.gradient(loss, model.trainable_variables)
    grads, norm = clip_by_global_norm(grads, clip_norm=1.0)
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["clip_by_global_norm"]


def _sum_of_squares(g) -> tf.Tensor:
    """Σ_j g_j² in float32.  An ``IndexedSlices`` (e.g. an embedding's gradient) is the sum of
    its slices, so slices that share a row are added together first, into a row per row of
    the variable (a ``tf.unique`` of the indices, whose length is known only at run time, kept
    XLA from compiling a step with it: it had not finished after 4 minutes)."""
    if isinstance(g, tf.IndexedSlices):
        g = tf.math.unsorted_segment_sum(g.values, g.indices, g.dense_shape[0])
    return tf.reduce_sum(tf.square(tf.cast(g, tf.float32)))


def clip_by_global_norm(grads, clip_norm) -> tuple[list, tf.Tensor]:
    """Scale ``grads`` by min(1, θ/‖g‖) with θ = ``clip_norm``; return (grads, ‖g‖ before).

    - ``clip_norm`` None or <= 0: no clipping (the gradients are returned as they are); the
      norm is still computed and returned.
    - ``None`` gradients (variables the loss does not depend on) pass through as ``None``.
    - ‖g‖ ≤ θ leaves every gradient unchanged bit for bit (the scale is exactly 1), which
      includes ‖g‖ = 0: the scale is computed as θ / max(‖g‖, θ), never 0/0.
    - ‖g‖ not finite (inf or NaN somewhere): the gradients come back as zeros, so applying
      them cannot write inf/NaN into the weights; the returned norm shows what happened,
      and a trainer should skip the step.  (``tf.clip_by_global_norm`` returns NaNs here.)

    Works eagerly and inside ``tf.function``; ``clip_norm`` may be a Python number or a
    scalar tensor.  Differs from ``tf.clip_by_global_norm`` only in the non-finite case and
    for ``IndexedSlices`` with repeated indices (TF squares the slices before adding them).
    """
    grads = list(grads)
    present = [i for i, g in enumerate(grads) if g is not None]
    squares = [_sum_of_squares(grads[i]) for i in present]
    norm = tf.sqrt(tf.add_n(squares)) if squares else tf.constant(0.0)
    no_clipping = clip_norm is None or (isinstance(clip_norm, (int, float)) and clip_norm <= 0)
    if no_clipping or not present:
        return grads, norm
    theta = tf.cast(clip_norm, tf.float32)
    scale = tf.where(theta > 0.0, theta / tf.maximum(norm, theta), 1.0)  # min(1, θ/‖g‖)
    # Not finite: 0 · inf would be NaN, so return zeros instead of scaling.
    scaled = tf.cond(
        tf.math.is_finite(norm),
        lambda: [_scale(grads[i], scale) for i in present],
        lambda: [_zeros_like(grads[i]) for i in present],
    )
    clipped = list(grads)
    for i, g in zip(present, scaled, strict=True):
        clipped[i] = g
    return clipped, norm


def _scale(g, scale):
    """scale · g (for ``IndexedSlices``: scale · each slice)."""
    if isinstance(g, tf.IndexedSlices):
        return tf.IndexedSlices(g.values * tf.cast(scale, g.values.dtype), g.indices, g.dense_shape)
    return g * tf.cast(scale, g.dtype)


def _zeros_like(g):
    if isinstance(g, tf.IndexedSlices):
        return tf.IndexedSlices(tf.zeros_like(g.values), g.indices, g.dense_shape)
    return tf.zeros_like(g)
