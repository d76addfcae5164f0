"""One writer per run folder: an OS file lock on ``RUN/train.lock``, held for the life of a
``charlm train`` or ``train --resume``.

The lock is ``flock`` on the open file, so the operating system drops it when the process
ends, however it ends (SIGKILL included): a lock is never stale. While held, the file holds
the holder's process id, for the message a second writer gets::

    lock = RunLock.take("runs/x")        # CharLMError if another process trains runs/x
    ...                                  # train
    lock.release()

    RunLock.holder("runs/x")             # 1234 (its pid) while it trains, else None
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from ..errors import CharLMError

LOCK_FILE = "train.lock"
# a reader (`charlm runs`) probes the lock for an instant: a writer tries for this long first
TRIES, PAUSE = 20, 0.01
UNKNOWN = 0  # holder(): held, by a process that has not written its pid yet


class RunLock:
    """The lock of the run folder ``folder``, held by this process (see :meth:`take`)."""

    def __init__(self, folder, fd: int):
        self.folder, self.fd = Path(folder), fd

    @classmethod
    def take(cls, folder, new: bool = False) -> RunLock:
        """Hold the lock of ``folder``, or raise the one line naming the process that holds it.
        ``new``: the lock file must not exist yet (``FileExistsError`` otherwise), which makes
        creating a run atomic: of two processes, exactly one creates it."""
        path = Path(folder) / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | (os.O_EXCL if new else 0), 0o644)
        except FileExistsError:
            raise
        except OSError as e:
            raise CharLMError(
                f"cannot open {path} to train the run ({e.strerror}); check the folder's "
                "permissions, or train a copy of the run elsewhere"
            ) from None
        try:
            if not _flock(fd, fcntl.LOCK_EX, TRIES):
                raise CharLMError(busy(folder, _read_pid(path)))
            if not _same_file(fd, path):  # removed (or replaced) while we waited for it
                raise CharLMError(f"{folder}: the run folder was removed while opening it")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(folder, fd)

    @staticmethod
    def holder(folder) -> int | None:
        """The pid of the process that holds the lock of ``folder`` (:data:`UNKNOWN` if it
        has not written it yet), or None when no process does."""
        path = Path(folder) / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            if _flock(fd, fcntl.LOCK_SH, 1):
                return None  # (closing the file below lets the probe's lock go)
            return _read_pid(path)
        finally:
            os.close(fd)

    def release(self) -> None:
        """Let another process train the run (the file is emptied: no one holds it)."""
        if self.fd < 0:
            return
        try:
            if _same_file(self.fd, self.folder / LOCK_FILE):
                os.ftruncate(self.fd, 0)
        except OSError:
            pass  # a read-only or removed folder: the lock goes with the descriptor anyway
        finally:
            os.close(self.fd)
            self.fd = -1


def busy(folder, pid: int | None) -> str:
    """The line a second writer gets."""
    return f"{folder} is being trained by {holder_name(pid)}; wait for it or stop it"


def holder_name(pid: int | None) -> str:
    """``process 1234``, or ``another process`` when its pid is not known."""
    return f"process {pid}" if pid else "another process"


def _flock(fd: int, kind: int, tries: int) -> bool:
    """Lock ``fd`` (``tries`` times, :data:`PAUSE` apart); False if another holds it. A file
    system without locks counts as unlocked: nothing can hold it there."""
    for attempt in range(tries):
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < tries:
                time.sleep(PAUSE)
        except OSError as e:
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return True
            raise
    return False


def _read_pid(path: Path) -> int:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return UNKNOWN
    return int(text) if text.isdigit() else UNKNOWN


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)
