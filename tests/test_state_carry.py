"""The hidden state between batches, as the trainer really runs it: carried (and detached) by
the consecutive sampler, reset by the random sampler."""

from itertools import pairwise

import numpy as np
import pytest
import tensorflow as tf
from conftest import CORPORA, TINY

import charlm
import charlm.training.trainer


class StepRecorder(charlm.training.trainer.Callback):
    """Record, per step, the state fed in, the state that came out, and the gradients — plus
    the gradients recomputed from a detached copy of the state."""

    def __init__(self):
        self.calls = []

    def on_batch_begin(self, trainer, x, y, state):
        state_in = [tf.constant(s.numpy()) for s in state]
        with tf.GradientTape() as tape:  # the same loss from a constant copy of the state
            logits, _ = trainer.model(x, state_in, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
        detached_grads = tape.gradient(loss, trainer.variables)
        self.calls.append(
            {
                "state_in": [s.numpy() for s in state_in],
                "weights_before": [v.numpy() for v in trainer.variables],
                "detached_grads": [tf.convert_to_tensor(g).numpy() for g in detached_grads],
                "x": x.numpy(),
            }
        )

    def on_batch_end(self, trainer, loss, grad_norm, state):
        self.calls[-1]["state_out"] = [s.numpy() for s in state]


@pytest.fixture
def recorded_steps():
    return StepRecorder()


def train(model, sampler, recorder, steps=6):
    return charlm.train(
        [CORPORA / "timemachine.txt"],
        model=model,
        sampler=sampler,
        progress=False,
        callbacks=[recorder],
        **dict(TINY, max_chars=4000, steps=steps, seed=2, optimizer="sgd", lr=0.5, clip_norm=0.0),
    )


@pytest.mark.parametrize("model", ["scratch-rnn", "scratch-lstm", "lstm"])
def test_consecutive_batches_start_from_the_previous_batch_final_state(
    workdir, recorded_steps, model
):
    train(model, "consecutive", recorded_steps)
    calls = recorded_steps.calls
    assert len(calls) == 6
    assert all(not np.any(s) for s in calls[0]["state_in"])  # an epoch starts from zeros
    for prev, cur in pairwise(calls):
        for out, inp in zip(prev["state_out"], cur["state_in"], strict=True):
            np.testing.assert_array_equal(out, inp)
        assert np.any(cur["state_in"][0])


@pytest.mark.parametrize("model", ["scratch-gru", "gru"])
def test_no_gradient_crosses_the_batch_boundary(workdir, recorded_steps, model):
    """The update of batch b+1 equals the one computed from a constant copy of its initial
    state: nothing flows back into batch b (the state is detached)."""
    run = train(model, "consecutive", recorded_steps, steps=3)
    calls = recorded_steps.calls
    lr = 0.5
    for i in range(1, len(calls)):
        before, after = (
            calls[i]["weights_before"],
            (
                calls[i + 1]["weights_before"]
                if i + 1 < len(calls)
                else [v.numpy() for v in run.model.trainable_variables]
            ),
        )
        for w0, w1, g in zip(before, after, calls[i]["detached_grads"], strict=True):
            np.testing.assert_allclose(w1, w0 - lr * g, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", ["scratch-rnn", "gru"])
def test_random_sampling_resets_the_state_every_batch(workdir, recorded_steps, model):
    train(model, "random", recorded_steps)
    assert len(recorded_steps.calls) == 6
    for call in recorded_steps.calls:
        assert all(not np.any(s) for s in call["state_in"])
        # the step from a zero state does not compute the state no one carries: it is the
        # zeros it was given
        assert all(not np.any(s) for s in call["state_out"])


def test_consecutive_state_is_reset_at_each_epoch(workdir, recorded_steps):
    charlm.train(
        [CORPORA / "timemachine.txt"],
        model="scratch-rnn",
        sampler="consecutive",
        progress=False,
        callbacks=[recorded_steps],
        **dict(TINY, max_chars=1000, epochs=3, seed=2),
    )
    zero_starts = [
        i for i, c in enumerate(recorded_steps.calls) if not any(np.any(s) for s in c["state_in"])
    ]
    assert len(recorded_steps.calls) > 6 and len(zero_starts) == 3 and zero_starts[0] == 0
