"""``charlm`` processes forked from one that has already imported TensorFlow.

Importing TensorFlow costs about 4 s of CPU, and a test that runs the charlm command as a
real process (to kill it, signal it, feed its stdin, read what it leaves behind) paid it
every time. :func:`start` forks the process instead from a *zygote*, started once per pytest
worker, that has imported TensorFlow and charlm and run nothing else. The child is a process
of its own (its pid, its signals, its exit status, its stdin, stdout and stderr, its working
folder and environment) that runs ``charlm.cli.main`` as ``python -m charlm`` does, on a
copy-on-write copy of those imports; the launch it counts a ``--time-budget`` from is its own.

Where the interpreter's own start is the point (what a fresh process imports, what it
prints while TensorFlow loads, how the interpreter ends), tests run ``python -m charlm``.

    proc = start(["train", "--resume", "runs/k"], cwd=folder, env={**os.environ, ...})
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)   # as subprocess.Popen's
    code, out, err = run(["sample", "-i"], cwd=folder, input="hello\\n")
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

PIPE, DEVNULL, STDOUT = subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT


class Process:
    """A forked ``charlm`` process: the part of :class:`subprocess.Popen` the tests use
    (``pid``, ``stdin``/``stdout``/``stderr`` as text files, ``poll``, ``wait``,
    ``communicate``, ``send_signal``, ``kill``, ``terminate``, ``returncode``: negative for a
    signal, as Popen's)."""

    def __init__(
        self,
        args,
        cwd=None,
        env=None,
        stdin=DEVNULL,
        stdout=PIPE,
        stderr=PIPE,
        new_session=False,
        code=None,
    ):  # Popen's order, then ours
        self.args = ["charlm" if code is None else "python -c", *map(str, args)]
        self.returncode = None
        theirs = self._pipes(stdin, stdout, stderr)
        request = {
            "args": self.args[1:],
            "code": code,
            "cwd": os.path.abspath(cwd or os.getcwd()),
            "env": dict(os.environ if env is None else env),
            "new_session": new_session,
        }
        self._status, status = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            _zygote().send(request, [*theirs, status.fileno()])
        finally:
            status.close()
            for fd in theirs:
                os.close(fd)
        self.pid = _number(self._status.recv(64))

    def _pipes(self, stdin, stdout, stderr) -> list[int]:
        """Our ends as ``self.stdin``/``stdout``/``stderr``; the child's three descriptors."""
        self.stdin = self.stdout = self.stderr = None
        theirs: list[int] = []
        for name, choice in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
            if choice == PIPE:
                read, write = os.pipe()
                ours, child = (write, read) if name == "stdin" else (read, write)
                setattr(self, name, open(ours, "w" if name == "stdin" else "r", encoding="utf-8"))
                theirs.append(child)
            elif choice == STDOUT:
                theirs.append(os.dup(theirs[1]))
            elif hasattr(choice, "fileno"):  # an open file
                theirs.append(os.dup(choice.fileno()))
            elif choice == DEVNULL:
                theirs.append(os.open(os.devnull, os.O_RDWR))
            else:
                raise ValueError(f"{name}={choice!r}: use PIPE, DEVNULL, an open file or STDOUT")
        return theirs

    def poll(self):
        if self.returncode is None and select.select([self._status], [], [], 0)[0]:
            self.wait()
        return self.returncode

    def wait(self, timeout=None) -> int:
        if self.returncode is None:
            if not select.select([self._status], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = _number(self._status.recv(64))
            self._status.close()
        return self.returncode

    def communicate(self, input=None, timeout=None):
        """``(stdout, stderr)`` read to their ends (None where not a pipe), after writing
        ``input`` to stdin and closing it; then the exit status is in ``returncode``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        readers = [_Reader(f) for f in (self.stdout, self.stderr)]
        if self.stdin is not None:
            try:
                self.stdin.write(input or "")
                self.stdin.close()
            except BrokenPipeError:
                pass
        for reader in readers:
            if not reader.join(None if deadline is None else deadline - time.monotonic()):
                raise subprocess.TimeoutExpired(self.args, timeout)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return readers[0].text, readers[1].text

    def send_signal(self, sig) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class _Reader:
    """A file read to its end on a thread (None for no file)."""

    def __init__(self, file):
        self.text = None
        self._thread = None
        if file is not None:
            self._thread = threading.Thread(target=self._read, args=(file,), daemon=True)
            self._thread.start()

    def _read(self, file) -> None:
        with file:
            self.text = file.read()

    def join(self, timeout) -> bool:
        if self._thread is not None:
            self._thread.join(None if timeout is None else max(0.0, timeout))
            return not self._thread.is_alive()
        return True


def start(args, cwd=None, env=None, **streams) -> Process:
    """The ``charlm *args`` process, forked. ``stdin``/``stdout``/``stderr`` as Popen's
    (PIPE, DEVNULL, an open file, or STDOUT for stderr; default: no stdin, both outputs
    piped); ``new_session``: its own session and process group (Popen's start_new_session)."""
    return Process(args, cwd=cwd, env=env, **streams)


def python(code: str, args=(), cwd=None, env=None, **streams) -> Process:
    """The process of ``python -c code *args``, forked: for a script that needs a process of
    its own but not a fresh interpreter (TensorFlow imported, its runtime not yet started)."""
    return Process(args, cwd=cwd, env=env, code=code, **streams)


def run(args, cwd=None, env=None, input=None, timeout=300, code=None) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of the forked ``charlm *args`` fed ``input`` (of
    ``python -c code *args`` with ``code``)."""
    stdin = PIPE if input is not None else DEVNULL
    proc = Process(args, cwd=cwd, env=env, stdin=stdin, code=code)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # as subprocess.run: a hung child must not go on using the cores
        proc.wait()
        raise
    return proc.returncode, out, err


def _number(message: bytes) -> int:
    """A pid or exit status from the zygote; nothing means that it has died."""
    if not message:
        raise RuntimeError(f"the zygote of tests/forked.py has died; its log: {_LOG}")
    return int(message)


# -- the zygote: this file run as a script, one per pytest worker ----------------------------

_ZYGOTE = None
_ENV = dict(os.environ)  # as the test session began: no test's changes reach the imports
_LOG = os.path.join(tempfile.gettempdir(), f"charlm-zygote-{os.getpid()}.log")


class _Zygote:
    def __init__(self):
        self._ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with open(_LOG, "w") as log:
            self._proc = subprocess.Popen(
                [sys.executable, __file__, str(theirs.fileno())],
                stdin=PIPE,  # closed when this process ends: the zygote then ends too
                stdout=log,
                stderr=log,
                cwd=os.path.dirname(os.path.abspath(__file__)),
                env=_ENV,
                pass_fds=[theirs.fileno()],
            )
        theirs.close()
        self._lock = threading.Lock()
        atexit.register(self.close)

    def send(self, request: dict, fds: list[int]) -> None:
        with self._lock:
            socket.send_fds(self._ctl, [json.dumps(request).encode()], fds)

    def ended(self) -> bool:
        return self._proc.poll() is not None

    def close(self) -> None:
        self._ctl.close()
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def _zygote() -> _Zygote:
    """This worker's zygote, started on first use and again if it has ended."""
    global _ZYGOTE
    if _ZYGOTE is None or _ZYGOTE.ended():
        _ZYGOTE = _Zygote()
    return _ZYGOTE


def _serve(ctl: socket.socket) -> None:
    """Fork a child for every request on ``ctl``; tell each request's status socket the
    child's pid, then its exit status. Ends when ``ctl`` or stdin closes."""
    children: dict[int, socket.socket] = {}
    while True:
        ready = select.select([ctl, 0], [], [], 0.02 if children else None)[0]
        if 0 in ready and not os.read(0, 1):
            return
        if ctl in ready:
            message, fds, _, _ = socket.recv_fds(ctl, 1 << 20, 4)
            if not message:
                return
            pid = os.fork()
            if pid == 0:
                ctl.close()
                for sibling in children.values():  # their status is the zygote's to send
                    sibling.close()
                _child(json.loads(message), fds)
            for fd in fds[:3]:
                os.close(fd)
            children[pid] = socket.socket(fileno=fds[3])
            _tell(children[pid], pid)
        _reap(children)


def _reap(children: dict) -> None:
    while children:
        pid, wait_status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        status = children.pop(pid)
        _tell(status, os.waitstatus_to_exitcode(wait_status))
        status.close()


def _tell(status: socket.socket, number: int) -> None:
    """Send ``number`` on a request's status socket; a test that stopped listening is fine."""
    try:
        status.sendall(f"{number}".encode())
    except OSError:
        pass


def _child(request: dict, fds: list[int]) -> None:
    """Become ``python -m charlm *args`` in the request's folder, environment and streams."""
    os.close(fds[3])
    for fd, target in zip(fds[:3], (0, 1, 2), strict=True):
        os.dup2(fd, target)
        os.close(fd)
    if request["new_session"]:
        os.setsid()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as at an interpreter's start
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _new_streams(bool(request["env"].get("PYTHONUNBUFFERED")))
    import charlm.cli
    from charlm.training.clock import process_started

    charlm.cli.LAUNCHED = process_started()  # this process's launch, as charlm.cli reads it
    if request["code"] is not None:
        sys.argv = ["-c", *request["args"]]
        code = compile(request["code"], "<string>", "exec")
        _exit_status(lambda: exec(code, {"__name__": "__main__"}))
    sys.argv = ["charlm", *request["args"]]
    _exit_status(lambda: charlm.cli.main(request["args"], prog_name="charlm"))


def _new_streams(unbuffered: bool) -> None:
    """sys.stdin, stdout and stderr on descriptors 0-2, made as an interpreter makes them."""
    import io

    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", closefd=False)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        binary = open(fd, "wb", buffering=0 if unbuffered else -1, closefd=False)
        text = io.TextIOWrapper(
            binary,
            encoding="utf-8",
            errors="backslashreplace" if fd == 2 else "strict",
            line_buffering=fd == 2 or os.isatty(fd),
            write_through=unbuffered,
        )
        setattr(sys, name, text)
        setattr(sys, f"__{name}__", text)


def _exit_status(main) -> None:
    """Run ``main`` as the interpreter runs a program, and end this process as it would: wait
    for the threads that are not daemons, then charlm's own end (charlm.cli.quick_exit: exit
    handlers, flushed streams, the status) without the interpreter's teardown."""
    from charlm.cli import quick_exit

    try:
        main()
        code = None
    except SystemExit as e:
        code = e.code
    except KeyboardInterrupt:  # uncaught, it ends the process by SIGINT
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130  # not reached: the signal ends the process
    except BaseException:
        traceback.print_exc()
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    quick_exit(code)


if __name__ == "__main__":
    import tensorflow  # noqa: F401  (the point: imported once, shared by every child)

    import charlm.api.training  # noqa: F401  (the api's door imports its rooms lazily)
    import charlm.cli  # noqa: F401
    import charlm.training.trainer  # noqa: F401

    _serve(socket.socket(fileno=int(sys.argv[1])))
