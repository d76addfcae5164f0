"""End to end: corpus -> train -> run directory -> sample -> eval, from Python and the CLI."""

import csv
import json
import math
import subprocess
import sys
import time

import click
import numpy as np
import pytest
import tensorflow as tf
from conftest import CONFIGS, CORPORA, run_cli, train_shakespeare

import charlm

HELLO = "Hello, how are you?"


@pytest.mark.parametrize(
    "model", ["lstm", "gru", "rnn", "scratch-rnn", "scratch-gru", "scratch-lstm", "gpt"]
)
def test_a_model_trained_on_one_line_greedily_reproduces_it(workdir, model):
    corpus = workdir / "hello.txt"
    corpus.write_text(HELLO + "\n")
    run = charlm.train(
        [corpus],
        model=model,
        layers=1,
        units=64,
        embedding_dim=0,
        seq_len=6,
        batch_size=1,
        lr=0.005 if model == "gpt" else 0.02,  # attention diverges at the RNNs' rate
        optimizer="adam",
        val_fraction=0.0,
        sampler="consecutive",
        steps=400,
        eval_every=0,
        seed=1,
        progress=False,
    )
    assert run.generate("H", length=len(HELLO) - 1, greedy=True)[0] == HELLO
    reloaded = charlm.load(run.path)  # from the files in the run directory alone
    assert reloaded.generate("H", length=len(HELLO) - 1, greedy=True)[0] == HELLO


@pytest.fixture(scope="module")
def shakespeare_run(tmp_path_factory):
    """A short LSTM run on the first 300k characters of tiny Shakespeare."""
    return train_shakespeare(
        tmp_path_factory.mktemp("shakespeare"),
        max_chars=300_000,
        units=128,
        seq_len=64,
        batch_size=32,
        steps=300,
        eval_every=100,
        eval_chars=5000,
        lr=0.005,
    )


def test_training_loss_goes_down_and_perplexity_is_well_under_the_vocabulary_size(shakespeare_run):
    rows = shakespeare_run.metrics()
    losses = [float(r["train_loss"]) for r in rows]
    assert len(rows) == 3 and losses[-1] < losses[0] - 0.5
    assert float(rows[0]["train_loss"]) > float(rows[-1]["val_loss"])
    result = shakespeare_run.evaluate()
    vocab_size = len(shakespeare_run.vocab)
    assert result["perplexity"] < vocab_size / 4
    assert result["chars"] == len(shakespeare_run.dir.read_val_text()) - 1


def test_eval_perplexity_is_exp_of_the_mean_cross_entropy_computed_independently(shakespeare_run):
    text = (CORPORA / "timemachine.txt").read_text()[:3000]
    ids = shakespeare_run.vocab.encode(text).astype(np.int32)
    model = shakespeare_run.model.keras_model
    states = [np.zeros((1, *s), np.float32) for s in shakespeare_run.model.state_shapes]
    # one graph call: eagerly, the layers' loop over 3,000 steps runs in Python (8-16 s)
    logits = tf.function(model)([ids[None, :-1], *states])[0].numpy()[0].astype(np.float64)
    log_probs = (
        logits
        - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - logits.max(-1, keepdims=True)
    )
    mean_ce = -log_probs[np.arange(len(ids) - 1), ids[1:]].mean()
    for batch_size, seq_len in [(1, 3000), (1, 77)]:  # one stream: same as one call
        result = shakespeare_run.evaluate(text=text, batch_size=batch_size, seq_len=seq_len)
        assert result["nats_per_char"] == pytest.approx(mean_ce, rel=1e-5)
        assert result["perplexity"] == pytest.approx(math.exp(mean_ce), rel=1e-5)
        assert result["bits_per_char"] == pytest.approx(mean_ce / math.log(2), rel=1e-5)


def test_eval_in_parallel_streams_scores_every_character_once(shakespeare_run):
    """16 streams side by side score exactly what 16 separate one-stream runs would."""
    text = (CORPORA / "timemachine.txt").read_text()[:5001]
    result = shakespeare_run.evaluate(text=text, batch_size=16, seq_len=50)
    assert result["chars"] == 5000
    length = -(-5000 // 16)  # each stream scores this many characters (the last fewer)
    total = 0.0
    for i in range(16):
        piece = text[i * length : (i + 1) * length + 1]
        one = shakespeare_run.evaluate(text=piece, batch_size=1, seq_len=50)
        total += one["nats_per_char"] * one["chars"]
    assert result["nats_per_char"] == pytest.approx(total / 5000, rel=1e-6)


def test_run_directory_holds_config_vocab_metrics_weights_and_tensorboard(shakespeare_run):
    path = shakespeare_run.path
    for name in (
        "config.toml",
        "vocab.json",
        "metrics.csv",
        "best.keras",
        "last.keras",
        "val.txt",
        "corpus.json",
    ):
        assert (path / name).is_file(), name
    assert list((path / "tb").glob("events.out.tfevents.*"))
    assert (path.parent / "latest").resolve() == path.resolve()
    cfg = charlm.Config.load(path / "config.toml")
    assert cfg.units == 128 and cfg.max_chars == 300_000
    with open(path / "metrics.csv") as f:
        header = next(csv.reader(f))
    assert header[:5] == ["step", "epoch", "train_loss", "train_perplexity", "val_loss"]
    assert {"val_bits_per_char", "chars_per_sec", "lr", "wall_time"} <= set(header)


def test_same_seed_gives_the_same_sample_and_another_seed_another(shakespeare_run):
    a = shakespeare_run.generate(["ROMEO:", "JULIET:"], length=80, seed=3, num_samples=2)
    b = shakespeare_run.generate(["ROMEO:", "JULIET:"], length=80, seed=3, num_samples=2)
    c = shakespeare_run.generate(["ROMEO:", "JULIET:"], length=80, seed=4, num_samples=2)
    assert a == b and a != c
    assert [s[:6] for s in a[:2]] == ["ROMEO:", "ROMEO:"] and a[2].startswith("JULIET:")
    assert all(
        len(s) == len(p) + 80 for s, p in zip(a, ["ROMEO:"] * 2 + ["JULIET:"] * 2, strict=True)
    )


def test_streamed_chunks_join_to_the_same_text_as_one_call(shakespeare_run):
    whole = shakespeare_run.generate("KING", length=150, seed=9, top_k=10)[0]
    pieces = list(shakespeare_run.stream(["KING"], length=150, seed=9, top_k=10, chunk=32))
    assert "".join(p[0] for p in pieces) == whole
    assert len(pieces) == 1 + math.ceil(150 / 32)


def test_top_k_1_and_a_tiny_top_p_are_greedy(shakespeare_run):
    greedy = shakespeare_run.generate("First", length=60, greedy=True)[0]
    assert shakespeare_run.generate("First", length=60, top_k=1, seed=5)[0] == greedy
    assert shakespeare_run.generate("First", length=60, top_p=1e-6, seed=6)[0] == greedy


def test_unknown_prefix_characters_warn_and_are_read_as_unk(shakespeare_run):
    warnings = []
    out = shakespeare_run.generate("Ωmega€", length=10, seed=1, warn=warnings.append)
    assert out[0].startswith("Ωmega€") and len(out[0]) == 16
    assert len(warnings) == 1 and "'Ω'" in warnings[0] and "'€'" in warnings[0]
    assert "<unk>" in warnings[0]


def test_tang_poems_sample_from_the_cli_begins_with_the_prefix_and_is_chinese(workdir):
    code, _, err = run_cli(
        "train",
        CORPORA / "tang_poems.txt",
        "--config",
        CONFIGS / "tiny.toml",
        "--max-chars",
        "40000",
        "--steps",
        "60",
        "--units",
        "64",
        "--embedding-dim",
        "32",
        cwd=workdir,
    )
    assert code == 0, err
    code, out, err = run_cli(
        "sample", "--prefix", "分開", "--length", "40", "--seed", "1", cwd=workdir
    )
    assert code == 0, err
    text = out.rstrip("\n")
    assert text.startswith("分開") and len(text) == 42
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in text[2:])
    assert cjk >= 20
    code, out2, _ = run_cli(
        "sample", "--prefix", "分開", "--length", "40", "--seed", "1", cwd=workdir
    )
    assert out2 == out
    code, out, err = run_cli("eval", "--perplexity", "--json", cwd=workdir)
    assert code == 0, err
    import json

    result = json.loads(out)
    assert result["perplexity"] == pytest.approx(math.exp(result["nats_per_char"]))


def test_cli_train_sample_eval_with_a_preset_and_overrides(workdir):
    code, _, err = run_cli(
        "train",
        CORPORA / "timemachine.txt",
        "--config",
        CONFIGS / "tiny.toml",
        "--steps",
        "30",
        "--model",
        "gru",
        "--name",
        "tm",
        cwd=workdir,
    )
    assert code == 0, err
    assert "done: runs/tm" in err
    eta = [line for line in err.splitlines() if line.startswith("eta: ")]  # said once, early
    assert len(eta) == 1 and eta[0].startswith("eta: 30 steps planned, ") and " about " in eta[0]
    cfg = charlm.Config.load(workdir / "runs/tm/config.toml")
    assert (cfg.model, cfg.steps, cfg.units) == ("gru", 30, 64)
    code, out, err = run_cli(
        "sample",
        "--prefix",
        "The ",
        "--prefix",
        "Time",
        "--num-samples",
        "2",
        "--length",
        "20",
        "--seed",
        "2",
        "--separator",
        "|",
        cwd=workdir,
    )
    assert code == 0, err
    samples = out.rstrip("\n").split("|")
    assert [s[:4] for s in samples] == ["The ", "The ", "Time", "Time"]
    code, out, err = run_cli("eval", "--run", "runs/tm", CORPORA / "timemachine.txt", cwd=workdir)
    assert code == 0, err
    assert "perplexity:" in out and "characters scored:  178978" in out


def test_charlm_train_returns_its_quick_exit_and_leaves_no_state_in_a_module(workdir):
    # the process ends at once only where charlm.cli.main is called as the process: in a test
    # runner the command just returns, and nothing is left set for a later command to read
    import charlm.cli
    from charlm.cli.train import QUICK_EXIT

    args = ["train", CORPORA / "timemachine.txt", "--config", CONFIGS / "tiny.toml"]
    args += ["--steps", "1", "--name", "returned", "--max-chars", "5000"]
    returned = charlm.cli.main.main(list(map(str, args)), "charlm", standalone_mode=False)
    assert returned == QUICK_EXIT
    assert not hasattr(charlm.cli, "QUICK_EXIT")
    assert json.loads((workdir / "runs/returned/run.json").read_text())["finished"]


def test_a_time_budget_counts_from_the_launch_the_group_hands_to_train(workdir, monkeypatch):
    import charlm.cli

    monkeypatch.setattr(charlm.cli, "LAUNCHED", time.monotonic() - 100.0)
    args = ["train", CORPORA / "timemachine.txt", "--time-budget", "1m", "--recipe", "fixed"]
    with pytest.raises(click.ClickException, match="--time-budget 1m leaves 0 s after start-up"):
        charlm.cli.main.main(list(map(str, args)), "charlm", standalone_mode=False)


def test_charlm_train_as_a_process_ends_at_once_once_its_files_are_written(workdir):
    # The budget is launch to exit, and an interpreter's teardown with TensorFlow loaded took
    # 1-2 s: the charlm process skips it (no object of __main__ is torn down), but still runs
    # the exit handlers and flushes its output, and every file of the run is written.
    code = (
        "import atexit, sys\n"
        "class Torn:\n"
        "    def __del__(self): print('torn down', file=sys.stderr)\n"
        "torn = Torn()\n"
        "atexit.register(lambda: print('exit handlers ran', file=sys.stderr, flush=True))\n"
        "from charlm.cli import main\n"
        "main(prog_name='charlm')\n"
    )
    args = ["train", str(CORPORA / "timemachine.txt"), "--config", str(CONFIGS / "tiny.toml")]
    args += ["--steps", "3", "--name", "quick"]
    ran = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=workdir, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert "done: runs/quick" in ran.stderr and "exit handlers ran" in ran.stderr
    assert "torn down" not in ran.stderr
    assert json.loads((workdir / "runs/quick/run.json").read_text())["finished"]
    assert charlm.load(workdir / "runs/quick", weights="last").metrics()[-1]["step"] == "3"
    bad = subprocess.run(
        [sys.executable, "-c", code, "train", "--no-such-flag"], cwd=workdir, capture_output=True
    )
    assert bad.returncode == 2 and b"torn down" in bad.stderr  # a usage error exits as before
