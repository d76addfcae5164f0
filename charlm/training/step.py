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
from ..models.families import family
from ..text.samplers import SAMPLERS
from .clipping import clip_by_global_norm

# seconds of budget from which an XLA step pays: at 90 s on the Tang poems (AMD EPYC, AVX2 only)
# measuring two families took 45 s, compiling the chosen transformer's step some more, and it
# trained 102 steps (XLA adds ~4-8 s to each step built, for a step ~25 % faster)
XLA_MIN_BUDGET = 300.0


def make_optimizer(name: str, lr: float) -> keras.optimizers.Optimizer:
    """A Keras optimizer by its lower-case name (config.CHOICES["optimizer"] lists them)."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": lr}})


def forward(model, x, state, fresh: bool):
    """``(logits, new_state)`` of a training batch. ``fresh``: every window starts from the
    initial state (the random sampler), so ``state`` is that state and is not read: the
    model's :meth:`~charlm.models.lm.LanguageModel.fresh` computes the same logits by its
    cheapest way, and the state comes back as it came in (no one carries it)."""
    if fresh:
        return model.fresh(x, training=True), list(state)
    return model(x, state, training=True)


def loss_and_gradients(model, variables: list, x, y, state, fresh: bool = False):
    """``(loss, gradients, new_state)`` of one batch: the mean cross-entropy of ``model``'s
    logits for targets ``y`` (:func:`forward`), and its gradients with respect to
    ``variables``, unclipped. Call it inside a ``tf.function``; it is the part every variant
    of the step shares."""
    with tf.GradientTape() as tape:
        logits, new_state = forward(model, x, state, fresh)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
    return loss, tape.gradient(loss, variables), new_state


def make_train_step(model, optimizer, clip_norm: float, fresh: bool = False, xla: bool = False):
    """The compiled training step ``(x, y, state) -> (loss, grad_norm, new_state)``: mean
    cross-entropy, gradients clipped to global norm ``clip_norm`` (0 = off), one update;
    ``fresh`` as in :func:`forward`; ``xla``: compiled with XLA (the family table's
    ``xla_training`` says for which families that was measured faster)."""
    variables = list(model.trainable_variables)
    if not optimizer.built:  # its slots made now, not in a first trace that is then redone
        optimizer.build(variables)

    def step(x, y, state):
        loss, grads, new_state = loss_and_gradients(model, variables, x, y, state, fresh)
        if xla:  # an embedding's sparse gradient, clipped and applied, made XLA recompile the
            grads = [_dense(g) for g in grads]  # step at every call (4-7 s a step, tiny GPT)
        grads, norm = clip_by_global_norm(grads, clip_norm)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, norm, new_state

    return graphs.function(step, jit_compile=xla)


def _dense(g):
    return tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g


def step_for(cfg, model, optimizer):
    """The training step of ``cfg``: from the initial state (``fresh``) unless its sampler
    carries the state between batches, compiled with XLA where :func:`uses_xla` says."""
    fresh = not SAMPLERS[cfg.sampler].carries_state
    return make_train_step(model, optimizer, cfg.clip_norm, fresh, uses_xla(cfg))


def uses_xla(cfg) -> bool:
    """Whether ``cfg``'s training step is compiled with XLA: where its family's table says so,
    it computes in float32 (XLA in bfloat16 was never measured: no CPU here had it when XLA
    was tried; such a step stays a graph, on the bf16 kernels measured faster) and the run has
    a budget of XLA_MIN_BUDGET or more (each compilation costs seconds that a short run cannot
    win back: the budget recipe compiles its calibration's steps and then the trainer's; a run
    with no budget may be as short as a test's, where XLA doubled a tiny transformer's
    resume test, 21 s -> 46 s, on an AVX2-only AMD EPYC)."""
    budget = cfg.time_budget_seconds
    long_enough = budget is not None and budget >= XLA_MIN_BUDGET
    return family(cfg.model).xla_training and cfg.precision == "float32" and long_enough
