"""The training loop's terminal: the progress bar, the log lines printed above it, and
Ctrl-C/SIGTERM, which ask the loop to stop at the next step (a second Ctrl-C stops at once).
Example::

    console = Console(log=print, progress=None)      # None: a bar only on a terminal
    with console.session(total=1000, initial=0):
        ...
        console.show(step, loss, meter)
        console.say("step 100 | ...")
        if console.interrupted:                      # the signal's number, else 0
            ...
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
from collections.abc import Callable

from tqdm import tqdm

from ..fsio import progress_bar
from ..say import format_seconds


class Console:
    """``log`` takes the lines when no bar shows; ``progress`` True/False forces the bar on or
    off, None shows it only on a terminal (tqdm's choice); ``left``: the seconds left of a
    time budget, shown beside the bar's ETA (the budget, not the steps, ends such a run)."""

    def __init__(
        self,
        log: Callable[[str], None],
        progress: bool | None,
        left: Callable[[], float] | None = None,
    ):
        self.log, self.progress, self.left = log, progress, left  # left: a budget's seconds
        self.bar: tqdm | None = None  # set up by session()
        self.interrupted = 0  # the number of the signal that asked to stop

    @contextlib.contextmanager
    def session(self, total: int | None, initial: int):
        """The progress bar and the signal handlers, around the loop."""
        bar = self.bar = progress_bar(self.progress, total=total, initial=initial, unit="step")
        handlers = self._install_signal_handlers()
        try:
            yield
        finally:
            bar.close()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def show(self, step: int, loss: float, meter) -> None:
        """One more step on the bar; every tenth its loss, perplexity and ``meter``'s speed."""
        assert self.bar is not None, "Console.show is called inside its session()"
        self.bar.update(1)
        if step % 10 == 0 or step == 1:
            left = {} if self.left is None else {"budget_left": self._follow_the_clock()}
            self.bar.set_postfix(
                loss=f"{loss:.3f}",
                ppl=f"{math.exp(min(loss, 50)):.2f}",
                chars_s=f"{meter.chars_per_sec():,.0f}",
                **left,
                refresh=False,
            )

    def _follow_the_clock(self) -> str:
        """A budget run's bar: its total set to the steps the seconds left make at the bar's
        pace (the plan's count was made before the speed was known), so that its ETA is the
        budget's end; the seconds left, worded."""
        assert self.bar is not None and self.left is not None
        left, rate = max(0.0, self.left()), self.bar.format_dict.get("rate")
        if rate and self.bar.n >= 10:  # the first steps' pace is mostly tracing
            self.bar.total = self.bar.n + int(left * rate)
        return format_seconds(left)

    def move_to(self, step: int) -> None:
        """Set the bar's count (after a restore moved the loop)."""
        if self.bar is not None:
            self.bar.n = step

    def say(self, line: str) -> None:
        """A line of the training log: above the progress bar while it shows, else to log."""
        if self.bar is not None and not self.bar.disable:
            tqdm.write(line, file=sys.stderr)
        else:
            self.log(line)

    def _install_signal_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self.interrupted:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.interrupted = signum
            self.log("\nstopping: saving a checkpoint (press Ctrl-C again to quit at once)")

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
