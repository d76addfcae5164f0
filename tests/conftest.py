import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
CONFIGS = ROOT / "configs"

# the smallest settings that still learn: used by most tests that train
TINY = dict(layers=1, units=32, embedding_dim=16, seq_len=16, batch_size=8, lr=0.01,
            eval_every=0, sample_every=0)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in an empty folder, so runs/ lands in tmp_path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def charlm_cli():
    """Run the real `charlm` command in a subprocess: (exit code, stdout, stderr)."""
    import subprocess

    def run(*args, cwd=None, input=None, env=None, timeout=300):
        full_env = {**os.environ, **(env or {})}
        p = subprocess.run([sys.executable, "-m", "charlm", *map(str, args)], cwd=cwd,
                           input=input, capture_output=True, text=True, env=full_env,
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    return run


def error(fn, *args, **kwargs) -> str:
    """The one-line message of the CharLMError that ``fn(*args, **kwargs)`` raises."""
    from charlm.errors import CharLMError

    with pytest.raises(CharLMError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


def assert_close(actual, expected, rtol: float = 1e-5, floor: float | None = None) -> None:
    """Equal within ``rtol``, with an absolute floor relative to the size of ``expected``
    (``floor`` times its largest magnitude; ``rtol`` times it unless given): float32 round-off
    grows with the values, and differs between CPU kinds (AVX2 against AVX-512 reductions)."""
    expected = np.asarray(expected)
    scale = float(np.max(np.abs(expected), initial=0.0)) or 1.0
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol,
                               atol=(rtol if floor is None else floor) * scale)


def tree_snapshot(path: Path) -> dict:
    """{relative path: bytes} of every file under path (to show nothing changed)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


# -- charlm serve: one tiny run and one live server for the whole session (tests/serving.py) ---

@pytest.fixture(scope="session")
def serve_run(tmp_path_factory):
    """A tiny run trained on Tang poems, loaded (charlm.api.Run) in this process."""
    import charlm
    from serving import train_tiny

    return charlm.load(train_tiny(tmp_path_factory.mktemp("serve")))


@pytest.fixture(scope="session")
def server(serve_run, tmp_path_factory):
    """``charlm serve`` of :func:`serve_run` on a free loopback port, for the whole session."""
    from serving import Server

    live = Server(serve_run.path, "--max-tokens", "100000", "--compile-ahead", "1,2,4,8,16,32",
                  log=tmp_path_factory.mktemp("serve-log") / "server.log").wait_ready()
    yield live
    live.stop()
