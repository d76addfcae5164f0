"""A setting: a dataclass field that carries its own description, so that each option of
charlm is described once, where it is declared, and the CLI, the checks and the docs ask it;
and :class:`OptionError`, the one error a bad value of a setting raises.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Options:
    ...     size: int = setting(8, "How many.", least=1)
    >>> help_of(Options, "size")
    'How many.'
    >>> e = OptionError("temperature", "must be 0 (greedy) or more", -1)
    >>> str(e), e.worded("--temperature")
    ('temperature must be 0 (greedy) or more, not -1', '--temperature must be 0 (greedy) or more, not -1')

An OptionError names its field, not a flag: each face words the name in its own language
(``--temperature`` on the command line, ``"param": "temperature"`` over HTTP, the key and the
line in a TOML file, ``:temperature`` at the interactive prompt) with :meth:`OptionError.worded`.
"""

from __future__ import annotations

from dataclasses import field, fields
from typing import Any

from ..errors import CharLMError

MISSING: Any = object()  # an OptionError about a field as a whole, not one value of it


def setting(
    default: Any = None,
    help: str = "",
    *,
    factory: Any = None,
    choices: tuple[str, ...] | None = None,
    flag: str | None = None,
    aliases: tuple[str, ...] = (),
    least: int | None = None,
    most: int | None = None,
    resumable: bool = False,
    escapes: bool = False,
) -> Any:
    """A dataclass field with its description.

    Args:
        default: The value when none is given.
        help: One or two sentences for ``--help``, the interactive ``:help`` and the docs.
        factory: Makes the default instead (a list, say).
        choices: The only values it takes.
        flag: Its command-line flag, where that is not ``--`` and the name with dashes.
        aliases: Other flags that set it (old names).
        least: The least whole number it takes (checked with the record's other rules).
        most: The largest it takes, where a larger one cannot work on any machine charlm
            runs on (a stack too deep to build in minutes).
        resumable: Whether a resumed run may change it (limits and monitoring, never the
            model or the data).
        escapes: Whether its flag reads ``\\n``, ``\\t`` and ``\\\\`` as a newline, a tab
            and a backslash (text a shell makes hard to type).

    Returns:
        A ``dataclasses.field`` whose metadata holds all of the above.
    """
    metadata = {
        "help": help,
        "choices": choices,
        "flag": flag,
        "aliases": tuple(aliases),
        "least": least,
        "most": most,
        "resumable": resumable,
        "escapes": escapes,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def help_of(record: Any, name: str) -> str:
    """The help text of a setting.

    Args:
        record: A dataclass of settings (the class or an instance).
        name: The field's name.

    Returns:
        The ``help`` its :func:`setting` was given.
    """
    return next(f.metadata["help"] for f in fields(record) if f.name == name)


def check_declared(record: Any) -> None:
    """Check the bounds that ``record``'s fields declare: its choices, then at least 1, then
    0 or more, then the most (:func:`setting`'s ``choices``, ``least`` and ``most``).

    Args:
        record: A dataclass instance whose fields were made by :func:`setting`.

    Raises:
        OptionError: for the first field whose value is out of them.
    """
    for f in fields(record):
        value, choices = getattr(record, f.name), f.metadata.get("choices")
        if choices and value not in choices:
            raise OptionError(f.name, f"must be one of {', '.join(choices)}", value)
    for least, words in ((1, "at least 1"), (0, "0 or more")):
        for f in fields(record):
            value = getattr(record, f.name)
            if f.metadata.get("least") == least and not (is_int(value) and value >= least):
                raise OptionError(f.name, f"must be {words}", value)
    for f in fields(record):
        value, most = getattr(record, f.name), f.metadata.get("most")
        if most is not None and is_int(value) and value > most:
            raise OptionError(f.name, f"must be at most {most:,}", value)


def is_int(value: Any) -> bool:
    """Whether ``value`` is a whole number (an int, never a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


class OptionError(CharLMError):
    """A value a setting does not take.

    ``str(e)`` names the field as it is called in Python (the keyword of ``charlm.train``,
    the key of a config); a face calls :meth:`worded` with its own name for it.

    Args:
        field: The setting's field name.
        problem: A phrase that follows the field's name: "must be 0 (greedy) or more".
        value: The value given (MISSING: none to show).
        hint: The way out, put after a semicolon.
    """

    def __init__(self, field: str, problem: str, value: Any = MISSING, hint: str = "") -> None:
        self.field, self.problem, self.value, self.hint = field, problem, value, hint
        super().__init__(self.worded(field))

    def worded(self, name: str) -> str:
        """The message, one line, with the field called ``name``.

        Args:
            name: What this face calls the field: ``--top-k``, ``top_k``, ``:top_k``.

        Returns:
            ``"{name} {problem}, not {value}; {hint}"`` (the value and hint where given).
        """
        text = f"{name} {self.problem}"
        if self.value is not MISSING:
            text += f", not {shown(self.value)}"
        return f"{text}; {self.hint}" if self.hint else text

    def renamed(self, field: str) -> OptionError:
        """The same error about another field: a record that holds another's options (a
        Config's ``sample_temperature`` is the ``temperature`` of its samples) names its own.

        Args:
            field: The field name to put in this one's place.

        Returns:
            A new OptionError with the same problem, value and hint.
        """
        return OptionError(field, self.problem, self.value, self.hint)


def shown(value: Any) -> str:
    """A bad value as a message shows it: a number as typed (``-1``, not ``-1.0``: a flag's
    value may have been read as a float), anything else quoted, so that a newline or an empty
    string cannot break the one line, and cut short past 60 characters.

    Args:
        value: Any value.

    Returns:
        At most 60 characters.

    >>> shown(-1.0), shown(-1.5), shown(2**63), shown("a\\nb"), shown(""), shown(float("nan"))
    ('-1', '-1.5', '9223372036854775808', "'a\\\\nb'", "''", 'nan')
    """
    if isinstance(value, float):
        text = format(value, ".15g")
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
