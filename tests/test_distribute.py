"""Training under tf.distribute (``--strategy``): the same results as one device, on several
(logical) devices and on several worker processes.

Devices must be configured before TensorFlow starts them, and a multi-worker strategy before
anything else, so every distributed run here is a fresh Python process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import forked
import numpy as np
import pytest
from conftest import assert_close

import charlm

REPO = Path(__file__).resolve().parents[1]
TEXT = "".join(
    f"{i} little pigs went to market and {i * 7 % 13} came back home.\n" for i in range(300)
)
SMALL = dict(
    layers=1,
    units=24,
    embedding_dim=8,
    seq_len=12,
    batch_size=8,
    sampler="consecutive",
    optimizer="sgd",
    lr=0.5,
    clip_norm=0.05,
    seed=3,
    eval_every=10,
    val_fraction=0.05,
    output_bias="zero",  # large first gradients: the clipping acts, the loss falls in 30 steps
)

# Two logical CPU devices, then the same 20 steps on one device and under MirroredStrategy.
MIRRORED = textwrap.dedent("""
    import sys, json, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import charlm
    corpus, out, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    for strategy in ("none", "mirrored"):
        run = charlm.train([corpus], steps=20, strategy=strategy, name=strategy, runs_dir=out,
                           progress=False, **settings)
        np.savez(f"{out}/{strategy}.npz", *[v.numpy() for v in run.model.trainable_variables])
""")

# `charlm train` with the trainer's final weights written to $CHARLM_TEST_WEIGHTS.
WORKER = textwrap.dedent("""
    import os, sys, numpy as np
    import charlm.training.trainer
    fit = charlm.training.trainer.Trainer.fit
    def fit_and_keep(self, resume=False):
        row = fit(self, resume)
        np.savez(os.environ["CHARLM_TEST_WEIGHTS"],
                 *[v.numpy() for v in self.model.trainable_variables])
        return row
    charlm.training.trainer.Trainer.fit = fit_and_keep
    from charlm.cli import main
    main(sys.argv[1:], prog_name="charlm")
""")


def assert_all_close(a: list, b: list, rtol: float = 1e-5) -> None:
    """Every weight equal within ``rtol`` of the size of its tensor."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert_close(x, y, rtol=rtol)


def load_npz(path) -> list:
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "pigs.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.mark.parametrize("model", ["lstm", "scratch-lstm", "gpt"])
def test_two_devices_train_the_same_weights_as_one(model, corpus, tmp_path):
    settings = dict(SMALL, model=model)
    code, _, err = forked.run([corpus, tmp_path / "runs", json.dumps(settings)], code=MIRRORED)
    assert code == 0, err[-3000:]
    one, two = (load_npz(tmp_path / "runs" / f"{s}.npz") for s in ("none", "mirrored"))
    assert_all_close(two, one)
    rows = charlm.load(tmp_path / "runs" / "mirrored").metrics()
    assert float(rows[-1]["grad_norm"]) > 2 * SMALL["clip_norm"]  # clipping did act
    assert int(rows[-1]["step"]) == 20


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run_workers(args: list[str], tmp_path: Path, tag: str, limit: float = 240) -> list:
    """``charlm train ARGS --strategy multi-worker`` as two workers on 127.0.0.1; both are
    killed after ``limit`` seconds. Returns each worker's final weights."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    procs, logs = [], []
    for i in range(2):
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "CHARLM_TEST_WEIGHTS": str(tmp_path / f"{tag}-{i}.npz"),
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
        }
        logs.append(open(tmp_path / f"{tag}-{i}.log", "w"))
        procs.append(
            forked.python(
                WORKER,
                ["train", *args[i], "--strategy", "multi-worker"],
                cwd=tmp_path,
                env=env,
                stdout=logs[-1],
                stderr=forked.STDOUT,
            )
        )
    deadline = time.monotonic() + limit
    try:
        for p in procs:
            p.wait(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs:
            f.close()
    for i, p in enumerate(procs):
        log = (tmp_path / f"{tag}-{i}.log").read_text(errors="replace")
        assert p.returncode == 0, f"worker {i} ({p.returncode}):\n{log[-3000:]}"
    return [load_npz(tmp_path / f"{tag}-{i}.npz") for i in range(2)]


def test_two_workers_train_one_run_that_samples_evaluates_and_resumes(corpus, tmp_path):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    first = [
        [str(corpus), "--model", "gru", "--name", "mw", *flags, "--steps", "20", "--runs-dir", d]
        for d in ("chief-runs", "worker-runs")
    ]  # two disks
    t0 = time.monotonic()
    chief, worker = run_workers(first, tmp_path, "first")
    assert_all_close(worker, chief, rtol=1e-6)
    run_path = tmp_path / "chief-runs" / "mw"
    assert not (tmp_path / "worker-runs" / "mw").exists()  # the other worker kept nothing
    again = [["--resume", str(run_path), *flags, "--steps", "30"]] * 2  # a shared disk
    chief, worker = run_workers(again, tmp_path, "again")
    assert_all_close(worker, chief, rtol=1e-6)
    print(f"two workers, 20 + 10 steps: {time.monotonic() - t0:.0f} s")
    run = charlm.load(run_path, weights="last")
    losses = [float(r["train_loss"]) for r in run.metrics() if r["train_loss"] != "nan"]
    assert [int(r["step"]) for r in run.metrics()][-1] == 30
    assert losses[-1] < losses[0]
    assert_all_close([v.numpy() for v in run.model.trainable_variables], chief, rtol=1e-6)
    assert run.generate("3 little", length=20, seed=1)[0].startswith("3 little")
    assert np.isfinite(run.evaluate()["perplexity"])


def test_two_workers_train_a_transformer_as_one(corpus, tmp_path):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    args = [str(corpus), "--model", "gpt", "--heads", "2", "--context", "16", *flags]
    args += ["--output-bias", "unigram"]  # counted by each worker alike
    first = [[*args, "--steps", "10", "--runs-dir", "runs"]] * 2  # a shared disk, no name
    chief, worker = run_workers(first, tmp_path, "gpt")
    assert_all_close(worker, chief, rtol=1e-6)
    made = sorted(os.listdir(tmp_path / "runs"))  # the chief's run alone: one claimant
    assert len(made) == 2 and made[1] == "latest" and made[0].endswith("-gpt"), made
    run = charlm.load(tmp_path / "runs" / made[0], weights="last")
    assert run.config.model == "gpt" and [int(r["step"]) for r in run.metrics()][-1] == 10
    assert_all_close([v.numpy() for v in run.model.trainable_variables], chief, rtol=1e-6)
    assert run.generate("3 little", length=40, seed=1)[0].startswith("3 little")


def test_a_batch_that_does_not_split_over_the_replicas_is_one_error(corpus, tmp_path):
    script = MIRRORED.split("import charlm")[0] + textwrap.dedent("""
        import charlm
        from charlm.errors import CharLMError
        try:
            charlm.train([sys.argv[1]], steps=1, strategy="mirrored", batch_size=7,
                         runs_dir=sys.argv[2], progress=False)
        except CharLMError as e:
            print(e)
    """)
    _, out, _ = forked.run([corpus, tmp_path], code=script, timeout=120)
    assert out.strip().splitlines() == [
        "--batch-size 7 does not split over 2 replicas; use a multiple of 2, e.g. 6"
    ]


def lone_worker(corpus: Path, tmp_path: Path, *flags: str):
    """``charlm train --strategy multi-worker`` started as worker 0 of two whose other worker
    never starts: its port and the process."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    env = {
        **{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},  # as a user's
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}),
    }
    args = [str(corpus), "--steps", "2", "--units", "8", "--strategy", "multi-worker", *flags]
    process = subprocess.Popen(
        [sys.executable, "-m", "charlm", "train", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return ports[0], process


def test_a_worker_whose_peer_never_comes_gives_up_after_peer_timeout_with_one_line(
    corpus, tmp_path
):
    _, worker = lone_worker(corpus, tmp_path, "--peer-timeout", "2")
    _, err = worker.communicate(timeout=180)
    assert worker.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 2, err  # what it waits for, then why it stopped
    assert lines[0].startswith("multi-worker: waiting up to 2 s for the other workers")
    assert lines[1].startswith("Error: the other workers did not all join within 2 s;")
    assert "--peer-timeout" in lines[1]
    assert not (tmp_path / "runs").exists()


def test_sigterm_stops_a_worker_that_waits_for_its_peer(corpus, tmp_path):
    port, worker = lone_worker(corpus, tmp_path)  # the default timeout: 120 s
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # its server listens: it waits for the other worker
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert worker.poll() is None, worker.communicate()[1]
        time.sleep(0.5)
    else:
        pytest.fail("the worker never listened on its port")
    time.sleep(2)
    sent = time.monotonic()
    worker.terminate()
    worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGTERM
    assert time.monotonic() - sent < 10
    assert not (tmp_path / "runs").exists()
