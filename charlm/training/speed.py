"""Training speed measured on this machine, for the budget recipe (:mod:`.recipe`, step 1) and
the benchmarks: real steps of each candidate config, timed one at a time in ``ROUNDS`` rounds
that alternate the configs, the median step counting. A burst of load from elsewhere slows
whichever config runs during it; alternating spreads it over all of them, and the median of
single steps moves little (a mean over 1 s of steps moved ~10 % between two runs and changed
the width; a bf16 speed measured after float32's, not alternated with it, once read 1.41x and,
under load, 0.67x on the same machine).

A round lasts :func:`round_seconds` per config: less in a short budget, whose every second of
measuring is a second not trained.

    rates = measure_rates({"1x128": cfg128, "1x384": cfg384}, vocab_size=65, seconds=0.4)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from ..models.lm import build_model
from .step import make_optimizer, step_for

ROUNDS = 3  # rounds alternating the configs
ROUND_SECONDS = 0.4  # seconds per config and round, at budgets of BUDGET_PER_ROUND_SECOND * it
MIN_ROUND_SECONDS = 0.15  # the least: a step takes up to ~0.15 s (a 6,000-character vocabulary)
BUDGET_PER_ROUND_SECOND = 400.0  # a 1-minute budget times 0.15 s rounds, 5 minutes 0.4 s


def round_seconds(left: float) -> float:
    """Seconds per config and round with ``left`` seconds of the budget left.

    >>> round_seconds(56.0), round_seconds(290.0)
    (0.15, 0.4)
    """
    return min(ROUND_SECONDS, max(MIN_ROUND_SECONDS, left / BUDGET_PER_ROUND_SECOND))


def stepper(cfg, vocab_size: int) -> Callable[[], None]:
    """One training step of ``cfg``'s model on random ids, as a function that returns when
    the step is done; traced and warmed up by two steps."""
    model = build_model(cfg, vocab_size)
    step = step_for(cfg, model, make_optimizer(cfg.optimizer, cfg.lr))
    rng = np.random.default_rng(0)
    x, y = (
        tf.constant(rng.integers(0, vocab_size, (cfg.batch_size, cfg.seq_len)), tf.int32)
        for _ in range(2)
    )
    state = model.initial_state(cfg.batch_size)

    def run():
        float(step(x, y, state)[0])

    run()
    run()
    return run


def time_steps(run: Callable[[], None], seconds: float, least: int = 1) -> list[float]:
    """The seconds of each of at least ``least`` steps ``run`` over ``seconds``."""
    times: list[float] = []
    end = time.monotonic() + seconds
    while len(times) < least or time.monotonic() < end:
        t0 = time.monotonic()
        run()
        times.append(time.monotonic() - t0)
    return times


def median_step_seconds(runs: dict, seconds: float, rounds: int = ROUNDS) -> dict:
    """{key: the median seconds of one call} of each function in ``runs``, timed in ``rounds``
    rounds that alternate them, ``seconds`` each per round."""
    times: dict = {k: [] for k in runs}
    for _ in range(rounds):
        for k, run in runs.items():
            times[k] += time_steps(run, seconds)
    return {k: statistics.median(t) for k, t in times.items()}


def measure_rates(cfgs: dict, vocab_size: int, seconds: float = ROUND_SECONDS) -> dict:
    """Training chars/s on this machine of each config in ``cfgs`` ({key: cfg}), alternated
    as :func:`median_step_seconds` says."""
    runs = {k: stepper(c, vocab_size) for k, c in cfgs.items()}
    medians = median_step_seconds(runs, seconds)
    return {k: c.batch_size * c.seq_len / medians[k] for k, c in cfgs.items()}
