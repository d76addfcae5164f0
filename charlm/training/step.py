"""The compiled training step and the optimizer it updates, shared by the trainer, the budget
recipe's speed measurement and the benchmarks::

    with tf.GradientTape() as tape:
        logits, state = model(x, state, training=True)
        loss = mean cross-entropy(y, logits)     # nats per character
    g = tape.gradient(loss, θ)
    g ← min(1, clip_norm / ‖g‖) · g              # global-norm clipping (training.clipping)
    optimizer.apply_gradients(g, θ)

Example::

    optimizer = make_optimizer("adam", 0.01)
    step = make_train_step(model, optimizer, clip_norm=1.0)
    loss, grad_norm, state = step(x, y, model.initial_state(batch_size))

The distributed step (charlm.training.distribute) is this one over replicas.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .. import graphs
from .clipping import clip_by_global_norm


def make_optimizer(name: str, lr: float) -> keras.optimizers.Optimizer:
    """A Keras optimizer by its lower-case name (config.CHOICES["optimizer"] lists them)."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": lr}})


def loss_and_gradients(model, variables: list, x, y, state):
    """``(loss, gradients, new_state)`` of one batch: the mean cross-entropy of ``model``'s
    logits for targets ``y``, and its gradients with respect to ``variables``, unclipped.
    Call it inside a ``tf.function``; it is the part every variant of the step shares."""
    with tf.GradientTape() as tape:
        logits, new_state = model(x, state, training=True)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
    return loss, tape.gradient(loss, variables), new_state


def make_train_step(model, optimizer, clip_norm: float):
    """The compiled training step ``(x, y, state) -> (loss, grad_norm, new_state)``: mean
    cross-entropy, gradients clipped to global norm ``clip_norm`` (0 = off), one update."""
    variables = list(model.trainable_variables)

    def step(x, y, state):
        loss, grads, new_state = loss_and_gradients(model, variables, x, y, state)
        grads, norm = clip_by_global_norm(grads, clip_norm)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, norm, new_state

    return graphs.function(step)
