"""The Dive-into-Deep-Learning experiment (d2l-zh 1.x, section 6.4) with charlm's scratch RNN.

Recipe (configs/d2l-scratch-rnn.toml): the first 10,000 characters of corpora/tang_poems.txt
with newlines as spaces, one-hot input, 1 x 256 tanh RNN, windows of 35, batch 32, SGD with
lr 100 on the mean loss, gradients clipped to global norm θ = 0.01, no held-out text,
250 epochs, one metrics row per epoch (``train_perplexity`` = exp(mean training loss of the
epoch), as the book prints it).

Part 1 runs it twice through ``charlm.train`` — ``sampler="consecutive"`` and
``sampler="random"`` — and reports the training perplexity at epochs 50/100/150/200/250,
seconds per epoch, whether it fell below 2, and the greedy samples from 分开 / 不分开 / 分開
(the corpus is in Traditional characters: 开 is not in it and is read as <unk>, with a
warning). The book's figures (Jay Chou lyrics, vocabulary 1,027) are printed beside them.

Part 2 times ``scratch-rnn`` against Keras ``rnn`` (SimpleRNN, same size, one-hot, the same
recipe) with charlm's Trainer, interleaved (A, B, A, B, ...), a few epochs per call, and splits
each epoch into the compiled training steps, the checkpoint/weight saving at the end of the
epoch, and everything else.

    python benchmarks/bench_d2l.py            # full: about 3-5 minutes
    python benchmarks/bench_d2l.py --quick    # 20 epochs per sampler, under a minute or so
    python benchmarks/bench_d2l.py --only-investigate   # why the perplexity stays above the book's
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _common as C

C.quiet_tensorflow()

CONFIG = C.CONFIGS / "d2l-scratch-rnn.toml"
CORPUS = C.CORPORA / "tang_poems.txt"
PREFIXES = ["分开", "不分开", "分開"]
CHECK_EPOCHS = [50, 100, 150, 200, 250]
# Dive-into-DL-PyTorch (the PyTorch port of d2l-zh 1.x), 6.4_rnn-scratch.md, printed output of
# the same recipe on the first 10,000 characters of the Jay Chou lyrics (vocabulary 1,027)
BOOK = {"random": {50: 70.039647, 100: 9.726828, 150: 2.864874, 200: 1.597790, 250: 1.303903},
        "consecutive": {50: 59.514416, 100: 6.801417, 150: 2.063730, 200: 1.300031, 250: 1.164455}}


class Tee(io.TextIOBase):
    """Collects what is written (the trainer's log lines and samples) and passes nothing on."""

    def __init__(self):
        self.parts = []

    def write(self, s):
        self.parts.append(s)
        return len(s)

    def text(self) -> str:
        return "".join(self.parts)


def corpus_stats() -> dict:
    from charlm.corpus import read_corpus

    text = read_corpus([str(CORPUS)], max_chars=10000, newlines="space")
    seen, repeated = set(), 0
    for i in range(len(text) - 3):
        g = text[i:i + 4]
        repeated += g in seen
        seen.add(g)
    counts = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    unigram_entropy = -sum(c / n * math.log(c / n) for c in counts.values())
    return {"chars": n, "distinct_chars": len(counts), "vocab_with_unk": len(counts) + 1,
            "repeated_4gram_fraction": repeated / (n - 3),
            "unigram_perplexity": math.exp(unigram_entropy),
            "has_开": "开" in text, "has_開": "開" in text}


def run_recipe(sampler: str, tmp: Path, epochs: int) -> dict:
    import charlm

    sink = Tee()
    warnings = []
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(sink):
        run = charlm.train([str(CORPUS)], config=str(CONFIG), sampler=sampler, epochs=epochs,
                           run_dir=str(tmp), name=f"d2l-{sampler}", progress=False,
                           log=lambda m: sink.write(m + "\n"))
    seconds = time.perf_counter() - t0
    rows = run.metrics()
    ppl = {int(float(r["epoch"])): float(r["train_perplexity"]) for r in rows}
    walls = [(int(float(r["epoch"])), float(r["wall_time"])) for r in rows]
    per_epoch = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(walls, walls[1:]) if b[0] > a[0]]
    below2 = next((e for e, p in sorted(ppl.items()) if p < 2), None)
    sink2 = Tee()
    with contextlib.redirect_stderr(sink2):
        samples = run.generate(PREFIXES, length=50, greedy=True,
                               warn=lambda m: warnings.append(m))
    in_training = [line for line in sink.text().splitlines() if line.startswith("[epoch")]
    return {"sampler": sampler, "epochs": epochs, "seconds_total": seconds,
            "seconds_per_epoch_median": C.median(per_epoch), "seconds_per_epoch": per_epoch,
            "perplexity": ppl, "first_epoch_below_2": below2,
            "min_perplexity": min(ppl.values()) if ppl else None,
            "samples": dict(zip(PREFIXES, samples)), "warnings": warnings,
            "samples_during_training": in_training, "run": str(run.path)}


def book_reference(text: str, epochs: int, sampler: str, seed: int = 0,
                   offset: bool = False) -> dict:
    """An independent re-implementation of the book's loop (d2l-zh 1.x ``train_and_predict_rnn``
    with ``rnn``/``get_params``/``grad_clipping``/``sgd``/``data_iter_*``), written here in plain
    TensorFlow without charlm, to check charlm's recipe against it on the same text.

    Like the book: no random offset, ``data_iter_consecutive`` reshapes the text to
    (batch, len) and walks it 35 at a time; ``data_iter_random`` shuffles the 35-character
    examples; W ~ N(0, 0.01²), b = 0; loss = mean CE; g ← min(1, θ/‖g‖)·g; p ← p − lr·g.
    ``offset=True`` drops a random 0..34 characters from the front each epoch first, as the
    2nd edition of the book (and charlm's samplers) do.
    """
    import numpy as np
    import tensorflow as tf

    T, B, H, lr, theta = 35, 32, 256, 100.0, 0.01
    chars = sorted(set(text))
    V = len(chars)
    index = {c: i for i, c in enumerate(chars)}
    corpus = np.array([index[c] for c in text], np.int32)
    rng = np.random.default_rng(seed)

    def normal(shape):
        return tf.Variable(rng.normal(0, 0.01, shape).astype(np.float32))

    params = [normal((V, H)), normal((H, H)), tf.Variable(tf.zeros(H)),
              normal((H, V)), tf.Variable(tf.zeros(V))]

    @tf.function
    def step(X, Y, state):
        W_xh, W_hh, b_h, W_hq, b_q = params
        with tf.GradientTape() as tape:
            inputs = tf.one_hot(tf.transpose(X), V)
            h, outputs = state, []
            for t in range(T):
                h = tf.tanh(tf.matmul(inputs[t], W_xh) + tf.matmul(h, W_hh) + b_h)
                outputs.append(tf.matmul(h, W_hq) + b_q)
            logits = tf.concat(outputs, 0)
            y = tf.reshape(tf.transpose(Y), [-1])
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        grads = tape.gradient(loss, params)
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(g * g) for g in grads]))
        scale = tf.where(norm > theta, theta / norm, 1.0)
        for p, g in zip(params, grads):
            p.assign_sub(lr * scale * g)
        return loss, h

    def consecutive(corpus):
        batch_len = len(corpus) // B
        indices = corpus[: B * batch_len].reshape(B, batch_len)
        for i in range((batch_len - 1) // T):
            yield indices[:, i * T: (i + 1) * T], indices[:, i * T + 1: (i + 1) * T + 1]

    def random_iter(corpus):
        n = (len(corpus) - 1) // T
        order = rng.permutation(n)
        for b in range(n // B):
            starts = order[b * B:(b + 1) * B] * T
            yield (np.stack([corpus[s:s + T] for s in starts]),
                   np.stack([corpus[s + 1:s + T + 1] for s in starts]))

    ppl, t0 = {}, time.perf_counter()
    for epoch in range(1, epochs + 1):
        state = tf.zeros([B, H])
        total, n = 0.0, 0
        text_ids = corpus[int(rng.integers(0, T)):] if offset else corpus
        for X, Y in (consecutive if sampler == "consecutive" else random_iter)(text_ids):
            if sampler == "random":
                state = tf.zeros([B, H])
            loss, state = step(tf.constant(X), tf.constant(Y), state)  # state: a new tensor (detached)
            total += float(loss)
            n += 1
        ppl[epoch] = math.exp(total / n)
    return {"perplexity": ppl, "seconds": time.perf_counter() - t0, "vocab": V}


def run_charlm_on_text(text: str, tmp: Path, name: str, epochs: int, sampler: str) -> dict:
    """charlm's recipe on ``text`` (written to a file; newlines are already spaces)."""
    import charlm

    path = tmp / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    with contextlib.redirect_stderr(Tee()):
        run = charlm.train([str(path)], config=str(CONFIG), sampler=sampler, epochs=epochs,
                           run_dir=str(tmp), name=name, progress=False, sample_every_epochs=0,
                           log=lambda m: None)
    return {int(float(r["epoch"])): float(r["train_perplexity"]) for r in run.metrics()}


def investigate(tmp: Path, epochs: int, checks: list[int]) -> tuple[dict, list[str]]:
    """Why the perplexity stays far above the book's: (1) the same text through an
    independent re-implementation of the book's loop, with and without the random offset;
    (2) charlm on a more repetitive text: the first 2,500 characters of the corpus, four times."""
    from charlm.corpus import read_corpus

    text = read_corpus([str(CORPUS)], max_chars=10000, newlines="space")
    found = {}
    for offset in (False, True):
        for sampler in ("consecutive", "random"):
            C.say(f"  investigate: book re-implementation, {sampler}, offset {offset}, {epochs} epochs ...")
            how = "random offset each epoch (2nd ed., as charlm)" if offset else "no offset (1st ed.)"
            found[f"book loop without charlm, {sampler}, {how}"] = book_reference(
                text, epochs, sampler, offset=offset)
    repeated = text[:2500] * 4
    C.say(f"  investigate: charlm on 2,500 characters x 4, {epochs} epochs ...")
    found["charlm, tang first 2,500 chars x 4, consecutive"] = {
        "perplexity": run_charlm_on_text(repeated, tmp, "repeated", epochs, "consecutive"),
        "vocab": len(set(repeated)) + 1}
    rows = []
    for name, r in found.items():
        p = r["perplexity"]
        rows.append([name, r["vocab"]] + [p.get(e) for e in checks] +
                    [next((e for e, v in sorted(p.items()) if v < 2), "never")])
    table = C.table(["what", "vocab"] + [f"ppl @ {e}" for e in checks] + ["first epoch < 2"], rows)
    return found, ["", "Why (``--investigate``):", "", table]


class TimedTrainer:
    """charlm's Trainer with the d2l config (model overridden), instrumented per epoch."""

    def __init__(self, model: str, tmp: Path, name: str):
        from charlm.api import prepare

        self.trainer = prepare(config=str(CONFIG), model=model, paths=[str(CORPUS)],
                               run_dir=str(tmp), name=name, sample_every_epochs=0, epochs=1,
                               log=lambda *a, **k: None, progress=False)
        self.model = model
        self.events = []  # (kind, start, end)
        events = self.events

        def timed(kind, fn):
            def wrapper(*args, **kwargs):
                t0 = time.perf_counter()
                out = fn(*args, **kwargs)
                events.append((kind, t0, time.perf_counter()))
                return out
            return wrapper

        self.trainer._train_step = timed("step", self.trainer._train_step)
        self.trainer._log_row = timed("row", self.trainer._log_row)
        run = self.trainer.run
        run.save_checkpoint = timed("checkpoint", run.save_checkpoint)
        run.save_weights = timed("weights", run.save_weights)
        self.epochs_done = 0

    def run(self, epochs: int) -> dict:
        self.events.clear()
        self.epochs_done += epochs
        self.trainer.cfg = self.trainer.cfg.replace(epochs=self.epochs_done)
        with contextlib.redirect_stderr(Tee()):
            row = self.trainer.fit()
        # epoch ends: each epoch ends with one metrics row (eval_every_epochs = 1), so epochs
        # are the spans between consecutive row ends (checkpoints come every 100 steps only)
        row_ends = [e for k, s, e in self.events if k == "row"]
        spans = []
        for a, b in zip(row_ends, row_ends[1:]):  # the call's first epoch has no start mark
            inside = [(k, s, e) for k, s, e in self.events if a < s and e <= b]
            total = b - a
            step = sum(e - s for k, s, e in inside if k == "step")
            save = sum(e - s for k, s, e in inside if k in ("checkpoint", "weights"))
            if not any(k == "step" for k, *_ in inside):
                continue  # the extra save fit() makes when it stops
            spans.append({"epoch_seconds": total, "step_seconds": step, "save_seconds": save,
                          "other_seconds": total - step - save,
                          "steps": sum(1 for k, *_ in inside if k == "step"),
                          "saves": sum(1 for k, *_ in inside if k in ("checkpoint", "weights"))})
        return {"epochs": spans, "train_perplexity": row.get("train_perplexity")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--epochs", type=int, default=0, help="epochs per sampler run (default 250, quick 20)")
    p.add_argument("--rounds", type=int, default=0, help="scratch-vs-Keras rounds (default 4, quick 2)")
    p.add_argument("--skip-recipe", action="store_true", help="only the scratch-vs-Keras timing")
    p.add_argument("--investigate", action="store_true",
                   help="also run the book's loop re-implemented without charlm on the same text, "
                        "and charlm on a repetitive text (about 15 more minutes on one free core)")
    p.add_argument("--only-investigate", action="store_true", help="only the --investigate part")
    args = p.parse_args(argv)
    epochs = args.epochs or (20 if args.quick else 250)
    rounds = args.rounds or (2 if args.quick else 4)
    per_call = 3 if args.quick else 6
    checks = CHECK_EPOCHS if epochs >= 250 else sorted({max(1, epochs * k // 5) for k in range(1, 6)})

    machine = C.Machine()
    import tensorflow  # noqa: F401  (versions, and keep import time out of the first run)
    machine.add_versions()
    tmp = Path(tempfile.mkdtemp(prefix="charlm-bench-d2l-"))
    stats = corpus_stats()
    C.say(f"bench_d2l: load {C.fmt_load(machine.start_load)}; corpus {stats}")

    investigation, inv_lines = {}, []
    if args.investigate or args.only_investigate:
        investigation, inv_lines = investigate(tmp, epochs, checks)
        if args.only_investigate:
            info = machine.finish()
            text_out = "\n".join([f"Machine: {machine.describe()}"] + inv_lines)
            print(text_out)
            C.write_results("bench_d2l_investigate", {"machine": info, "investigation": investigation,
                                                      "markdown": text_out})
            shutil.rmtree(tmp, ignore_errors=True)
            return 0

    recipe = {}
    if not args.skip_recipe:
        for sampler in ("consecutive", "random"):
            C.say(f"  training {sampler}, {epochs} epochs ...")
            recipe[sampler] = run_recipe(sampler, tmp, epochs)
            r = recipe[sampler]
            C.say(f"  {sampler}: {r['seconds_total']:.1f} s, "
                  f"{r['seconds_per_epoch_median']:.3f} s/epoch, ppl "
                  + ", ".join(f"{e}: {r['perplexity'].get(e, float('nan')):.2f}"
                              for e in checks))

    # part 2: scratch-rnn vs Keras rnn, same recipe, interleaved
    contenders = {m: TimedTrainer(m, tmp, f"speed-{m}") for m in ("scratch-rnn", "rnn")}
    for m, c in contenders.items():  # warm-up: traces; not counted
        t0 = time.perf_counter()
        c.run(2)
        C.say(f"  warm-up {m}: {time.perf_counter() - t0:.1f} s")
    speed = {m: [] for m in contenders}
    order = list(contenders)
    for rnd in range(rounds):
        for m in (order if rnd % 2 == 0 else order[::-1]):
            res = contenders[m].run(per_call)
            speed[m].extend(res["epochs"])
            C.say(f"  round {rnd + 1} {m}: " + ", ".join(f"{s['epoch_seconds']:.3f}"
                                                         for s in res["epochs"]) + " s/epoch")
    speed_summary = {}
    for m, spans in speed.items():
        speed_summary[m] = {k: C.median([s[k] for s in spans]) for k in
                            ("epoch_seconds", "step_seconds", "save_seconds", "other_seconds",
                             "steps", "saves")}
        st = speed_summary[m]
        st["chars_per_sec_steps_only"] = (st["steps"] * 32 * 35 / st["step_seconds"]
                                          if st["step_seconds"] else None)
        st["chars_per_sec_whole_epoch"] = (st["steps"] * 32 * 35 / st["epoch_seconds"]
                                           if st["epoch_seconds"] else None)
        st["epochs_measured"] = len(spans)

    info = machine.finish()
    out = ["### d2l recipe (configs/d2l-scratch-rnn.toml) on the first 10,000 characters of "
           "tang_poems.txt", "", f"Machine: {machine.describe()}", "",
           f"Corpus: {stats['chars']:,} characters, {stats['distinct_chars']:,} distinct "
           f"(vocabulary {stats['vocab_with_unk']:,} with <unk>; the book's lyrics: 1,027); "
           f"{stats['repeated_4gram_fraction']:.1%} of its 4-grams occurred earlier in the text; "
           f"unigram perplexity {stats['unigram_perplexity']:.0f}.", ""]
    if recipe:
        header = ["sampler"] + [f"ppl @ {e}" for e in checks] + \
                 ["lowest", "first epoch < 2", "s/epoch (median)", "total s"]
        rows = []
        for sampler, r in recipe.items():
            rows.append([f"charlm {sampler}"] + [r["perplexity"].get(e) for e in checks]
                        + [r["min_perplexity"], r["first_epoch_below_2"] or "never",
                           r["seconds_per_epoch_median"], r["seconds_total"]])
        for sampler in recipe:
            rows.append([f"book ({sampler}, Jay Chou lyrics)"] +
                        [BOOK[sampler].get(e) for e in checks] +
                        [min(BOOK[sampler].values()),
                         next((e for e, v in sorted(BOOK[sampler].items()) if v < 2), "never"), "", ""])
        out += [C.table(header, rows), ""]
        out.append("Greedy samples (50 characters) after the last epoch:")
        out.append("")
        for sampler, r in recipe.items():
            for prefix, s in r["samples"].items():
                out.append(f"- {sampler}, `{prefix}`: {s}")
            for w in r["warnings"][:1]:
                out.append(f"  - ({w.strip()})")
        out.append("")
    out.append(C.table(
        ["model (1x256, one-hot, d2l recipe)", "s/epoch (median)", "of which train steps",
         "checkpoint + weight saves", "other", "saves per epoch", "chars/s, steps only",
         "chars/s, whole epoch", "epochs measured"],
        [[m, s["epoch_seconds"], s["step_seconds"], s["save_seconds"], s["other_seconds"],
          s["saves"], s["chars_per_sec_steps_only"], s["chars_per_sec_whole_epoch"],
          s["epochs_measured"]] for m, s in speed_summary.items()]))
    ratio = C.median([a["epoch_seconds"] / b["epoch_seconds"]
                      for a, b in zip(speed["scratch-rnn"], speed["rnn"])])
    step_ratio = C.median([a["step_seconds"] / b["step_seconds"]
                           for a, b in zip(speed["scratch-rnn"], speed["rnn"])])
    out += ["", f"scratch-rnn / Keras rnn, seconds per epoch (median of paired epochs): "
                f"{ratio:.2f}; train-step time only: {step_ratio:.2f}"] + inv_lines
    text_out = "\n".join(out)
    print(text_out)
    path = C.write_results("bench_d2l", {
        "benchmark": "bench_d2l", "quick": args.quick, "machine": info, "corpus": stats,
        "book": BOOK, "recipe": recipe, "speed": speed_summary, "speed_raw": speed,
        "scratch_over_keras_epoch_seconds": ratio, "scratch_over_keras_step_seconds": step_ratio,
        "investigation": investigation,
        "markdown": text_out})
    C.say(f"results: {path}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
