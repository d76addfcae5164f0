"""charlm's d2l recipe step for step against the book's loop written out without charlm.

tests/book_reference.py ports d2l-zh 1.x (its samplers, ``rnn``, ``grad_clipping``, ``sgd``).
Started from the same initial weights, on the same text, with the fixed cut and the same
shuffle, charlm's scratch-rnn must see the same loss and gradient norm at every step: this
checks the batches, the state carried (consecutive) or reset (random), the one-hot input,
the mean cross-entropy, the θ/‖g‖ clipping and the SGD update, across an epoch boundary.
(benchmarks/bench_d2l.py runs both for 250 epochs and compares the perplexity curves.)
"""

import numpy as np
import pytest
from book_reference import charlm_initial_weights, charlm_shuffle, load_text
from book_reference import train as book_train
from conftest import CONFIGS, CORPORA

STEPS = 12  # an epoch of the recipe is 8 steps: this crosses into the second epoch
TANG = CORPORA / "tang_poems.txt"


@pytest.mark.parametrize("sampler", ["consecutive", "random"])
def test_charlm_and_the_books_loop_take_the_same_steps_from_the_same_weights(sampler, tmp_path):
    import charlm
    from charlm.text.vocab import Vocab

    text = load_text(TANG)
    vocab = Vocab.from_text(text)
    run = charlm.train(
        [str(TANG)],
        config=str(CONFIGS / "d2l-scratch-rnn.toml"),
        cut="fixed",
        sampler=sampler,
        steps=STEPS,
        eval_every=1,
        sample_every_epochs=0,
        run_dir=str(tmp_path),
        name=sampler,
        log=lambda *a: None,
        progress=False,
    )
    book = book_train(
        text,
        sampler,
        steps=STEPS,
        params=charlm_initial_weights(len(vocab)),
        chars=vocab.chars,
        shuffle=charlm_shuffle(vocab.encode(text)),
    )
    rows = run.metrics()
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    losses = [float(r["train_loss"]) for r in rows]
    norms = [float(r["grad_norm"]) for r in rows]
    np.testing.assert_allclose(losses, book["losses"], rtol=1e-4)
    np.testing.assert_allclose(norms, book["grad_norms"], rtol=1e-3)
    assert losses[-1] < losses[0] - 0.5  # and it learns: the comparison is not of a flat line
