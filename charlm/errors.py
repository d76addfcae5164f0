"""The one exception type charlm raises for problems the user can fix.

A :class:`CharLMError` carries a single line that names the problem and the way out,
e.g. ``corpus.txt: invalid UTF-8 at byte 1234; pass --encoding or --errors replace``.
The command-line interface prints it as one line and exits non-zero, with no traceback.
What is no CharLMError but still the user's to fix (a full disk, a folder without write
permission, running out of memory) is made one line the same way at that boundary, with
:func:`os_error_line` and :func:`resource_line`.
"""

import errno
import os
import re


class CharLMError(Exception):
    """A problem with the user's input, files or options, explained in one line."""


def first_line(e: BaseException) -> str:
    """The first line of ``e``'s message (its type's name if it has none): TensorFlow's and
    Keras's errors run to pages of internals, and a CharLMError quotes one line of them.

    >>> first_line(ValueError("bad shape\\n  at layer 3")), first_line(KeyError())
    ('bad shape', 'KeyError')
    """
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# what TensorFlow puts around the reason of an op's error: its function, its op, and a
# checkpoint's shard (the reason itself stays: "Checksum does not match", "not an sstable")
_TF_WRAPPING = re.compile(
    r"\{\{.*?\}\}\s*|\s*\[Op:\w+\]|TensorBundle at \S+ shard \d+ \(\d+ bytes\): "
)


def tf_reason(e: BaseException) -> str:
    """The first line of TensorFlow's error ``e`` without its wrapping (the function and op
    names, a checkpoint shard's path), as a message quotes it.

    >>> tf_reason(ValueError("{{function_node __wrapped__RestoreV2}} TensorBundle at x/ckpt "
    ...     "shard 0 (16384 bytes): Checksum does not match [Op:RestoreV2]"))
    'Checksum does not match'
    """
    return _TF_WRAPPING.sub("", first_line(e))


# the way out of each operating-system error a command can meet writing or reading its files
_NO_SPACE = (
    "the disk is full; free some space and run the command again (a run continues from its "
    "last checkpoint with charlm train --resume)"
)
_NO_ACCESS = "check its permissions, or choose another folder (e.g. --runs-dir)"
OS_WAYS_OUT = {
    errno.EACCES: _NO_ACCESS,
    errno.EPERM: _NO_ACCESS,
    errno.EROFS: "the file system is read-only; choose another folder (e.g. --runs-dir)",
    errno.ENOSPC: _NO_SPACE,
    errno.EDQUOT: _NO_SPACE,
    errno.ENAMETOOLONG: "use a shorter name (e.g. --name)",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EEXIST: "a file stands where a folder should be; move it, or choose another path",
    errno.EISDIR: "a folder stands where a file should be; move it, or choose another path",
    errno.ENOENT: "check the path",
}


def os_error_line(e: OSError) -> str:
    """One line for an OSError that reached a command: the path, what went wrong and the way
    out (a full disk, no permission, a name too long, a file where a folder should be).

    >>> os_error_line(OSError(errno.ENOSPC, "No space left on device", "runs/x/last.keras"))
    'runs/x/last.keras: No space left on device; the disk is full; free some space and run the command again (a run continues from its last checkpoint with charlm train --resume)'
    """
    where = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
    what = e.strerror or first_line(e)
    way_out = "check the path and the disk, and run the command again"
    if e.errno is not None:  # an OSError made with a message only has none
        way_out = OS_WAYS_OUT.get(e.errno, way_out)
    return f"{where}: {what}; {way_out}" if where else f"{what}; {way_out}"


def resource_line(e: BaseException) -> str | None:
    """One line for running out of memory (MemoryError, TensorFlow's ResourceExhaustedError,
    known by name: no TensorFlow is imported here) or of disk (TensorFlow says so with the
    same error), with TensorFlow's own first line; None for any other error.

    >>> resource_line(MemoryError("cannot allocate 8 GB"))[:40]
    'out of memory (cannot allocate 8 GB); us'
    """
    names = {c.__name__ for c in type(e).__mro__}
    if not names & {"MemoryError", "ResourceExhaustedError"}:
        return None
    if os.strerror(errno.ENOSPC) in str(e):
        return f"{first_line(e)[:300]}; {_NO_SPACE}"
    return (
        f"out of memory ({first_line(e)[:200]}); use fewer --units or --layers, or a smaller "
        "--batch-size or --seq-len"
    )
