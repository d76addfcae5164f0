"""One batched generation shared by every request to one model.

A :class:`Batcher` owns a :class:`~charlm.use.generate.Generator` and a worker thread. Its
batch holds the rows of every live request; each turn of the worker goes on with the warm-up
of the requests that arrived (their prefixes fed together, ``prefill_chunk`` characters a turn
while streams are live, so that a burst of long prompts does not stall them), admits those
whose warm-up is done, runs one call of the compiled loop for all rows together (``chunk``
characters each; :data:`FIRST_CHUNK` right after rows joined), hands each request its rows'
new text, and drops the requests that are done or whose client went away. A request thus joins at the next
chunk boundary and leaves at the one after it ends; its rows keep their own options, seed,
index and position (:class:`~charlm.use.loop.Batch`), so a seeded request gets the text
``charlm sample`` prints whatever shares the batch with it.

XLA compiles the loop once per batch size: the batch is padded to the next power of two
(:func:`bucket`), and :meth:`Batcher.compile` compiles the sizes the server expects ahead.

    batcher = Batcher(run.generator, chunk=16)
    job = Job(["ROMEO:"], SamplingOptions(length=50, seed=5), 1, deliver=print)
    batcher.submit(job)     # deliver gets ("text", pieces, None, None) ... then with reasons
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..options.limits import PREFILL_CHUNK
from ..options.sampling import SamplingOptions
from .generate import Generator
from .loop import ROW_DTYPES, Batch
from .rows import Rows, scored_chars

FIRST_CHUNK = 4  # characters in the turn after rows join: their first text goes out sooner
GATHER_QUIET = 0.002  # an idle worker waits this long after a request for the next of a burst,
GATHER_MOST = 0.010  # at most this long in all: a burst is warmed up as one batch


def bucket(rows: int) -> int:
    """The batch size ``rows`` is padded to: the next power of two.

    >>> [bucket(n) for n in (1, 2, 3, 5, 16, 17)]
    [1, 2, 4, 8, 16, 32]
    """
    return 1 << max(0, rows - 1).bit_length()


class Job:
    """One request's rows, between the HTTP handler and the worker. ``deliver(event)`` is
    called from the worker thread with ``("text", pieces, finish_reasons or None, scores)``
    after each chunk (one piece per row; the reasons come with the last; ``scores``: with
    ``scored``, each row's :class:`~charlm.use.rows.Scored` per character of its piece, else
    None), ``("prompt", scores, None, None)`` first when ``echo`` (each prompt's characters
    after the first, scored) or ``("error", message, code, None)`` (``code``:
    ``"shutting_down"`` or ``"generation_failed"``); :meth:`cancel` (any thread) makes the
    worker drop the rows at its next turn. ``queued``: once admitted, the seconds it waited
    from :meth:`Batcher.submit` to joining the batch (its warm-up included)."""

    def __init__(
        self,
        prompts: list[str],
        options: SamplingOptions,
        n: int,
        deliver,
        scored: bool = False,
        echo: bool = False,
    ):
        self.prompts, self.options, self.n, self.deliver = prompts, options, n, deliver
        self.scored, self.echo = scored, echo
        self.rows: Rows | None = None  # once admitted
        self.cancelled = False
        self.submitted, self.queued = time.perf_counter(), 0.0

    @property
    def admitted(self) -> Rows:
        """The rows of a job the worker has admitted (it turns no other)."""
        assert self.rows is not None, "a job's rows are turned only once it is admitted"
        return self.rows

    @property
    def size(self) -> int:
        return len(self.prompts) * self.n

    def cancel(self) -> None:
        self.cancelled = True

    def fail(self, message: str, code: str = "generation_failed") -> None:
        self.deliver(("error", message, code, None))


class Batcher:
    """The worker that runs every live request of one model in one batch (see the module)."""

    def __init__(self, generator: Generator, chunk: int = 16, prefill_chunk: int = PREFILL_CHUNK):
        self.gen, self.chunk = generator, chunk
        self.prefill_chunk = prefill_chunk  # 0: each prompt fed whole in one call
        self.pending: list[Job] = []
        self.warming: list[Warming] = []
        self.live: list[Job] = []
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._work, name="charlm-batcher", daemon=True)

    def start(self) -> Batcher:
        self.thread.start()
        return self

    def compile(self, sizes) -> float:
        """Compile the loop for batches of each of ``sizes`` rows ahead (padding rows, one
        character each), and trace the warm-up; the seconds it took."""
        started = time.perf_counter()
        self.gen.feed(np.ones((1, 1), np.int32))
        vocab, state = len(self.gen.vocab), self.gen.model.initial_state(1)
        for size in sorted({bucket(s) for s in sizes}):
            batch = Batch(
                np.zeros((0, vocab), np.float32),
                [np.zeros((0, *s.shape[1:]), np.float32) for s in state],
                {k: np.zeros(0, dt) for k, dt in ROW_DTYPES.items()},
            )
            batch.run(self.gen.loop, 1, size)
        return time.perf_counter() - started

    def submit(self, job: Job) -> None:
        with self.cond:
            if self.stopping:
                job.fail("the server is shutting down", "shutting_down")
                return
            self.pending.append(job)
            self.cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """End the worker: every request still waiting or running gets an error event."""
        with self.cond:
            self.stopping = True
            self.cond.notify()
        if self.thread.is_alive():
            self.thread.join(timeout)

    @property
    def rows(self) -> int:
        """Rows in the batch now (padding left out)."""
        return sum(j.size for j in self.live)

    def _work(self) -> None:
        while True:
            with self.cond:
                while not (self.pending or self.live or self.warming or self.stopping):
                    self.cond.wait()
                if self.stopping:
                    break
                if not (self.live or self.warming):
                    self._gather()
                arrived, self.pending = self.pending, []
            if arrived:
                self._start_warming(arrived)
            joined = self._warm_step()
            self.live = [j for j in self.live if not j.cancelled]
            if self.live:
                try:
                    self._turn(min(self.chunk, FIRST_CHUNK) if joined else self.chunk)
                except Exception as e:  # never leave the clients waiting on a dead worker
                    _failed(self.live, e)
                    self.live = []
        for job in self.live + self.pending + [j for w in self.warming for j in w.jobs]:
            job.fail("the server is shutting down", "shutting_down")
        self.live, self.pending, self.warming = [], [], []

    def _gather(self) -> None:
        """While the batch is empty, wait for the rest of a burst (called with the lock held):
        until no request came for :data:`GATHER_QUIET` s, or :data:`GATHER_MOST` s in all. The
        first request of 16 sent together otherwise starts alone, and the other 15 wait for its
        first turn before they join (their first character ~4x as late as an idle request's on
        an LSTM 1x384, benchmarks/bench_serve.py); a lone request pays 2 ms."""
        deadline, seen = time.perf_counter() + GATHER_MOST, len(self.pending)
        while not self.stopping:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self.cond.wait(min(GATHER_QUIET, left))
            if len(self.pending) == seen:
                return
            seen = len(self.pending)

    def _start_warming(self, arrived: list[Job]) -> None:
        """Start the warm-up of the jobs that arrived since the last turn, their prefixes fed
        together (:meth:`~charlm.use.generate.Generator.feeding`): a burst of 16 requests costs
        about one warm-up, not 16 one after another (each job's alone put the 16th's first
        character ~12x as late as an idle request's, benchmarks/bench_serve.py). Identical
        prompts are fed once; an echoed prompt is scored by its own warm-up call."""
        jobs = [j for j in arrived if not j.cancelled]
        warmed: dict = {}
        try:
            for job in (j for j in jobs if j.echo):
                encoded = self.gen.encode_prefixes(job.prompts)
                scored = [
                    scored_chars(self.gen.vocab, self.gen.score_prefix(ids, warmed))
                    for ids in encoded
                ]
                job.deliver(("prompt", scored, None, None))
            encoded = [ids for j in jobs for ids in self.gen.encode_prefixes(j.prompts)]
            feeding = self.gen.feeding(encoded, warmed, self._piece)
        except Exception as e:  # the requests were checked: this is the server's fault
            _failed(jobs, e)
            return
        self.warming.append(Warming(jobs, warmed, feeding))

    def _piece(self) -> int | None:
        """The characters a row of the next warm-up call: ``prefill_chunk`` while streams are
        live, all that is left while none is (nobody waits on it)."""
        return self.prefill_chunk if self.live and self.prefill_chunk else None

    def _warm_step(self) -> bool:
        """One call of each warm-up under way (at most ``prefill_chunk`` characters a row, so
        that a long prompt does not stall the live streams: it goes on between their turns);
        the jobs whose prefixes are all fed join the batch. Whether any joined."""
        joined, still = False, []
        for w in self.warming:
            try:
                next(w.feeding)
                still.append(w)
            except StopIteration:
                joined = (
                    any([self._admit(job, w.warmed) for job in w.jobs if not job.cancelled])
                    or joined
                )
            except Exception as e:  # the requests were checked: this is the server's fault
                _failed(w.jobs, e)
        self.warming = still
        return joined

    def _admit(self, job: Job, warmed: dict | None = None) -> bool:
        """Whether the job's rows joined the batch, from their prefixes' warm-ups in
        ``warmed``; an error goes to the job alone."""
        try:
            job.rows = self.gen.start(
                job.prompts, job.options, job.n, warmed=warmed, scored=job.scored
            )
        except Exception as e:  # the request was checked: this is the server's fault
            _failed([job], e)
            return False
        job.queued = time.perf_counter() - job.submitted
        self.live.append(job)
        return True

    def _turn(self, n: int) -> None:
        """``n`` characters for every live row in one call; each job gets its rows' text.

        The turn after rows join runs :data:`FIRST_CHUNK` characters, not ``chunk``: the new
        rows' first text then waits ~8 ms, not ~25 (LSTM 2x512, 16 rows), at the cost of one
        more call per join; where the calls split a row's text changes nothing in it. The
        characters are scored when any job asks for their log-probabilities."""
        jobs = self.live
        batch = Batch.join([j.admitted.batch for j in jobs])
        scored = any(j.scored for j in jobs)
        drawn = batch.run(self.gen.loop, n, bucket(len(batch)), scored)
        start, still = 0, []
        for job in jobs:
            rows = job.admitted
            end = start + len(rows.prefixes)
            rows.batch = batch.part(start, end)
            pieces = rows.take(drawn.part(start, end))
            start = end
            reasons = rows.finish_reasons if rows.done else None
            job.deliver(("text", pieces, reasons, rows.scores if job.scored else None))
            if not rows.done:
                still.append(job)
        self.live = still


@dataclass
class Warming:
    """Jobs whose prefixes are being fed, a call per turn of the worker: ``feeding`` (from
    :meth:`~charlm.use.generate.Generator.feeding`) puts each prefix's logits and state in
    ``warmed`` once it is all fed."""

    jobs: list[Job]
    warmed: dict
    feeding: Iterator[None]


def _failed(jobs: list[Job], e: Exception) -> None:
    """Tell each of ``jobs`` that generation failed, and why (the server's fault: the requests
    were checked before they were submitted)."""
    for job in jobs:
        job.fail(f"generation failed: {type(e).__name__}: {e}")
