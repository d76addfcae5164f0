import contextlib
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA keeps what it compiled in one folder for the whole run (the workers and every process they
# start inherit it): the suite compiles the same tiny models' loops hundreds of times, and a
# module that samples ran 13% faster with it (README, Sample: the same flag for users)
if "TF_XLA_FLAGS" not in os.environ:
    import atexit
    import tempfile

    _XLA_CACHE = tempfile.mkdtemp(prefix="charlm-tests-xla-")
    os.environ["TF_XLA_FLAGS"] = f"--tf_xla_persistent_cache_directory={_XLA_CACHE}"
    atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
CONFIGS = ROOT / "configs"

# the smallest settings that still learn: used by most tests that train
TINY = dict(
    layers=1,
    units=32,
    embedding_dim=16,
    seq_len=16,
    batch_size=8,
    lr=0.01,
    eval_every=0,
    sample_every=0,
)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in an empty folder, so runs/ lands in tmp_path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Ran:
    """What a run of the ``charlm`` command gave: ``exit_code``, ``stdout``, ``stderr`` (and
    ``output``, both as a terminal shows them); unpacks as ``code, out, err``."""

    def __init__(self, exit_code: int, stdout: str, stderr: str, output: str):
        self.exit_code, self.stdout, self.stderr, self.output = exit_code, stdout, stderr, output

    def __iter__(self):
        return iter((self.exit_code, self.stdout, self.stderr))


def run_cli(*args, cwd=None, input=None, env=None) -> Ran:
    """Run ``charlm *args`` in this process through click's test runner, as a fresh process
    would: TensorFlow's start-up (seconds) is paid once per session, not once per call.

    Captures file descriptors 1 and 2, so what TensorFlow's C++ prints shows too; an exception
    that escapes the command ends as a process would, exit status 1 and its traceback on stderr.
    ``--time-budget`` counts from the launch (charlm.cli.LAUNCHED): each call is a new launch.
    Keep real subprocesses where the process is the point: signals, what an interpreter imports,
    tty and stdin pipes, workers. Usage: ``code, out, err = run_cli("eval", "--json")``.
    """
    from click.testing import CliRunner

    import charlm.cli

    back, launched = os.getcwd(), charlm.cli.LAUNCHED
    charlm.cli.LAUNCHED = time.monotonic()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner(capture="fd").invoke(
            charlm.cli.main, [str(a) for a in args], input=input, env=env, prog_name="charlm"
        )
    finally:
        os.chdir(back)
        charlm.cli.LAUNCHED = launched
    stderr, output = result.stderr, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        stderr, output = stderr + trace, output + trace
    return Ran(result.exit_code, result.stdout, stderr, output)


# the settings of the runs trained once per session and shared by the modules (shared_run)
SHARED = dict(TINY, steps=20, max_chars=20_000, eval_every=10, eval_chars=2000)


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory):
    """``shared_run(model)``: the folder of a tiny run of ``model`` (lstm, scratch-gru, ...)
    trained with :data:`SHARED` on 20,000 characters of Shakespeare, once per session: training
    is the slow part of most tests that only need some run. Read it; copy it (``copy_run``)
    to change it."""
    import charlm

    home, trained = tmp_path_factory.mktemp("shared-runs"), {}

    def get(model: str) -> Path:
        if model not in trained:
            trained[model] = charlm.train(
                [CORPORA / "tinyshakespeare.txt"],
                model=model,
                name=model,
                runs_dir=str(home / "runs"),
                progress=False,
                log=lambda _: None,
                **SHARED,
            ).path
        return trained[model]

    return get


def train_shakespeare(folder: Path, max_chars: int, **settings):
    """A run of :data:`TINY` changed by ``settings``, trained on the first ``max_chars`` of
    tiny Shakespeare into ``folder/runs`` without a progress bar: the module's own run of a
    test file that needs settings of its own (``charlm.api.Run``)."""
    import charlm

    return charlm.train(
        [CORPORA / "tinyshakespeare.txt"],
        max_chars=max_chars,
        runs_dir=str(folder / "runs"),
        progress=False,
        **{**TINY, **settings},
    )


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of the run folder ``run`` at ``dest``, to change (shared runs stay as trained)."""
    return Path(shutil.copytree(run, dest))


@pytest.fixture
def charlm_cli():
    """Run the real `charlm` command in a subprocess: (exit code, stdout, stderr). Only where
    the process itself is tested; elsewhere :func:`run_cli` runs it in this process."""
    import subprocess

    def run(*args, cwd=None, input=None, env=None, timeout=300, as_user=False):
        """``as_user``: run as root, the process lacks the powers that let root read and write
        past a file's mode (so that a chmod means for it what it means for a user)."""
        full_env = {**os.environ, **(env or {})}
        cmd = [sys.executable, "-m", "charlm", *map(str, args)]
        if as_user and os.geteuid() == 0:
            import shutil

            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv to drop root's file powers")
            cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", *cmd]
        p = subprocess.run(
            cmd,
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )
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
    np.testing.assert_allclose(
        np.asarray(actual), expected, rtol=rtol, atol=(rtol if floor is None else floor) * scale
    )


def tree_snapshot(path: Path) -> dict:
    """{relative path: bytes} of every file under path (to show nothing changed)."""
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


# -- charlm serve: one tiny run and one live server for the whole session (tests/serving.py) ---


@pytest.fixture(scope="session")
def serve_run(tmp_path_factory):
    """A tiny run trained on Tang poems, loaded (charlm.api.Run) in this process."""
    from serving import train_tiny

    import charlm

    return charlm.load(train_tiny(tmp_path_factory.mktemp("serve")))


@pytest.fixture(scope="session")
def server(serve_run, tmp_path_factory):
    """``charlm serve`` of :func:`serve_run` on a free loopback port, for the whole session."""
    from serving import Server

    live = Server(
        serve_run.path,
        "--max-tokens",
        "100000",
        "--compile-ahead",
        "1,2,4",  # the larger sizes compile at their first use (seconds of CI saved)
        log=tmp_path_factory.mktemp("serve-log") / "server.log",
    ).wait_ready()
    yield live
    live.stop()


# -- the order the workers take the modules in ----------------------------------------------------

# the modules that take longest (seconds of a CI run, 2026-12-07), first: pytest-xdist hands
# whole modules (--dist loadscope) to whichever worker is free, so a long one taken last kept
# one worker busy ~30 s after the other had finished
LONGEST_FIRST = [
    "test_resume",
    "test_finetune",
    "test_train",
    "test_export",
    "test_family_choice",
    "test_recipe",
    "test_sample_io",
    "test_resume_kill",
    "test_distribute",
    "test_bad_input",
    "test_serve",
    "test_paths",
]


def pytest_collection_modifyitems(items):
    """Run the modules of :data:`LONGEST_FIRST` first, in that order (each module's tests keep
    their own order); the rest after them as collected."""

    def rank(item) -> int:
        name = item.path.stem
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items[:] = sorted(items, key=rank)  # sorted() is stable


STOP_SECONDS = 2.0  # after Ctrl-C, what the controller has to report before it ends


def pytest_configure(config):
    """Ctrl-C stops the test command within seconds and leaves no worker behind. The terminal
    sends SIGINT to the controller and every pytest-xdist worker; a worker inside a TensorFlow
    call (its import, an op) took 3-10 s to run Python's handler, so a worker takes SIGINT and
    SIGTERM by the kernel's default, which ends it at once (its tests are abandoned anyway),
    and ends by itself when its controller is gone. The controller, on SIGINT or SIGTERM, ends
    its workers first (a SIGTERM to it alone had left them running), then stops as pytest does
    on KeyboardInterrupt, for at most STOP_SECONDS (it had taken 2-9 s)."""
    if hasattr(config, "workerinput"):
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        parent = os.getppid()

        def watch_parent():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch_parent, daemon=True, name="parent-watch").start()
    elif threading.current_thread() is threading.main_thread():

        def stop(signum, frame):
            for child in _children():
                with contextlib.suppress(OSError):
                    os.kill(child, signal.SIGTERM)
            last_word = threading.Timer(STOP_SECONDS, os._exit, (128 + signum,))
            last_word.daemon = True
            last_word.start()  # pytest's own teardown took up to 9 s more: it gets 2
            raise KeyboardInterrupt

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)


def _children() -> list[int]:
    """The ids of this process's children (Linux: from /proc)."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == me:
                found.append(int(stat.parent.name))
    return found
