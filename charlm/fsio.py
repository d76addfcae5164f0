"""Crash-safe file writing, in one place: a crash at any moment leaves the old file or the new
one, never half of either.

The recipe is always the same: write under a temporary name in the same folder, fsync the
data, rename over the final name, fsync the folder so the rename itself is durable::

    atomic_write("runs/x/config.toml", text)       # a file
    with atomic_file("runs/x/index.bin") as f:     # a file written piece by piece
        f.write(header); big_array.tofile(f)
    replace_path(tmp_folder, "runs/x/best")         # a folder written beside its final name

:func:`text_sha256` names a text by its content (corpus.json, the memorisation index's tag).

``fault_point(name)`` is a test hook: with ``CHARLM_PAUSE_AT=name[:n]`` in the environment the
n-th write that reaches point ``name`` stops and waits, so a test can SIGKILL the process there.

Pure Python: no numpy, no TensorFlow.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path


def to_stderr(line: str) -> None:
    """Where charlm says what it does and warns, unless a caller passes its own ``log``."""
    print(line, file=sys.stderr)


def real_path(path) -> Path:
    """``path`` absolute, its links followed as far as they go: ``Path.resolve`` without its
    RuntimeError on a symlink loop (a ``runs/latest`` pointing at itself), which every
    command must survive; the path of a loop then names nothing, and ``exists()`` says so."""
    return Path(os.path.realpath(path))


# what TensorFlow's file matching reads as a pattern when it looks a checkpoint's files up
TF_PATTERN_CHARS = frozenset("[]*?{}\\")


@contextlib.contextmanager
def tf_path(path):
    """``path``, or while TensorFlow's C++ would misread it, a link to it with a plain name
    in a temporary folder: a name with a character its file matching reads as a pattern (a
    run under ``my runs [old]``: a checkpoint read finds "no matching files") or a control
    character (a SavedModel saved under a name with a newline lands in a folder named by the
    part before it). The folder ``path`` must exist; every path charlm hands TensorFlow's
    own file code (checkpoints, SavedModels) goes through here."""
    text = str(path)
    if text.isprintable() and not TF_PATTERN_CHARS & set(text):
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="charlm-") as folder:
        link = Path(folder) / "path"
        os.symlink(os.path.abspath(path), link)
        yield link


class Ended(BaseException):
    """Raised by the handler of a terminating signal so that cleanup code runs."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def ended_cleanly():
    """Within the block, SIGTERM and SIGHUP raise instead of ending the process at once, so the
    block's ``except`` and ``finally`` clauses remove its temporary files; then the process
    ends by that same signal, as it would have. (SIGINT raises KeyboardInterrupt already.)
    A signal whose handler is not the default one, and any thread but the main one, are left
    alone."""
    signums = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    if threading.current_thread() is not threading.main_thread():
        signums = []
    previous = {s: signal.getsignal(s) for s in signums}

    def handler(signum, frame):
        signal.signal(signum, previous[signum])  # a second one acts at once
        raise Ended(signum)

    for s in signums:
        if previous[s] == signal.SIG_DFL:
            signal.signal(s, handler)
    try:
        yield
    except Ended as e:
        signal.raise_signal(e.signum)  # the default action: the process ends here
        raise SystemExit(128 + e.signum) from None  # pragma: no cover - a handler came back
    finally:
        for s in signums:
            signal.signal(s, previous[s])


def fsync_dir(path) -> None:
    """Make the entries of folder ``path`` (a rename, a new file) durable; a no-op where the
    platform cannot open folders."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path) -> None:
    """fsync the file ``path``, or every file and folder under the folder ``path``."""
    if not os.path.isdir(path):
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        return
    for root, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(root)


def temp_name(path, suffix: str = "") -> Path:
    """A hidden name beside ``path`` for writing it (``.name.tmp-PID`` + ``suffix``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")


def atomic_write(path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one.

    A failure (a full disk, a read-only folder) raises the ``OSError`` and leaves no
    temporary file behind.
    """
    with atomic_file(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


@contextlib.contextmanager
def atomic_file(path):
    """A binary file open for writing that becomes ``path`` when the ``with`` block ends
    (fsync, rename, fsync of the folder), for data too big to join into one ``bytes`` first.
    An exception in the block, or a failure to write, leaves the old ``path`` and no
    temporary file; the exception goes on (an OSError naming ``path``)."""
    path = Path(path)
    tmp = temp_name(path)
    with removed_on_failure(tmp, named=path):
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    fsync_dir(path.parent)


@contextlib.contextmanager
def removed_on_failure(tmp, named=None):
    """Remove the temporary file or folder ``tmp`` (left from before, or half written now)
    first, and again if the ``with`` block fails (a full disk, a signal); the exception goes
    on, as an OSError that names ``named`` (default ``tmp``) when it is a write error that
    names no file: a library's (Keras's, TensorFlow's: a ResourceExhaustedError that says
    the disk is full) or a plain ``write``'s. ``atomic_file`` for what a library writes::

        with removed_on_failure(tmp):
            model.save(tmp)
            replace_path(tmp, final)
    """
    _remove(tmp)
    try:
        yield
    except BaseException as e:
        _remove(tmp)
        named = str(named or tmp)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = named
        elif not isinstance(e, OSError) and os.strerror(errno.ENOSPC) in str(e):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), named) from e
        raise


def _remove(path) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def text_sha256(text: str) -> str:
    """The sha256 of ``text`` as UTF-8 (lone surrogates passed through), hashed in pieces so
    that a big text is never copied whole.

    >>> text_sha256("abc")[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    for i in range(0, len(text), 1 << 22):
        h.update(text[i : i + (1 << 22)].encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def replace_path(tmp, final) -> None:
    """Move the finished file or folder ``tmp`` (already fsynced) to ``final``.

    A file is renamed over its old version in one step. A folder cannot be, so its old
    version is first renamed to ``.NAME.old-PID`` and removed after; :func:`readable_path`
    finds that copy if a crash comes between the two renames.
    """
    tmp, final = Path(tmp), Path(final)
    if tmp.is_dir():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        if final.exists():
            os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(final.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
        fsync_dir(final.parent)


def readable_path(final) -> Path:
    """``final``, or the old copy :func:`replace_path` left if a crash hit between its renames."""
    final = Path(final)
    if final.exists():
        return final
    olds = sorted(final.parent.glob(f".{final.name}.old-*"))
    return olds[-1] if olds else final


@contextlib.contextmanager
def quiet_stderr():
    """Keep what C++ code writes to file descriptor 2 (TensorFlow's start-up notes, the TFLite
    converter's MLIR log) off the terminal for the ``with`` block: it bypasses ``sys.stderr``,
    so only the descriptor itself can be pointed at ``/dev/null``. Python errors still raise.

        with quiet_stderr():
            import tensorflow
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Test hook: with ``CHARLM_PAUSE_AT=name[:n]`` in the environment, stop at the n-th time
    (default the first) a write reaches point ``name`` and wait, so a test can SIGKILL us there."""
    want = os.environ.get("CHARLM_PAUSE_AT", "")
    if not want.startswith(name):
        return
    target, _, nth = want.partition(":")
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if target == name and _fault_hits[name] == int(nth or 1):
        print(f"CHARLM_PAUSED {name}", file=sys.stderr, flush=True)
        time.sleep(600)


def progress_bar(progress: bool | None, **settings):
    """A tqdm progress bar on stderr, as wide as the terminal: ``progress`` True or False forces
    it on or off, None shows it only on a terminal (tqdm's choice). ``settings``: tqdm's
    (``total``, ``unit``, ``desc`` ...). The one place charlm sets a bar up."""
    from tqdm import tqdm

    return tqdm(
        dynamic_ncols=True,
        file=sys.stderr,
        disable=None if progress is None else not progress,
        **settings,
    )


def keep_xla_compiles() -> Path | None:
    """Point XLA's persistent compilation cache at ``~/.cache/charlm/xla/<this CPU>`` (or
    under ``$XDG_CACHE_HOME``), unless ``TF_XLA_FLAGS`` is set already or
    ``CHARLM_XLA_CACHE=0``: the sampling loop compiled once is read back by the next command
    (the first generated character of ``charlm sample`` 0.6 s sooner on an Intel Xeon, ~0.4 MB
    a model and batch size). Keyed by the CPU's model and flags, since the cache holds
    machine code and a home folder may be shared by unlike machines. The folder, or None
    where there is none to be had (not writable, a name with a space, which TF_XLA_FLAGS
    cannot carry)."""
    if "TF_XLA_FLAGS" in os.environ or os.environ.get("CHARLM_XLA_CACHE") == "0":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "charlm" / "xla" / _cpu_key()
    if any(c.isspace() for c in str(folder)):
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    os.environ["TF_XLA_FLAGS"] = f"--tf_xla_persistent_cache_directory={folder}"
    return folder


def _cpu_key() -> str:
    """A short hash of the CPU's model and flags (Linux's /proc/cpuinfo; elsewhere what
    Python's platform says)."""
    import platform

    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        lines = [
            next((x for x in text.splitlines() if x.startswith(k)), "")
            for k in ("model name", "flags")
        ]
    except OSError:
        lines = [platform.machine(), platform.processor()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def quiet_tensorflow(devices: bool = True) -> None:
    """Import TensorFlow with its start-up chatter (CUDA probes, oneDNN notes) kept off stderr,
    and start its devices unless ``devices`` is False (a multi-worker strategy must be made
    before they start): what the CLI and the Python API (``charlm.train``, ``charlm.load``) do
    before anything imports it. Nothing if TensorFlow's Keras is imported already."""
    if "keras" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ notes; Python errors still raise
    keep_xla_compiles()
    with quiet_stderr():
        import tensorflow as tf

        if devices:
            tf.config.list_logical_devices()  # the CUDA probe prints here too
            import keras  # noqa: F401
