"""The clock and the schedule: how much of a run's time budget is spent, what must be kept
back for the end, and the learning rate at each point of the run.

A ``--time-budget`` counts from the launch (for ``charlm train`` the start of its process,
:func:`process_started`; for the Python API the ``started`` it is given), so that start-up,
the final validation, the final save and the exit all fit in it. A launch has one clock: the
budget recipe reads it to choose, the trainer to stop in time and to drive the schedule.
Training stops when the next step would leave less than the reserve: the final validation and
save as long as the last ones took, and the exit (``charlm train`` ends its process at once
once its files are written: an interpreter's teardown with TensorFlow loaded took 1-2 s).
The schedule is driven by the fraction of the run done, measured by the clock as well as by
the steps, because a schedule tuned in steps on one CPU is wrong on another (BENCHMARKS.md,
"What the budget recipe and the clock stand on": a cosine decay tuned for ~1,900 steps lost
0.26 nats to a constant rate on a CPU about 2.3x slower).

No TensorFlow here: the API and the CLI check a budget with it before TensorFlow loads.

    >>> clock = Clock(60.0, started=time.monotonic() - 30.0)
    >>> round(clock.progress(), 1), round(clock.left())
    (0.5, 30)
    >>> learning_rate(1.0, step=500, peak=2e-3, kind="cosine", warmup_steps=10, floor=0.1)
    0.0002
"""

from __future__ import annotations

import collections
import math
import os
import time

from ..errors import CharLMError

# kept back for loading the Run, the last line and the quick exit (measured 0.02-0.05 s on
# 2 cores; the interpreter's teardown it skips took 1-2 s)
EXIT_SECONDS = 0.5
# left after start-up, below which a run cannot measure (recipe auto) or train at all (fixed)
MIN_SECONDS = {"auto": 10.0, "fixed": 5.0}
TOO_SHORT = {
    "auto": "; the budget recipe needs at least {:g} s to measure this machine and train",
    "fixed": ", too little to train, validate and save (at least {:g} s)",
}
SCORER_TRACE_SECONDS = 3.0  # building the scorer's graph, before the first validation
FORWARD_SPEEDUP = 3.0  # a forward pass costs a third of a training step per character


def learning_rate(
    progress: float,
    step: int,
    peak: float,
    kind: str = "constant",
    warmup_steps: int = 0,
    floor: float = 0.1,
) -> float:
    """The learning rate of step ``step + 1`` at ``progress`` (0 to 1) of the run: linear
    warm-up over the first ``warmup_steps`` steps, times, for ``"cosine"``, a half cosine from
    ``peak`` down to ``floor * peak`` at progress 1 (nanoGPT's ``get_lr``, by the clock).

    >>> learning_rate(0.0, step=0, peak=1.0, warmup_steps=4)
    0.25
    >>> learning_rate(0.5, step=100, peak=1.0, kind="cosine", floor=0.0)
    0.5
    """
    lr = peak
    if warmup_steps and step < warmup_steps:
        lr *= (step + 1) / warmup_steps
    if kind == "cosine":
        lr *= floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return lr


def run_progress(step: int, total_steps: int | None, elapsed: float, budget: float | None) -> float:
    """The fraction of the run done: of the planned steps or of the time budget, whichever
    is further along (at most 1); 0 when neither is known.

    >>> run_progress(50, 200, elapsed=30.0, budget=60.0)
    0.5
    """
    done = step / total_steps if total_steps else 0.0
    if budget:
        done = max(done, elapsed / budget)
    return min(1.0, done)


def validation_seconds(chars: int, train_rate: float, first: bool = False) -> float:
    """Seconds to score ``chars`` held-out characters when training runs at ``train_rate``
    chars/s: a forward pass at FORWARD_SPEEDUP times the training speed, plus, for the
    ``first`` validation of a process, the time to build the scorer's graph."""
    seconds = chars / (FORWARD_SPEEDUP * train_rate)
    return seconds + SCORER_TRACE_SECONDS if first else seconds


def training_seconds(left: float) -> float:
    """Of ``left`` seconds, those the training steps get: the rest traces the model and the
    scorer (~4 s) and validates (the recipe keeps validations to ~3 % of the time)."""
    return max(1.0, 0.95 * left - 4.0)


def process_started() -> float:
    """The ``time.monotonic()`` at which this process started (Linux: from /proc), so that a
    budget counts the interpreter's start-up and the imports before charlm's first line too;
    now, where the start time cannot be read."""
    now = time.monotonic()
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the command name
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime, in ticks
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - age if 0.0 <= age < 60.0 else now


def check_time_left(budget_text: str, left: float, recipe: str) -> None:
    """One clear error when start-up has left under MIN_SECONDS[recipe] of the budget."""
    need = MIN_SECONDS[recipe]
    if left >= need:
        return
    raise CharLMError(
        f"--time-budget {budget_text} leaves {max(left, 0):.0f} s after start-up"
        f"{TOO_SHORT[recipe].format(need)}: give a longer budget, e.g. 1m"
    )


class Clock:
    """A run's clock: its budget (seconds, or None), the time trained so far (resumed runs
    included) and what the end keeps back. ``started`` is the ``time.monotonic()`` of the
    launch; ``elapsed`` the time a resumed run had already trained.

        clock = Clock(cfg.time_budget_seconds, started=launch.started)
        while not clock.spent(): ...
    """

    def __init__(self, budget: float | None, started: float | None = None, elapsed: float = 0.0):
        self.budget = budget or None
        self.started = time.monotonic() if started is None else started
        self._base, self._since = elapsed, self.started  # elapsed = base + now - since
        self.took: dict[str, float | None] = {"evaluate": None, "save": 0.0}  # the last of each
        self.totals: dict[str, float] = collections.defaultdict(float)  # this process's seconds
        self.planned_steps: int | None = None  # what the budget recipe planned, if it did

    def set_budget(self, budget: float | None) -> None:
        """Count down from ``budget`` seconds (None or 0: no budget). A launch's clock starts
        before the run's config, which says the budget, is read."""
        self.budget = budget or None

    def elapsed(self) -> float:
        """Seconds of the run so far, resumed runs included."""
        return self._base + time.monotonic() - self._since

    def restart(self, elapsed: float) -> None:
        """Count on from ``elapsed`` seconds (what a checkpoint saved), from now."""
        self._base, self._since = elapsed, time.monotonic()

    def left(self) -> float | None:
        """Seconds of the budget not yet used (negative once overrun); None without one."""
        return None if self.budget is None else self.budget - self.elapsed()

    def budget_left(self) -> float:
        """:meth:`left` of a clock that has a budget (what the budget's readers ask).

        Raises:
            ValueError: the clock has no budget.
        """
        left = self.left()
        if left is None:
            raise ValueError("this clock has no budget")
        return left

    def progress(self, step: int = 0, total_steps: int | None = None) -> float:
        """The fraction of the run done, by the steps and by this clock (see run_progress)."""
        return run_progress(step, total_steps, self.elapsed(), self.budget)

    def record(self, what: str, since: float) -> None:
        """Note that ``what`` ("step", "evaluate" or "save"), begun at monotonic ``since``,
        is done."""
        self.took[what] = seconds = time.monotonic() - since
        self.totals[what] += seconds

    def account(self, steps: int) -> str:
        """Where this process's time went, in one line: ``steps`` run (of the recipe's plan),
        the seconds in training steps and their share of the time since the launch."""
        wall = time.monotonic() - self.started
        train, evaluate, save = (self.totals[k] for k in ("step", "evaluate", "save"))
        planned = f" of ~{self.planned_steps:,} planned" if self.planned_steps else ""
        return (
            f"time: {steps:,} steps{planned}, {train:.1f} s in training steps, "
            f"{train / max(wall, 1e-9):.0%} of the {wall:.1f} s since the launch (validation "
            f"{evaluate:.1f} s, saving {save:.1f} s; start-up, measuring and compiling the rest)"
        )

    def reserve(self, first_validation: float = 0.0) -> float:
        """Seconds kept back for the end: the final validation and save, as long as the last
        ones took (``first_validation`` before any validation), and the exit."""
        evaluate, save = self.took["evaluate"], self.took["save"] or 0.0
        return (first_validation if evaluate is None else evaluate) + save + EXIT_SECONDS

    def spent(self, first_validation: float = 0.0, next_step: float = 0.0) -> bool:
        """Another step (``next_step`` seconds) would leave less than the reserve: training
        must stop now for the run to end within its budget. Never, without a budget."""
        return (
            self.budget is not None
            and self.elapsed() + next_step + self.reserve(first_validation) >= self.budget
        )
