"""The recipe's speed measurement and the choices it feeds: single steps timed in alternating
rounds, their median counting, so that a burst of load or a noisy ratio changes no choice."""

import itertools
import time

import pytest

from charlm.models.families import family
from charlm.training.recipe import BF16_BAND, pick_precision
from charlm.training.speed import (
    MIN_ROUND_SECONDS,
    ROUND_SECONDS,
    median_step_seconds,
    round_seconds,
)


def sleeper(seconds, slow_until):
    """A step of ``seconds``, four times slower while a burst of load lasts."""

    def run():
        time.sleep(seconds * (4 if time.monotonic() < slow_until[0] else 1))

    return run


def test_a_burst_of_load_during_one_round_moves_neither_median():
    slow_until = [0.0]
    runs = {"narrow": sleeper(0.01, slow_until), "wide": sleeper(0.02, slow_until)}
    slow_until[0] = time.monotonic() + 0.15  # the first round of both, and no other
    medians = median_step_seconds(runs, seconds=0.1, rounds=3)
    assert medians["narrow"] == pytest.approx(0.01, rel=0.3)
    assert medians["wide"] / medians["narrow"] == pytest.approx(2.0, rel=0.15)


def test_rounds_are_shorter_in_a_short_budget_and_never_below_their_floor():
    assert round_seconds(56.0) == MIN_ROUND_SECONDS  # a minute's budget
    assert round_seconds(3600.0) == ROUND_SECONDS
    lefts = [10.0, 56.0, 116.0, 290.0, 1190.0]
    rounds = [round_seconds(left) for left in lefts]
    assert rounds == sorted(rounds)


# bf16/float32 speed ratios measured 5 times each on one machine (Intel Xeon with AMX)
MEASURED = {"lstm": (1.365, 1.334, 1.229, 1.152, 1.267), "gpt": (1.014, 1.199, 1.085, 1.094, 1.051)}


@pytest.mark.parametrize("model", sorted(MEASURED))
def test_the_precision_does_not_flip_on_the_noise_of_repeated_measurements(model):
    preferred = family(model).recipe.precisions[0]
    noise = (0.95, 1.0, 1.05)  # on top of the noise the five measurements hold
    chosen = {
        pick_precision(ratio * n, preferred)
        for ratio, n in itertools.product(MEASURED[model], noise)
    }
    assert chosen == {"mixed_bfloat16" if model == "lstm" else "float32"}


@pytest.mark.parametrize("preferred", ["float32", "mixed_bfloat16"])
def test_a_ratio_outside_the_band_decides_whatever_the_family_prefers(preferred):
    low, high = BF16_BAND
    assert pick_precision(high * 1.01, preferred) == "mixed_bfloat16"
    assert pick_precision(low * 0.99, preferred) == "float32"
    assert pick_precision((low + high) / 2, preferred) == preferred
