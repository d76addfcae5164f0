"""charlm's transformer (``--model gpt``) against the Keras twin of nanoGPT's baby GPT
(benchmarks/gpt_reference.py), on nanoGPT's CPU shape: 4 blocks x 128, 4 heads, block
(context) 64, batch 12, vocabulary 65. Random weights and ids: timing does not depend on them.

* training: ms per AdamW/Adam step on a batch of 12 x 64, each contender's own compiled step
  (charlm: the budget recipe's ``stepper``, the trainer's step; the twin: its ``make_step``),
  interleaved round by round (reversed every other round), the median step of each round,
  then the median of the rounds; chars/s = 12 x 64 / that.
* generation, one stream: charlm's Generator (the key/value cache in its compiled loop, one
  character a step, greedy) against re-running the twin's model on the last 64 characters for
  every new character in a Python loop around a compiled call (what nanoGPT's ``sample.py``
  does); and charlm with 16 streams in one batch (total chars/s).
* the cache's bytes per stream, from the family table's state shapes.

With ``--nanogpt CHECKOUT --nanogpt-python PYTHON`` the real nanoGPT joins each round, in
its own process with the same threads: training is its own ``train.py`` (the baby-GPT recipe of
benchmarks/nanogpt.py, ``NANO_ITERS`` iterations on tiny Shakespeare, the median iteration of
the last five sixths as it prints them), generation its own ``GPT.generate`` (what its
``sample.py`` calls: the model re-run on the last 64 characters for each new one, sampling).

The twin differs from charlm's model in its positions (learned, not rotary), its tied output
layer and its lack of biases, which change its arithmetic by a few percent.

    python benchmarks/bench_gpt.py                  # about 2 minutes
    python benchmarks/bench_gpt.py --nanogpt ~/nanoGPT --nanogpt-python ~/torch/bin/python
    python benchmarks/bench_gpt.py --rounds 3 --seconds 2 --chars 200
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, Machine, quiet_tensorflow  # noqa: E402

VOCAB, LAYERS, UNITS, HEADS, CONTEXT, BATCH = 65, 4, 128, 4, 64, 12
NANO_ITERS = 240  # nanoGPT train.py iterations per round


def nanogpt_contenders(checkout: str, python: str, chars: int) -> dict:
    """nanoGPT's training and generation as round functions returning their own seconds (a
    subprocess's start-up is not nanoGPT's speed)."""
    import subprocess
    import tempfile

    import nanogpt
    from _common import CORPORA

    from charlm.text.corpus import read_corpus, split_corpus

    train_text, val_text = split_corpus(read_corpus([str(CORPORA / "tinyshakespeare.txt")]), 0.1)
    work = nanogpt.workdir(Path(checkout), Path(tempfile.mkdtemp()), train_text, val_text)

    def train():
        return nanogpt.calibrate(python, work, [], None, NANO_ITERS)["seconds_per_iteration"]

    def generate():
        script = str(Path(__file__).resolve().parent / "nanogpt_generate.py")
        out = subprocess.run(
            [python, script, checkout, str(chars), "3"], capture_output=True, text=True, check=True
        )
        return statistics.median(json.loads(out.stdout.splitlines()[-1]))  # after its size

    return {"nanogpt train.py": train, "nanogpt generate 1": generate}


def charlm_training():
    from charlm.options.config import Config
    from charlm.training.speed import stepper

    cfg = Config(
        model="gpt", layers=LAYERS, units=UNITS, heads=HEADS, context=CONTEXT,
        seq_len=CONTEXT, batch_size=BATCH, lr=1e-3, clip_norm=1.0, embedding_dim=UNITS,
        time_budget="20m",  # the step a long budget trains with (XLA: training.step.uses_xla)
    )  # fmt: skip
    return stepper(cfg, VOCAB)


def twin_training():
    import gpt_reference as ref
    import numpy as np
    import tensorflow as tf

    model = ref.build_model(VOCAB)
    step = ref.make_step(model, ref.make_optimizer(model), xla=False)
    rng = np.random.default_rng(0)
    x, y = (tf.constant(rng.integers(0, VOCAB, (BATCH, CONTEXT)), tf.int32) for _ in range(2))

    def run():
        float(step(x, y))

    run()
    run()
    return run, model


def timed(run, seconds: float) -> float:
    """The median seconds of ``run`` over ``seconds`` (at least 3 calls)."""
    times, end = [], time.monotonic() + seconds
    while len(times) < 3 or time.monotonic() < end:
        t0 = time.monotonic()
        run()
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def charlm_generator():
    from charlm.models.lm import build_model
    from charlm.options.config import Config
    from charlm.text.vocab import Vocab
    from charlm.use.generate import Generator

    cfg = Config(model="gpt", layers=LAYERS, units=UNITS, heads=HEADS, context=CONTEXT)
    model = build_model(cfg, VOCAB, training=False)
    vocab = Vocab([chr(32 + i) for i in range(VOCAB - 1)])
    return Generator(model, vocab), model


def rerun_window(model, chars: int):
    """Generate ``chars`` characters greedily by running the twin on the last CONTEXT ids
    for each (nanoGPT's sample.py, greedy)."""
    import tensorflow as tf

    call = tf.function(lambda ids: tf.argmax(model(ids)[:, -1], -1, output_type=tf.int32))
    ids = tf.constant([[1] * 6], tf.int32)
    call(ids[:, -CONTEXT:])  # traced for the short prefix ...
    call(tf.zeros([1, CONTEXT], tf.int32))  # ... and the full window

    def run():
        seq = ids
        for _ in range(chars):
            seq = tf.concat([seq, call(seq[:, -CONTEXT:])[:, None]], 1)

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0, help="per contender per round")
    p.add_argument("--chars", type=int, default=300, help="characters per generation call")
    p.add_argument("--nanogpt", default="", help="a checkout of karpathy/nanoGPT")
    p.add_argument("--nanogpt-python", default="", help="a Python with torch for nanoGPT")
    args = p.parse_args()
    quiet_tensorflow()
    machine = Machine()
    machine.add_versions()
    from charlm.models.families import family
    from charlm.options.config import Config
    from charlm.options.sampling import SamplingOptions

    train = {"charlm": charlm_training()}
    train["twin"], twin_model = twin_training()
    gen, _ = charlm_generator()
    greedy = SamplingOptions(length=args.chars, greedy=True)
    generate = {
        "charlm 1": lambda: gen.generate(["ROMEO:"], options=greedy),
        "charlm 16": lambda: gen.generate(["ROMEO:"] * 16, options=greedy),
        "re-run window 1": rerun_window(twin_model, args.chars),
    }
    for run in generate.values():
        run()  # traced
    nano = nanogpt_contenders(args.nanogpt, args.nanogpt_python, args.chars) if args.nanogpt else {}
    rounds: dict[str, list[float]] = {k: [] for k in [*train, *generate, *nano]}
    for r in range(args.rounds):
        names = list(rounds) if r % 2 == 0 else list(reversed(rounds))
        for name in names:
            if name in nano:  # times itself
                rounds[name].append(nano[name]())
                continue
            run = train.get(name) or generate[name]
            rounds[name].append(timed(run, args.seconds))
    seconds = {k: statistics.median(v) for k, v in rounds.items()}
    out = {
        "machine": machine.finish(),
        "shape": dict(layers=LAYERS, units=UNITS, heads=HEADS, context=CONTEXT, batch=BATCH),
        "seconds": rounds,
        "train_chars_per_s": {
            k: BATCH * CONTEXT / seconds[k] for k in [*train, "nanogpt train.py"] if k in seconds
        },
        "generate_chars_per_s": {
            k: args.chars * (16 if k.endswith("16") else 1) / seconds[k]
            for k in [*generate, "nanogpt generate 1"]
            if k in seconds
        },
        "cache_bytes_per_stream": 4
        * sum(
            math.prod(s)
            for s in family("gpt").state(
                Config(model="gpt", layers=LAYERS, units=UNITS, heads=HEADS, context=CONTEXT)
            )
        ),
    }
    t, g = out["train_chars_per_s"], out["generate_chars_per_s"]
    print(machine.describe())
    print(f"training chars/s: charlm {t['charlm']:,.0f}, twin {t['twin']:,.0f}, "
          f"ratio {t['charlm'] / t['twin']:.2f}x")  # fmt: skip
    print(
        f"generation chars/s: charlm 1 stream {g['charlm 1']:,.0f}, re-run window "
        f"{g['re-run window 1']:,.0f} ({g['charlm 1'] / g['re-run window 1']:.1f}x); charlm 16 "
        f"streams {g['charlm 16']:,.0f} ({g['charlm 16'] / g['charlm 1']:.1f}x one)"
    )
    if nano:
        print(
            f"against nanoGPT (PyTorch): training {t['nanogpt train.py']:,.0f} chars/s, charlm "
            f"{t['charlm'] / t['nanogpt train.py']:.2f}x; generation {g['nanogpt generate 1']:,.0f} "
            f"chars/s, charlm 1 stream {g['charlm 1'] / g['nanogpt generate 1']:.1f}x"
        )
    print(f"cache: {out['cache_bytes_per_stream']:,} bytes per stream")
    (RESULTS / "bench_gpt.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
