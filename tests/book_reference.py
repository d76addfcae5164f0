"""The d2l book's RNN-from-scratch recipe, written out again without charlm: a reference.

A port of Dive into Deep Learning, 1st edition (d2l-zh 1.x, §6.3–6.4: ``data_iter_random``,
``data_iter_consecutive``, ``get_params``, ``rnn``, ``grad_clipping``, ``sgd``,
``train_and_predict_rnn``) to numpy + plain TensorFlow. It shares no code with charlm, so the
tests (tests/test_samplers.py, tests/test_book_reference.py) and benchmarks/bench_d2l.py can
check charlm's samplers, clipping and training loop against it. (The two functions at the
end read charlm's initial weights and shuffle order, so that both can start from the same
point; the reference itself never calls charlm.)

What the book does, and this module with it:

- text: newlines (and carriage returns) become spaces, the first 10,000 characters are kept;
  the vocabulary is the text's distinct characters (here sorted, so it is deterministic).
- ``data_iter_random``: examples start at ``k * num_steps`` (``k < (len - 1) // num_steps``),
  shuffled each epoch; ``epoch_size = num_examples // batch_size``; a fresh zero state per batch.
- ``data_iter_consecutive``: ``batch_len = len // batch_size``; stream ``r`` is
  ``corpus[r * batch_len : (r + 1) * batch_len]``; ``epoch_size = (batch_len - 1) // num_steps``;
  the state is zeroed at the start of each epoch and carried (detached) from batch to batch.
- W ~ N(0, 0.01²), b = 0; H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h), O_t = H_t W_hq + b_q;
  loss = mean cross-entropy; g ← min(1, θ/‖g‖)·g over all parameters; p ← p − lr·g;
  perplexity of an epoch = exp(mean loss of its batches).

    >>> [x.tolist() for x, _ in data_iter_consecutive(list(range(10)), 2, 2)]
    [[[0, 1], [5, 6]], [[2, 3], [7, 8]]]
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np

NUM_HIDDENS, NUM_STEPS, BATCH_SIZE, LR, CLIPPING_THETA = 256, 35, 32, 100.0, 0.01
PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")


def load_text(path, max_chars: int = 10000) -> str:
    """The book's ``load_data_jay_lyrics`` on any UTF-8 file: newlines to spaces, first N chars."""
    text = Path(path).read_text(encoding="utf-8")
    return text.replace("\n", " ").replace("\r", " ")[:max_chars]


def data_iter_random(corpus_indices, batch_size, num_steps, shuffle=random.shuffle):
    """d2l-zh 1.x ``data_iter_random`` (``shuffle`` shuffles a list in place)."""
    num_examples = (len(corpus_indices) - 1) // num_steps
    epoch_size = num_examples // batch_size
    example_indices = list(range(num_examples))
    shuffle(example_indices)

    def _data(pos):
        return corpus_indices[pos : pos + num_steps]

    for i in range(epoch_size):
        i = i * batch_size
        batch_indices = example_indices[i : i + batch_size]
        X = [_data(j * num_steps) for j in batch_indices]
        Y = [_data(j * num_steps + 1) for j in batch_indices]
        yield np.array(X), np.array(Y)


def replay_order(order):
    """A ``shuffle`` for :func:`data_iter_random` that puts the examples in the given order
    (example numbers; those it does not name follow, ascending): to replay the order another
    implementation drew, so the two can be compared batch by batch."""
    order = [int(k) for k in order]

    def shuffle(indices):
        rest = sorted(set(indices) - set(order))
        if sorted(order + rest) != sorted(indices):
            raise ValueError("the order is not a permutation of the book's examples")
        indices[:] = order + rest

    return shuffle


def data_iter_consecutive(corpus_indices, batch_size, num_steps):
    """d2l-zh 1.x ``data_iter_consecutive``."""
    corpus_indices = np.array(corpus_indices)
    data_len = len(corpus_indices)
    batch_len = data_len // batch_size
    indices = corpus_indices[0 : batch_size * batch_len].reshape((batch_size, batch_len))
    epoch_size = (batch_len - 1) // num_steps
    for i in range(epoch_size):
        i = i * num_steps
        X = indices[:, i : i + num_steps]
        Y = indices[:, i + 1 : i + num_steps + 1]
        yield X, Y


def get_params(vocab_size: int, num_hiddens: int = NUM_HIDDENS, seed: int = 0) -> dict:
    """W ~ N(0, 0.01²), b = 0, as numpy arrays named as in the book."""
    rng = np.random.default_rng(seed)

    def normal(shape):
        return rng.normal(0, 0.01, shape).astype(np.float32)

    return {
        "W_xh": normal((vocab_size, num_hiddens)),
        "W_hh": normal((num_hiddens, num_hiddens)),
        "b_h": np.zeros(num_hiddens, np.float32),
        "W_hq": normal((num_hiddens, vocab_size)),
        "b_q": np.zeros(vocab_size, np.float32),
    }


def _make_step(params: list, vocab_size: int, num_steps: int, lr: float, theta: float):
    """One compiled minibatch step: forward, mean CE, grad_clipping, sgd -> (loss, ‖g‖, H)."""
    import tensorflow as tf

    @tf.function
    def step(X, Y, H):
        W_xh, W_hh, b_h, W_hq, b_q = params
        with tf.GradientTape() as tape:
            inputs = tf.one_hot(tf.transpose(X), vocab_size)  # to_onehot: num_steps x [B, V]
            outputs = []
            for t in range(num_steps):
                H = tf.tanh(tf.matmul(inputs[t], W_xh) + tf.matmul(H, W_hh) + b_h)
                outputs.append(tf.matmul(H, W_hq) + b_q)
            logits = tf.concat(outputs, 0)
            y = tf.reshape(tf.transpose(Y), [-1])
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        grads = tape.gradient(loss, params)
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(g * g) for g in grads]))
        scale = tf.where(norm > theta, theta / norm, 1.0)  # grad_clipping
        for p, g in zip(params, grads, strict=True):
            p.assign_sub(lr * scale * g)  # sgd (the loss is already a mean)
        return loss, norm, H

    return step


def train(
    text: str,
    sampler: str,
    epochs: int = 250,
    steps: int = 0,
    params: dict | None = None,
    chars: list | None = None,
    shuffle=None,
    seed: int = 0,
    num_hiddens: int = NUM_HIDDENS,
    num_steps: int = NUM_STEPS,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    theta: float = CLIPPING_THETA,
) -> dict:
    """The book's ``train_and_predict_rnn`` (``is_random_iter = sampler == "random"``).

    ``params``: initial weights by name (default :func:`get_params`); ``chars``: the vocabulary
    in id order (default the text's distinct characters, sorted); ``shuffle(epoch, indices)``
    shuffles the random sampler's example list in place (default ``random.Random(seed)``).
    Stops after ``epochs`` or, if given, ``steps``. Returns the perplexity of each completed
    epoch, the loss and gradient norm (before clipping) of every step, seconds and vocab size.
    """
    import tensorflow as tf

    chars = list(chars) if chars is not None else sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    corpus = [index[c] for c in text]
    params = params if params is not None else get_params(len(chars), num_hiddens, seed)
    variables = [tf.Variable(np.asarray(params[n], np.float32)) for n in PARAM_NAMES]
    step = _make_step(variables, len(chars), num_steps, lr, theta)
    if shuffle is None:
        shuffle = lambda epoch, indices, _r=random.Random(seed): _r.shuffle(indices)  # noqa: E731, B008 (one Random per run, made once)
    out = {"perplexity": {}, "losses": [], "grad_norms": [], "vocab": len(chars)}
    t0 = time.perf_counter()
    for epoch in range(epochs):
        if sampler == "consecutive":
            batches = data_iter_consecutive(corpus, batch_size, num_steps)
        else:
            batches = data_iter_random(
                corpus,
                batch_size,
                num_steps,
                shuffle=lambda indices, epoch=epoch: shuffle(epoch, indices),
            )
        H = tf.zeros([batch_size, num_hiddens])  # consecutive: once per epoch
        l_sum, n = 0.0, 0
        for X, Y in batches:
            if sampler == "random":
                H = tf.zeros([batch_size, num_hiddens])  # random: every batch
            loss, norm, H = step(tf.constant(X), tf.constant(Y), H)  # H: a new tensor (detached)
            out["losses"].append(float(loss))
            out["grad_norms"].append(float(norm))
            l_sum, n = l_sum + float(loss), n + 1
            if steps and len(out["losses"]) >= steps:
                break
        else:  # the epoch ran to its end
            out["perplexity"][epoch + 1] = math.exp(l_sum / n)
        if steps and len(out["losses"]) >= steps:
            break
    out["seconds"] = time.perf_counter() - t0
    return out


# -- the same starting point as charlm (for comparisons; the loop above never calls these) ---


def charlm_initial_weights(vocab_size: int, seed: int = 0) -> dict:
    """The weights charlm's scratch-rnn 1 x 256 starts from with this seed, by the book's names."""
    from charlm.models.scratch import ScratchLM

    model = ScratchLM(vocab_size, cell="rnn", units=NUM_HIDDENS, seed=seed)
    cell = model.cells[0]
    return dict(
        zip(
            PARAM_NAMES,
            (v.numpy() for v in (cell.W_xh, cell.W_hh, cell.b_h, model.W_hq, model.b_q)),
            strict=True,
        )
    )


def charlm_shuffle(ids, seed: int = 0, num_steps: int = NUM_STEPS, batch_size: int = BATCH_SIZE):
    """``shuffle(epoch, indices)`` for :func:`train`: each epoch's example order as charlm's
    random sampler with the fixed cut draws it (seed ``seed``)."""
    from charlm.text.samplers import make_sampler

    sampler = make_sampler("random", ids, num_steps, batch_size, cut="fixed")

    def shuffle(epoch, indices):
        replay_order(sampler.plan(epoch, seed).ravel() // num_steps)(indices)

    return shuffle
