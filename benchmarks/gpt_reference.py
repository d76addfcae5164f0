"""A small GPT with nanoGPT's CPU recipe, in Keras 3: the transformer contender of race.py.

nanoGPT's README trains a "baby GPT" on tiny Shakespeare on a CPU with ``--block_size=64
--batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --dropout=0.0`` on top of
config/train_shakespeare_char.py (lr 1e-3, min_lr 1e-4, beta2 0.99, 100 warm-up iterations,
weight decay 0.1, grad clip 1.0, no biases). This is that model and recipe:

* token and learned position embeddings (128), 4 pre-LayerNorm blocks of causal
  self-attention (4 heads) and a 4x GELU MLP, a final LayerNorm, the output layer tied to the
  token embedding; no biases (LayerNorm without its shift), no dropout; weights drawn from
  N(0, 0.02), the residual projections from N(0, 0.02 / sqrt(2 * 4)), as nanoGPT draws them;
* AdamW (betas 0.9, 0.99, eps 1e-8) with weight decay 0.1 on the parameters of 2 or more
  dimensions (the matrices and both embeddings: nanoGPT's ``configure_optimizers``), none on
  the LayerNorm gains; gradients clipped to a global norm of 1.0;
* batches of 12 windows of 64 characters at random offsets (nanoGPT's ``get_batch``);
* learning rate: linear warm-up over 100 iterations, then a cosine from 1e-3 down to 1e-4
  (10 %) that ends at the deadline: the schedule is stretched to the budget by the clock
  (progress = time since warm-up / time from warm-up to the deadline), not by a step count.

Tiny Shakespeare's first 90 % trains (the cut of charlm.text.corpus.split_corpus(text, 0.1)),
the vocabulary is the training text's. Like keras_reference.py it is handed its launch time,
stops when the next step would end past ``budget - reserve`` seconds after launch, saves
``gpt.weights.h5`` and ``gpt.json`` and exits at once (skipping the interpreter's teardown,
as ``charlm train`` does); race.py scores the weights afterwards, each
64-character window with its own causal context (:func:`scoring_model`).

    python benchmarks/gpt_reference.py --budget 90 --launch-time "$(date +%s.%N)" --out /tmp/gpt
    python benchmarks/gpt_reference.py --compare-xla 300   # ms/step with and without XLA
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

N_LAYER, N_HEAD, N_EMBD, BLOCK, BATCH = 4, 4, 128, 64, 12
LR, MIN_LR, WARMUP, WEIGHT_DECAY, BETAS, CLIP = 1e-3, 1e-4, 100, 0.1, (0.9, 0.99), 1.0
# XLA off: --compare-xla 300 on the shared 2-core Xeon (load ~4.5) gave 110 ms/step without,
# 114 with, and XLA's compile cost ~6 s more at start-up
XLA = False
CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "tinyshakespeare.txt"


def _normal(std: float):
    return keras.initializers.RandomNormal(stddev=std)


def _layer_norm():
    return keras.layers.LayerNormalization(epsilon=1e-5, center=False)  # nanoGPT: bias=False


def causal_attention(qkv):
    """softmax(q kᵀ / √d + causal mask) v over N_HEAD heads; qkv [B, T, 3C] -> [B, T, C]."""
    b, t = tf.shape(qkv)[0], tf.shape(qkv)[1]
    d = N_EMBD // N_HEAD

    def heads(z):  # [B, T, C] -> [B, H, T, d]
        return tf.transpose(tf.reshape(z, [b, t, N_HEAD, d]), [0, 2, 1, 3])

    q, k, v = (heads(z) for z in tf.split(qkv, 3, axis=-1))
    att = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(d))
    causal = tf.linalg.band_part(tf.ones([t, t], tf.bool), -1, 0)
    att = tf.nn.softmax(tf.where(causal, att, tf.fill(tf.shape(att), -1e9)), axis=-1)
    return tf.reshape(tf.transpose(tf.matmul(att, v), [0, 2, 1, 3]), [b, t, N_EMBD])


class Block(keras.layers.Layer):
    """x + attn(ln_1(x)), then x + mlp(ln_2(x)): nanoGPT's pre-LayerNorm block."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        proj = _normal(0.02 / math.sqrt(2 * N_LAYER))
        self.ln_1, self.ln_2 = _layer_norm(), _layer_norm()
        self.c_attn = keras.layers.Dense(
            3 * N_EMBD, use_bias=False, kernel_initializer=_normal(0.02)
        )
        self.attn_proj = keras.layers.Dense(N_EMBD, use_bias=False, kernel_initializer=proj)
        self.c_fc = keras.layers.Dense(4 * N_EMBD, use_bias=False, kernel_initializer=_normal(0.02))
        self.mlp_proj = keras.layers.Dense(N_EMBD, use_bias=False, kernel_initializer=proj)

    def call(self, x):
        x = x + self.attn_proj(causal_attention(self.c_attn(self.ln_1(x))))
        return x + self.mlp_proj(tf.nn.gelu(self.c_fc(self.ln_2(x)), approximate=False))


class GPT(keras.Model):
    """ids [B, T ≤ BLOCK] -> logits [B, T, vocab]; the output layer is the token embedding."""

    def __init__(self, vocab_size: int, **kwargs):
        super().__init__(**kwargs)
        self.wte = keras.layers.Embedding(vocab_size, N_EMBD, embeddings_initializer=_normal(0.02))
        self.wpe = keras.layers.Embedding(BLOCK, N_EMBD, embeddings_initializer=_normal(0.02))
        self.blocks = [Block() for _ in range(N_LAYER)]
        self.ln_f = _layer_norm()

    def call(self, ids):
        x = self.wte(ids) + self.wpe(tf.range(tf.shape(ids)[1]))
        for block in self.blocks:
            x = block(x)
        return tf.matmul(self.ln_f(x), self.wte.embeddings, transpose_b=True)


def build_model(vocab_size: int) -> GPT:
    model = GPT(vocab_size)
    model(tf.zeros([1, BLOCK], tf.int32))  # create the weights
    return model


def make_optimizer(model) -> keras.optimizers.AdamW:
    """AdamW with decay on the parameters of 2+ dimensions only (nanoGPT's two groups)."""
    opt = keras.optimizers.AdamW(
        LR, weight_decay=WEIGHT_DECAY, beta_1=BETAS[0], beta_2=BETAS[1], epsilon=1e-8,
        global_clipnorm=CLIP,
    )  # fmt: skip
    opt.exclude_from_weight_decay(var_list=[v for v in model.trainable_variables if v.ndim < 2])
    return opt


def make_step(model, optimizer, xla: bool = XLA):
    """One AdamW update on a batch (x, y) of ids [BATCH, BLOCK]; returns the mean loss."""

    @tf.function(jit_compile=xla)
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return step


def learning_rate(it: int, now: float, decay_start: float | None, deadline: float) -> float:
    """nanoGPT's get_lr with the decay stretched to the deadline by the clock:
    ``LR·(it+1)/(WARMUP+1)`` while warming up, then a cosine to MIN_LR at ``deadline``."""
    if it < WARMUP or decay_start is None:
        return LR * (it + 1) / (WARMUP + 1)
    progress = min(1.0, max(0.0, (now - decay_start) / max(1e-9, deadline - decay_start)))
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * progress)) * (LR - MIN_LR)


def read_split():
    """(train ids, vocabulary): the first 90 % of tiny Shakespeare, as charlm splits it."""
    text = CORPUS.read_text(encoding="utf-8")
    train = text[: len(text) - int(len(text) * 0.1)]
    chars = sorted(set(train))
    index = {c: i for i, c in enumerate(chars)}
    return np.array([index[c] for c in train], np.int32), chars


def batches(ids: np.ndarray, seed: int):
    """nanoGPT's get_batch, forever: BATCH windows at uniform random offsets."""
    rng, offsets = np.random.default_rng(seed), np.arange(BLOCK + 1)
    while True:
        w = ids[rng.integers(0, len(ids) - BLOCK, BATCH)[:, None] + offsets]
        yield tf.constant(w[:, :-1]), tf.constant(w[:, 1:])


def train(ids, vocab_size: int, deadline: float, seed: int, xla: bool, log_every: int = 50):
    """Train until the next step would end past ``deadline`` (time.time()); returns the model
    and the run's record (steps, seconds, the train loss every ``log_every`` steps)."""
    keras.utils.set_random_seed(seed)
    model = build_model(vocab_size)
    optimizer = make_optimizer(model)
    step = make_step(model, optimizer, xla)
    rec = {"steps": 0, "fit_start": time.time(), "curve": [], "decay_start": None}
    last, losses = rec["fit_start"], []
    for x, y in batches(ids, seed):
        now = time.time()
        if rec["steps"] and now + (now - last) * (rec["steps"] > 1) >= deadline:
            break
        if rec["steps"] == WARMUP:
            rec["decay_start"] = now
        optimizer.learning_rate.assign(
            learning_rate(rec["steps"], now, rec["decay_start"], deadline)
        )
        last = now
        losses.append(float(step(x, y)))
        rec["steps"] += 1
        if rec["steps"] % log_every == 0:
            rec["curve"].append(
                [rec["steps"], time.time() - rec["fit_start"], float(np.mean(losses[-log_every:]))]
            )
    rec["fit_seconds"] = last - rec["fit_start"]
    rec["last_train_loss"] = float(np.mean(losses[-50:]))
    return model, rec


class Scored:
    """charlm's model interface (benchmarks/_scoring.py) around the GPT: it has no state, so
    each call scores its window from an empty context, with causal attention inside it."""

    def __init__(self, model: GPT):
        self.model = model

    def initial_state(self, batch_size: int) -> list:
        return []

    def __call__(self, ids, state, training=False):
        return self.model(ids, training=training), state


def scoring_model(folder: Path):
    """The saved GPT as a scoring model, and its characters."""
    chars = json.loads((Path(folder) / "gpt.json").read_text())["chars"]
    model = build_model(len(chars))
    model.load_weights(str(Path(folder) / "gpt.weights.h5"))
    return Scored(model), chars


def compare_xla(steps: int) -> None:
    """ms per step with and without XLA, after 20 steps of warm-up each (noisy when the
    machine is shared; the ratio is what to read)."""
    ids, chars = read_split()
    for xla in (False, True):
        keras.utils.set_random_seed(0)
        model = build_model(len(chars))
        step, data = make_step(model, make_optimizer(model), xla), batches(ids, 0)
        t0 = time.perf_counter()
        for _ in range(20):
            float(step(*next(data)))
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(steps):
            float(step(*next(data)))
        ms = 1000 * (time.perf_counter() - t0) / steps
        print(f"xla={xla}: {ms:.2f} ms/step over {steps} steps (first 20 steps {warm:.1f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, help="seconds, launch to exit")
    p.add_argument("--launch-time", type=float, default=time.time(), help="time.time() at launch")
    p.add_argument("--out", help="folder for gpt.weights.h5 and gpt.json")
    p.add_argument("--reserve", type=float, default=2.0, help="seconds kept for saving and exit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--xla", action="store_true", help="compile the step with XLA")
    p.add_argument("--compare-xla", type=int, default=0, metavar="STEPS", help="time both, exit")
    args = p.parse_args()
    if args.compare_xla:
        return compare_xla(args.compare_xla)
    if args.budget is None or not args.out:
        p.error("--budget and --out are needed to train")
    ids, chars = read_split()
    deadline = args.launch_time + args.budget - args.reserve
    model, rec = train(ids, len(chars), deadline, args.seed, xla=args.xla or XLA)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    model.save_weights(str(Path(args.out) / "gpt.weights.h5"))
    info = {
        "chars": chars,
        "train_chars": len(ids),
        "chars_per_step": BLOCK * BATCH,
        "params": model.count_params(),
        "start_seconds": rec.pop("fit_start") - args.launch_time,
        "xla": args.xla or XLA,
        **rec,
    }
    info["saved_at_seconds"] = time.time() - args.launch_time
    Path(args.out, "gpt.json").write_text(json.dumps(info))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as charlm train ends: the interpreter's teardown with TF took ~2-4 s here


if __name__ == "__main__":
    main()
