"""What one ``charlm serve`` takes at most: each field is a flag of ``charlm serve`` (its help
here), declared with the same :func:`~charlm.options.setting.setting` as every other option
and checked by the same bounds.

    >>> Limits(max_n=4).max_n
    4
    >>> Limits(max_streams=0)
    Traceback (most recent call last):
    ...
    charlm.options.setting.OptionError: max_streams must be at least 1, not 0
"""

from __future__ import annotations

from dataclasses import dataclass

from .setting import check_declared, setting

# while streams are live, a prompt's warm-up goes on between their turns in calls of this many
# characters a row (``charlm serve --prefill-chunk``; a turn's): a burst of 16 prompts of 4,096
# characters then stretched a live stream's longest gap between events to ~6x its median, not
# ~200x as when each was fed whole (benchmarks/bench_serve.py)
PREFILL_CHUNK = 16


@dataclass(frozen=True)
class Limits:
    """What one server takes at most. A request past one is refused with one line, never
    queued without bound. Each field is a keyword (its help below).

    Raises:
        OptionError: a limit that is not a whole number of at least 1.
    """

    max_streams: int = setting(
        64,
        "Samples generated at once, all requests together (n counts each); past it a "
        "request is refused with 503 and Retry-After.",
        least=1,
    )
    max_n: int = setting(16, "The most samples one request may ask for (n).", least=1)
    max_tokens: int = setting(
        4096, "The most characters one request may ask for (max_tokens).", least=1
    )
    max_prompt_chars: int = setting(4096, "The longest prompt, in characters.", least=1)
    max_body_bytes: int = setting(1 << 20, "The largest request body, in bytes.", least=1)

    def __post_init__(self) -> None:
        check_declared(self)
