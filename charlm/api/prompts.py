"""Prompts read from files (``charlm sample --prefix-file``), before TensorFlow loads: each as
the run read its corpus (its encoding, a byte-order mark dropped, CRLF as LF).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import CharLMError
from ..options.sampling import MAX_PROMPT_CHARS, check_prefixes
from ..options.setting import OptionError
from ..runs.rundir import RunDir
from ..text.corpus import DecodeError, EmptyCorpus, read_corpus
from ..text.texts import read_options


def read_prompts(paths: list[str], run_path: str, warn: Callable[[str], None]) -> list[str]:
    """The prompt in each of ``paths`` (``-``: standard input), read as the run at
    ``run_path`` read its corpus.

    Args:
        paths: Prompt files, or ``-`` for standard input.
        run_path: The run whose reading options (its encoding above all) apply.
        warn: Where a note about the text goes (a skipped byte-order mark, say).

    Returns:
        One prompt per path, in order.

    Raises:
        OptionError: about ``prefix_file``: a folder, or a file that is missing, unreadable,
            empty or not in the run's encoding.
    """
    if not paths:
        return []
    options = read_options(RunDir(run_path).read_config())
    for path in paths:
        if path != "-":
            _check_size(Path(path))
    prompts = [_read_prompt(path, options, warn) for path in paths]
    try:
        check_prefixes(prompts)
    except OptionError as e:
        raise e.renamed("prefix_file") from None
    return prompts


def _check_size(path: Path) -> None:
    """A prompt file that is no folder, and no larger than the longest prompt can be (checked
    before it is read: a 50 MB file is refused at once)."""
    if path.is_dir():
        raise OptionError(
            "prefix_file", f"{path} is a folder", hint="name a text file, or - for stdin"
        )
    size = path.stat().st_size if path.is_file() else 0
    if size > 4 * MAX_PROMPT_CHARS:  # UTF-8 takes at most 4 bytes a character
        raise OptionError(
            "prefix_file",
            f"{path} holds {size:,} bytes, more than a prompt of at most "
            f"{MAX_PROMPT_CHARS:,} characters",
            hint="a character model reads the end of a text: keep its last part",
        )


def _read_prompt(path: str, options: dict, warn: Callable[[str], None]) -> str:
    """The text of prompt file ``path``; what the reader refuses, told about the prompt: the
    way out of a text in another encoding is to save it in the run's."""
    try:
        return read_corpus([path], warn=warn, **options)
    except EmptyCorpus:
        shown = "- (standard input)" if path == "-" else path
        raise OptionError(
            "prefix_file", f"{shown} is empty", hint="a prompt needs at least one character"
        ) from None
    except DecodeError as e:
        way_out = f"save it in {options['encoding']}, the encoding the run read its corpus in"
        raise OptionError("prefix_file", e.what, hint=way_out) from None
    except CharLMError as e:
        raise OptionError("prefix_file", str(e)) from None
