"""OpenAI's chat completions for a character model: the messages become one prompt by a
:class:`ChatTemplate`, and the reply is the text the model writes after it, up to the next
role line. A character model has no chat template of its own; the default writes each
message as a ``role: content`` line and ends with ``assistant: ``, the way a transcript
reads, and a run folder may hold a ``chat.toml`` that says otherwise::

    message = "{role}: {content}\\n"   # each message; {role} and {content} are filled in
    reply = "assistant: "             # what the prompt ends with: the model writes on from here
    stop = ["\\nuser:", "\\nsystem:"]   # the reply ends before any of these

    >>> t = ChatTemplate()
    >>> t.prompt([{"role": "user", "content": "Hi"}])
    'user: Hi\\nassistant: '
    >>> c = parse_chat({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5},
    ...                Limits(), ["tiny"], {"tiny": t})
    >>> c.chat, c.prompts, c.options.stop[:2]
    (True, ['user: Hi\\nassistant: '], ('\\nuser:', '\\nsystem:'))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CharLMError
from ..options.limits import Limits
from ..options.sampling import MAX_LOGPROBS
from ..options.setting import is_int, shown
from ..options.toml import parse_toml, read_text
from .protocol import (
    Completion,
    RequestError,
    check_model,
    check_prompts,
    check_rows,
    options_of,
    refuse_unsupported,
    stream_of,
)

ROLES = ("system", "developer", "user", "assistant", "tool")
TEMPLATE_FILE = "chat.toml"  # in a run folder: how its chat prompts are written
# chat parameters charlm does not implement: accepted only at their "off" value
UNSUPPORTED = {
    "tools": (None, []),
    "functions": (None, []),
    "tool_choice": (None, "none"),
    "response_format": (None, {"type": "text"}),
    "logit_bias": (None, {}),
    "audio": (None,),
}


@dataclass(frozen=True)
class ChatTemplate:
    """How a list of messages becomes a prompt, and where the reply ends (see the module)."""

    message: str = "{role}: {content}\n"
    reply: str = "assistant: "
    stop: tuple[str, ...] = ("\nuser:", "\nsystem:", "\nassistant:", "\ndeveloper:", "\ntool:")

    def prompt(self, messages: list[dict]) -> str:
        parts = [
            self.message.replace("{role}", m["role"]).replace("{content}", m["content"])
            for m in messages
        ]
        return "".join(parts) + self.reply

    @classmethod
    def of_run(cls, folder: Path) -> ChatTemplate:
        """The run folder's ``chat.toml``, or the default where it has none; one line that
        names the file when it cannot be read."""
        path = Path(folder) / TEMPLATE_FILE
        if not path.is_file():
            return cls()
        try:
            data = parse_toml(read_text(path), str(path))  # a syntax error: its line and column
            template = cls(**{k: tuple(v) if k == "stop" else v for k, v in data.items()})  # type: ignore[arg-type]
        except TypeError as e:  # a key it does not take
            raise CharLMError(
                f"{path}: not a chat template ({str(e).splitlines()[0]}); it takes the keys "
                "message, reply and stop"
            ) from None
        if not all(isinstance(v, str) for v in (template.message, template.reply, *template.stop)):
            raise CharLMError(f"{path}: message, reply and each stop must be text")
        return template


def parse_chat(body, limits: Limits, models: list[str], templates: dict) -> Completion:
    """A chat completions request ``body`` checked into a :class:`Completion` whose one
    prompt is the messages written by the model's template (``templates[model]``)."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = check_model(body.get("model"), models)
    refuse_unsupported(body, UNSUPPORTED)
    template = templates[model]
    prompts = check_prompts([template.prompt(_messages(body.get("messages")))], limits, "messages")
    n = check_rows(prompts, body, limits)
    stream, include_usage = stream_of(body)
    body = _lengths(body)
    options = options_of(body, limits, template.stop)
    return Completion(model, prompts, options, n, stream, include_usage, _logprobs(body), chat=True)


def _messages(messages) -> list[dict]:
    """Each message as ``{"role", "content"}`` with its content as text (OpenAI's list of
    parts: their text joined)."""
    if not (isinstance(messages, list) and messages):
        raise RequestError(
            f"messages must be a non-empty list of messages, not {shown(messages)}", "messages"
        )
    out = []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ROLES:
            raise RequestError(
                f"messages[{i}].role must be one of {', '.join(ROLES)}, not {shown(role)}",
                "messages",
            )
        out.append({"role": role, "content": _content(m.get("content"), i)})
    return out


def _content(content, i: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    raise RequestError(
        f"messages[{i}].content must be text or a list of text parts (a character model reads "
        f"no images or audio), not {shown(content)}",
        "messages",
    )


def _lengths(body: dict) -> dict:
    """``max_completion_tokens`` (the chat API's newer name) read as ``max_tokens``."""
    newer = body.get("max_completion_tokens")
    if newer is None:
        return body
    if body.get("max_tokens") is not None and body["max_tokens"] != newer:
        raise RequestError(
            "give max_tokens or max_completion_tokens, not both", "max_completion_tokens"
        )
    return {**body, "max_tokens": newer}


def _logprobs(body: dict) -> int | None:
    """The chat API's ``logprobs`` (true or false) and ``top_logprobs`` (0 to 5) as the
    alternatives per character (None: none asked)."""
    wanted, top = body.get("logprobs"), body.get("top_logprobs")
    if wanted not in (None, True, False):
        raise RequestError(f"logprobs must be true or false, not {shown(wanted)}", "logprobs")
    if top is not None and not (is_int(top) and 0 <= top <= MAX_LOGPROBS):
        raise RequestError(
            f"top_logprobs must be a whole number from 0 to {MAX_LOGPROBS}, not {shown(top)}",
            "top_logprobs",
        )
    if top is not None and not wanted:
        raise RequestError("top_logprobs needs logprobs set to true", "top_logprobs")
    return (top or 0) if wanted else None
