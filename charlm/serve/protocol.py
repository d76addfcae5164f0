"""The OpenAI completions protocol, as charlm serves it: a request body checked against the
server's limits into a :class:`Completion`, and the checks the chat API shares
(:mod:`.chat`); the replies' objects are :mod:`.replies`'. No HTTP and no TensorFlow here:
what a request may ask is decided in this module alone.

    >>> c = parse_completion({"prompt": "ROMEO:", "max_tokens": 50, "seed": 5, "n": 2},
    ...                      Limits(), ["tiny"])
    >>> c.model, c.prompts, c.options.length, c.options.seed, c.rows
    ('tiny', ['ROMEO:'], 50, 5, 2)
    >>> parse_completion({"prompt": "a", "temperature": -1}, Limits(), ["tiny"])
    Traceback (most recent call last):
    ...
    charlm.serve.protocol.RequestError: temperature must be 0 (greedy) or more, not -1
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CharLMError
from ..options.limits import Limits
from ..options.sampling import MAX_LOGPROBS, SamplingOptions, check_prefixes
from ..options.setting import OptionError, is_int, shown

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for the completions API
MAX_STOP = 16  # stop strings per request
# the request's parameters that set a sampling option, and the option each sets: what a
# request is read by, and what an option's error is named by
SAMPLING_PARAMS = {
    "max_tokens": "length",
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "seed": "seed",
    "stop": "stop",
}
PARAM_OF = {option: param for param, option in SAMPLING_PARAMS.items()}
NUMBERS = (
    "temperature",
    "top_p",
    "min_p",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
)
# OpenAI parameters charlm does not implement: accepted only at their "off" value
UNSUPPORTED: dict[str, tuple[object, ...]] = {
    "suffix": (None, ""),
    "best_of": (None, 1),
    "logit_bias": (None, {}),
}


class RequestError(CharLMError):
    """A request the server refuses: one line, its HTTP status and the parameter at fault."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        status: int = 400,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.param, self.status, self.code, self.kind = param, status, code, kind

    def to_json(self) -> dict:
        return {
            "error": {
                "message": str(self),
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass(frozen=True)
class Completion:
    """A checked request: ``n`` samples of each prompt, in that order, drawn with ``options``
    (their seed set: the reply says it). ``logprobs``: how many alternatives each character's
    log-probabilities list (None: none asked); ``echo``: the prompt comes back first, scored;
    ``chat``: the reply is a chat completion (:mod:`.chat` made the prompt)."""

    model: str
    prompts: list[str]
    options: SamplingOptions
    n: int
    stream: bool
    include_usage: bool
    logprobs: int | None = None
    echo: bool = False
    chat: bool = False

    @property
    def rows(self) -> int:
        return len(self.prompts) * self.n


def parse_completion(body, limits: Limits, models: list[str]) -> Completion:
    """The request ``body`` (decoded JSON) checked against ``limits`` and the ``models``
    served (the first is the default): a :class:`Completion`, or a :class:`RequestError`
    naming the first thing wrong."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = check_model(body.get("model"), models)
    refuse_unsupported(body, UNSUPPORTED)
    prompts = _prompts(body.get("prompt"), limits)
    n = check_rows(prompts, body, limits)
    stream, usage = stream_of(body)
    logprobs = body.get("logprobs")
    if logprobs is not None and not (is_int(logprobs) and 0 <= logprobs <= MAX_LOGPROBS):
        raise RequestError(
            f"logprobs must be a whole number from 0 to {MAX_LOGPROBS}, not {shown(logprobs)}",
            "logprobs",
        )
    echo = _flag(body, "echo")
    options = options_of(body, limits)
    return Completion(model, prompts, options, n, stream, usage, logprobs, echo)


def check_rows(prompts: list, body: dict, limits: Limits) -> int:
    """``n``, checked: at most ``--max-n``, and the rows (prompts x n) at most
    ``--max-streams``."""
    n = body.get("n", 1)
    if n is None:
        n = 1
    if not (is_int(n) and 1 <= n <= limits.max_n):
        raise RequestError(
            f"n must be a whole number from 1 to {limits.max_n} "
            f"(this server's --max-n), not {shown(n)}",
            "n",
        )
    if len(prompts) * n > limits.max_streams:
        raise RequestError(
            f"{len(prompts)} prompts x n={n} is {len(prompts) * n} samples; "
            f"this server generates at most {limits.max_streams} at once "
            "(--max-streams)",
            "prompt",
        )
    return n


def _flag(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(f"{name} must be true or false, not {shown(value)}", name)
    return value


def refuse_unsupported(body: dict, unsupported: dict) -> None:
    """Refuse a parameter charlm does not implement, unless at its "off" value."""
    for name, off in unsupported.items():
        if name in body and not any(body[name] == o and type(body[name]) is type(o) for o in off):
            raise RequestError(f"{name} is not supported by charlm serve; leave it out", name)


def check_model(model, models: list[str]) -> str:
    if model is None:
        return models[0]
    if model not in models:
        raise RequestError(
            f"the model {shown(model)} is not served here; ask for one of: "
            f"{', '.join(models)} (GET /v1/models)",
            "model",
            404,
            "model_not_found",
        )
    return model


def _prompts(prompt, limits: Limits) -> list[str]:
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not (isinstance(prompts, list) and prompts and all(isinstance(p, str) for p in prompts)):
        raise RequestError(
            "prompt must be text or a non-empty list of texts (token ids are "
            f"not taken: charlm reads characters), not {shown(prompt)}",
            "prompt",
        )
    return check_prompts(prompts, limits, "prompt")


def check_prompts(prompts: list[str], limits: Limits, param: str) -> list[str]:
    """Each prompt not empty and within ``--max-prompt-chars``; an error names ``param``."""
    try:
        check_prefixes(prompts)
    except OptionError as e:
        raise RequestError(e.worded(param), param) from None
    for p in prompts:
        if len(p) > limits.max_prompt_chars:
            raise RequestError(
                f"the prompt is {len(p):,} characters; this server takes at most "
                f"{limits.max_prompt_chars:,} (--max-prompt-chars)",
                param,
            )
    return prompts


def options_of(body: dict, limits: Limits, extra_stop: tuple[str, ...] = ()) -> SamplingOptions:
    """The sampling options, checked by SamplingOptions itself, their seed set; an error
    names the request's parameter (``max_tokens`` for the length). ``extra_stop``: stop
    strings of the server's own (a chat's role lines), after the request's."""
    values = {option: body.get(param) for param, option in SAMPLING_PARAMS.items()}
    for name in NUMBERS:  # a number of any kind; check() says the range
        v = values[name]
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)):
            raise RequestError(f"{name} must be a number, not {shown(v)}", name)
    stop = values["stop"]
    stop = () if stop is None else (stop,) if isinstance(stop, str) else stop
    if not isinstance(stop, (list, tuple)) or len(stop) > MAX_STOP:
        raise RequestError(
            f"stop must be text or a list of at most {MAX_STOP} texts, not {shown(values['stop'])}",
            "stop",
        )
    values["stop"] = tuple(stop) + extra_stop
    if values["length"] is None:
        values["length"] = DEFAULT_MAX_TOKENS
    try:
        options = SamplingOptions.of(**values)
    except OptionError as e:
        param = PARAM_OF.get(e.field, e.field)
        raise RequestError(e.worded(param), param) from None
    if options.length > limits.max_tokens:
        raise RequestError(
            f"max_tokens must be at most {limits.max_tokens:,} on this server "
            f"(--max-tokens), not {options.length:,}",
            "max_tokens",
        )
    return options.seeded()


def stream_of(body: dict) -> tuple[bool, bool]:
    stream, extra = _flag(body, "stream"), body.get("stream_options")
    if extra is not None and not (
        isinstance(extra, dict) and isinstance(extra.get("include_usage", False), bool)
    ):
        raise RequestError(
            'stream_options must be an object like {"include_usage": true}', "stream_options"
        )
    if extra is not None and not stream:
        raise RequestError(
            "stream_options is only for streamed requests: set stream to true, or leave "
            "stream_options out",
            "stream_options",
        )
    return stream, bool(extra and extra.get("include_usage"))
