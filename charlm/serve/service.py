"""What the routes of ``charlm serve`` share (:class:`Service`): each model served (its
batcher, its description and chat template, read once at start, so that a run folder changed
or deleted later changes nothing served), the limits, the metrics and the rows in flight."""

from __future__ import annotations

from ..api.catalog import summarise
from ..api.serving import Batcher, Job
from ..errors import CharLMError
from ..options.limits import Limits
from .chat import ChatTemplate
from .metrics import Metrics
from .protocol import Completion, RequestError

UNKNOWN_SHOWN = 10  # characters a warning about a prompt's unknown characters names at most


class Service:
    """See the module. ``chunk``: characters per turn of each batch; ``prefill_chunk``:
    characters of a prompt's warm-up per turn (None: the batcher's default, 0: whole)."""

    RETRY_AFTER = "1"  # seconds a refused client waits before it asks again

    def __init__(self, runs, limits: Limits, chunk: int = 16, prefill_chunk: int | None = None):
        names = [run.path.name for run in runs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise CharLMError(
                f"two runs named {twice[0]}: a request's model is its run's "
                "folder name, so serve runs with different names"
            )
        self.runs = dict(zip(names, runs, strict=True))
        more = {} if prefill_chunk is None else {"prefill_chunk": prefill_chunk}
        self.batchers = {n: Batcher(run.generator, chunk, **more) for n, run in self.runs.items()}
        self.descriptions = {n: _describe(n, run) for n, run in self.runs.items()}
        self.templates = {n: ChatTemplate.of_run(run.path) for n, run in self.runs.items()}
        self.limits, self.in_flight, self.stopping = limits, 0, False
        self.metrics = Metrics()

    def compile(self, sizes) -> float:
        return sum(b.compile(sizes) for b in self.batchers.values())

    def start(self) -> None:
        for b in self.batchers.values():
            b.start()

    def stop(self) -> None:
        self.stopping = True
        for b in self.batchers.values():
            b.stop()

    def unknown_warning(self, request: Completion) -> str | None:
        """A line naming the characters of the prompts that the model never saw (each read
        as ``<unk>``), or None."""
        vocab = self.runs[request.model].vocab
        unknown = sorted({c for p in request.prompts for c in vocab.unknown_chars(p)})
        if not unknown:
            return None
        shown = ", ".join(repr(c) for c in unknown[:UNKNOWN_SHOWN])
        more = f" and {len(unknown) - UNKNOWN_SHOWN} more" if len(unknown) > UNKNOWN_SHOWN else ""
        return f"the prompt has characters the model never saw, each read as <unk>: {shown}{more}"

    def admit(self, request: Completion, deliver) -> Job:
        """A job for ``request``'s rows, or 503 when they would pass ``--max-streams``."""
        if self.stopping:
            raise RequestError(
                "the server is shutting down", None, 503, "shutting_down", "server_error"
            )
        if self.in_flight + request.rows > self.limits.max_streams:
            raise RequestError(
                f"the server is busy: {self.in_flight} of its {self.limits.max_streams} streams "
                f"are in use and this request needs {request.rows}; retry after "
                f"{self.RETRY_AFTER} s",
                None,
                503,
                "overloaded",
                "server_error",
            )
        self.in_flight += request.rows
        job = Job(
            request.prompts,
            request.options,
            request.n,
            deliver,
            scored=request.logprobs is not None,
            echo=request.echo,
        )
        self.batchers[request.model].submit(job)
        return job

    def release(self, job: Job) -> None:
        """The job's rows leave the batch at the worker's next turn (called once per job)."""
        if not job.cancelled:
            job.cancel()
            self.in_flight -= job.size


def _describe(name: str, run) -> dict:
    """The model's entry in ``GET /v1/models``: OpenAI's fields and charlm's own (not its
    path: a client learns nothing of the server's files)."""
    row = summarise(run.path)
    return {
        "id": name,
        "object": "model",
        "created": int(run.path.stat().st_mtime),
        "owned_by": "charlm",
        "model": row["size"],
        "vocab_size": len(run.vocab),
        "parameters": row["parameters"],
        "best_val_loss": row["best_val_loss"],
    }
