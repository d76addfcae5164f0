"""What reading skipped or guessed, told once reading succeeds: one line per input and kind.

>>> notes = Notes()
>>> notes.add("data", "binary", "data/logo.png")
>>> notes.add("data", "binary", "data/icon.png")
>>> notes.add("u16.txt", ("bom", "utf-16-le"), "u16.txt")
>>> for line in notes.lines():
...     print(line)
warning: data: skipped 2 binary files (logo.png, icon.png)
warning: u16.txt: starts with a UTF-16-LE byte-order mark; read as UTF-16-LE
"""

from __future__ import annotations

import os
from collections.abc import Iterator


class Notes:
    """The names noted under each ``(where, kind)``, in order, once each.

    ``where`` is the folder or zip a file came from, or the file itself when it was named;
    ``kind`` is "binary" (skipped) or ``("bom", encoding)`` (decoded by its byte-order mark).
    """

    def __init__(self) -> None:
        self.names: dict[tuple, dict[str, None]] = {}

    def add(self, where: str, kind, name: str) -> None:
        self.names.setdefault((where, kind), {})[name] = None

    def lines(self) -> Iterator[str]:
        for (where, kind), names in self.names.items():
            yield _note_line(where, kind, list(names))


def few(names: list[str], n: int = 3) -> str:
    """The first ``n`` of ``names``, and how many there are when that is not all."""
    shown = ", ".join(names[:n])
    return shown + (f", ... {len(names)} files in all" if len(names) > n else "")


def _note_line(where: str, kind, names: list[str]) -> str:
    if names == [where]:  # a file the user named; only a byte-order mark is ever noted for one
        label = kind[1].upper()
        return f"warning: {where}: starts with a {label} byte-order mark; read as {label}"
    inside = few([_inside(where, name) for name in names])
    if kind == "binary":
        return f"warning: {where}: skipped {_files(len(names), 'binary file')} ({inside})"
    return (
        f"warning: {where}: read {_files(len(names))} as {kind[1].upper()}"
        f" by the byte-order mark ({inside})"
    )


def _inside(where: str, name: str) -> str:
    """``name`` as seen from inside the folder or zip ``where``."""
    if name.startswith(f"{where}:"):
        return name.removeprefix(f"{where}:")
    return os.path.relpath(name, where)


def _files(n: int, what: str = "file") -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"
