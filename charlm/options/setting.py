"""A setting: a dataclass field that carries its own description, so that each option of
charlm is described once, where it is declared, and the CLI, the checks and the docs ask it.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Options:
    ...     size: int = setting(8, "How many.", least=1)
    >>> help_of(Options, "size")
    'How many.'

It sits below every record built with it (:mod:`charlm.options.sampling`, :mod:`charlm.options.config`, the
server's limits), so none of them has to import another to describe its fields.
"""

from __future__ import annotations

from dataclasses import field, fields


def setting(
    default=None,
    help: str = "",
    *,
    factory=None,
    choices=None,
    flag=None,
    aliases=(),
    least=None,
    resumable=False,
):
    """A field with its help text and, where it has them, its choices, its flag names, the
    least whole number it takes (``least``: checked with the config's other rules) and
    whether a resumed run may change it (``resumable``: limits and monitoring, never the
    model or the data)."""
    metadata = {
        "help": help,
        "choices": choices,
        "flag": flag,
        "aliases": tuple(aliases),
        "least": least,
        "resumable": resumable,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def help_of(record, name: str) -> str:
    """The help text of field ``name`` of the dataclass ``record``."""
    return next(f.metadata["help"] for f in fields(record) if f.name == name)
