"""The JSON objects of a reply, as OpenAI's API shapes them (and vLLM and llama.cpp serve
them): a completion or a chat completion, whole or as the events of a stream, with each
character's log-probabilities when asked. A character is a token here: ``usage`` counts
characters. No HTTP and no TensorFlow: :class:`Reply` is fed what the batch gave a request
and gives back the objects to send.

    >>> r = Reply(Completion("tiny", ["ab"], SamplingOptions(seed=1), 1, False, False))
    >>> r.add(["cd"], ["length"], None)[0]["choices"][0]["text"]
    'cd'
    >>> whole = r.whole()
    >>> whole["choices"][0]["finish_reason"], whole["usage"]["total_tokens"], whole["seed"]
    ('length', 4, 1)
"""

from __future__ import annotations

import time
import uuid

from ..options.sampling import SamplingOptions  # noqa: F401  (the doctest's)
from .protocol import Completion


class Reply:
    """One request's reply as it grows: :meth:`add` takes each turn's pieces (one per row)
    and gives the stream's events (one choice each, as vLLM sends them); :meth:`whole` is
    the reply of a request that does not stream. ``warning``: a line the client should see
    (characters of its prompt the model never saw), in the first event and the whole reply."""

    def __init__(self, request: Completion, warning: str | None = None):
        self.request, self.warning = request, warning
        self.id = ("chatcmpl-" if request.chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        rows = request.rows
        self.prompts = [p for p in request.prompts for _ in range(request.n)]
        self.texts = [""] * rows
        self.reasons: list[str | None] = [None] * rows
        self.scores: list[list] = [[] for _ in range(rows)]  # (char, logprob, top) per char
        self.sent = [0] * rows  # characters of each row's text (echo included) sent so far
        self.first = True

    # -- what the batch gives ---------------------------------------------------------------

    def echo(self, scored_prompts: list[list]) -> list[dict]:
        """The prompts, each character after the first scored (``echo``): each row's text
        starts with its prompt. The events that carry them."""
        per_prompt = {p: s for p, s in zip(self.request.prompts, scored_prompts, strict=True)}
        events = []
        for i, prompt in enumerate(self.prompts):
            self.scores[i] = [(prompt[0], None, None)] + [
                (s.char, s.logprob, s.top) for s in per_prompt[prompt]
            ]
            events.append(self._event(i, prompt, None, self.scores[i]))
        return events

    def add(self, pieces: list[str], reasons: list[str] | None, scored) -> list[dict]:
        """Each row's new text (its finish reason with the last), and when scored each
        character's :class:`~charlm.use.rows.Scored`: the events to stream."""
        events = []
        for i, piece in enumerate(pieces):
            new = [(s.char, s.logprob, s.top) for s in scored[i]] if scored else []
            self.scores[i] += new
            self.texts[i] += piece
            reason = reasons[i] if reasons else None
            self.reasons[i] = reason or self.reasons[i]
            if piece or reason:
                events.append(self._event(i, piece, reason, new))
        return events

    # -- the objects ------------------------------------------------------------------------

    def _event(self, i: int, piece: str, reason: str | None, scores: list) -> dict:
        offset = self.sent[i]
        self.sent[i] += len(piece)
        logprobs = self._logprobs(scores, offset) if self.request.logprobs is not None else None
        if self.request.chat:
            delta = {"content": piece} if piece else {}
            c = {"index": i, "delta": delta, "logprobs": logprobs, "finish_reason": reason}
        else:
            c = {"text": piece, "index": i, "logprobs": logprobs, "finish_reason": reason}
        usage = {"usage": None} if self.request.include_usage else {}
        return self._object([c], chunk=True, **usage)

    def roles(self) -> list[dict]:
        """A chat stream's first events: each row's ``delta`` with the role, no content yet."""
        return [
            self._object(
                [
                    {
                        "index": i,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                chunk=True,
                **({"usage": None} if self.request.include_usage else {}),
            )
            for i in range(self.request.rows)
        ]

    def whole(self) -> dict:
        """The reply of a request that does not stream: every row's text and reason."""
        choices = []
        for i, text in enumerate(self.texts):
            shown = self.prompts[i] + text if self.request.echo else text
            logprobs = (
                self._logprobs(self.scores[i], 0) if self.request.logprobs is not None else None
            )
            if self.request.chat:
                message = {"role": "assistant", "content": shown}
                choices.append(
                    {
                        "index": i,
                        "message": message,
                        "logprobs": logprobs,
                        "finish_reason": self.reasons[i],
                    }
                )
            else:
                choices.append(
                    {
                        "text": shown,
                        "index": i,
                        "logprobs": logprobs,
                        "finish_reason": self.reasons[i],
                    }
                )
        return self._object(choices, chunk=False, usage=self.usage())

    def usage_event(self) -> dict:
        """The last event of a stream with ``include_usage``: no choices, the usage."""
        return self._object([], chunk=True, usage=self.usage())

    def usage(self) -> dict:
        """Characters counted as tokens: each prompt once, every sample's text."""
        prompt = sum(len(p) for p in self.request.prompts)
        completion = sum(len(t) for t in self.texts)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _object(self, choices: list[dict], chunk: bool, **extra) -> dict:
        kind = ("chat.completion" if self.request.chat else "text_completion") + (
            ".chunk" if chunk and self.request.chat else ""
        )
        out = {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.request.model,
            "choices": choices,
            "system_fingerprint": None,
            "seed": self.request.options.seed,  # charlm's: the seed drawn with, to draw again
            **extra,
        }
        if self.warning and (self.first or not chunk):
            out["warning"] = self.warning
        self.first = self.first and not chunk
        return out

    def _logprobs(self, scores: list, offset: int) -> dict:
        """OpenAI's ``logprobs`` of the characters ``scores``: the completions API's arrays,
        or the chat API's ``content`` list; the first ``request.logprobs`` alternatives."""
        k = self.request.logprobs or 0
        if self.request.chat:
            return {
                "content": [
                    {
                        "token": c,
                        "logprob": lp,
                        "bytes": list(c.encode()),
                        "top_logprobs": [
                            {"token": a, "logprob": alp, "bytes": list(a.encode())}
                            for a, alp in (top or ())[:k]
                        ],
                    }
                    for c, lp, top in scores
                ]
            }
        return {
            "tokens": [c for c, _, _ in scores],
            "token_logprobs": [lp for _, lp, _ in scores],
            "top_logprobs": [None if top is None else dict(top[:k]) for _, _, top in scores],
            "text_offset": [offset + i for i in range(len(scores))],
        }
