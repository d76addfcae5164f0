"""The clock and the schedule: the learning rate is a pure function of the run's progress, the
budget keeps back the end's reserve, and the module loads without TensorFlow."""

import math
import subprocess
import sys
import time

import pytest
from conftest import ROOT, error
from hypothesis import given, settings
from hypothesis import strategies as st

from charlm.training.clock import (
    EXIT_SECONDS,
    MIN_SECONDS,
    SCORER_TRACE_SECONDS,
    Clock,
    check_time_left,
    learning_rate,
    process_started,
    run_progress,
    training_seconds,
    validation_seconds,
)

PEAK = 2e-3
unit = st.floats(min_value=0.0, max_value=1.0)


def test_warm_up_climbs_linearly_to_the_peak_and_then_holds_it():
    lrs = [learning_rate(0.0, step, PEAK, "constant", warmup_steps=4) for step in range(6)]
    assert lrs[:4] == pytest.approx([PEAK / 4, PEAK / 2, 3 * PEAK / 4, PEAK], rel=1e-12)
    assert lrs[4:] == [PEAK, PEAK]


@given(unit, st.integers(min_value=0, max_value=10**6))
def test_a_constant_schedule_without_warm_up_is_the_peak_at_any_progress(progress, step):
    assert learning_rate(progress, step, PEAK) == PEAK


def test_cosine_starts_at_the_peak_halves_the_way_midway_and_ends_at_the_floor():
    def cosine(progress):
        return learning_rate(progress, 1000, PEAK, "cosine", warmup_steps=10, floor=0.1)

    assert cosine(0.0) == pytest.approx(PEAK, rel=1e-12)
    assert cosine(0.5) == pytest.approx(PEAK * (0.1 + 0.9 * 0.5), rel=1e-12)
    assert cosine(1.0) == pytest.approx(0.1 * PEAK, rel=1e-12)
    assert cosine(3.0) == cosine(1.0)  # past the end it stays at the floor


@settings(max_examples=100, deadline=None)
@given(unit, unit, st.floats(min_value=0.0, max_value=1.0))
def test_cosine_only_falls_and_never_below_its_floor(a, b, floor):
    early, late = sorted((a, b))
    lr_early, lr_late = (learning_rate(p, 50, PEAK, "cosine", floor=floor) for p in (early, late))
    assert lr_late <= lr_early * (1 + 1e-12)
    assert floor * PEAK * (1 - 1e-12) <= lr_late <= PEAK * (1 + 1e-12)


def test_warm_up_and_cosine_multiply_during_the_warm_up():
    lr = learning_rate(0.25, 1, PEAK, "cosine", warmup_steps=4, floor=0.0)
    assert lr == pytest.approx(PEAK * 2 / 4 * 0.5 * (1 + math.cos(math.pi / 4)), rel=1e-12)


def test_the_schedule_gives_the_same_rates_as_the_trainer_did_before_the_clock():
    # the formula Trainer.lr_at computed inline (lr_scale 1), at a few points of a run
    def before(step, progress, warmup, floor):
        lr = PEAK
        if warmup and step < warmup:
            lr *= (step + 1) / warmup
        return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    for step, progress in [(0, 0.0), (3, 0.01), (10, 0.2), (400, 0.77), (900, 1.4)]:
        assert learning_rate(progress, step, PEAK, "cosine", 10, 0.1) == before(
            step, progress, 10, 0.1
        )


def test_progress_is_the_further_of_steps_and_time_and_stops_at_one():
    assert run_progress(50, 200, elapsed=30.0, budget=60.0) == 0.5
    assert run_progress(150, 200, elapsed=30.0, budget=60.0) == 0.75
    assert run_progress(10, None, elapsed=45.0, budget=60.0) == 0.75
    assert run_progress(10, 200, elapsed=1e6, budget=None) == 10 / 200
    assert run_progress(10, None, elapsed=5.0, budget=None) == 0.0
    assert run_progress(500, 200, elapsed=90.0, budget=60.0) == 1.0


def test_the_clock_counts_from_the_launch_and_on_from_a_resumed_runs_time():
    clock = Clock(60.0, started=time.monotonic() - 20.0)
    assert clock.elapsed() == pytest.approx(20.0, abs=1.0)
    assert clock.left() == pytest.approx(40.0, abs=1.0)
    assert clock.progress() == pytest.approx(1 / 3, abs=1 / 60)
    clock.restart(45.0)  # a checkpoint that had trained 45 s
    assert clock.elapsed() == pytest.approx(45.0, abs=1.0)
    assert clock.left() == pytest.approx(15.0, abs=1.0)


def test_without_a_budget_nothing_is_left_to_count_and_the_clock_never_runs_out():
    clock = Clock(None, started=time.monotonic() - 1e6)
    assert clock.left() is None and not clock.spent(first_validation=1e9)
    assert clock.progress(step=5, total_steps=10) == 0.5


def test_the_reserve_is_the_last_validation_and_save_and_the_exit():
    clock = Clock(100.0)
    assert clock.reserve() == EXIT_SECONDS  # nothing measured yet, nothing to validate
    assert clock.reserve(first_validation=7.0) == 7.0 + EXIT_SECONDS
    clock.took.update(evaluate=4.0, save=1.5)  # as record() notes them
    assert clock.reserve(first_validation=7.0) == 4.0 + 1.5 + EXIT_SECONDS  # measured wins


def test_record_notes_how_long_a_step_between_steps_took():
    clock = Clock(100.0)
    clock.record("save", since=time.monotonic() - 2.0)
    assert clock.took["save"] == pytest.approx(2.0, abs=0.5)


def test_the_account_says_the_steps_of_the_plan_and_the_share_of_time_in_training_steps():
    clock = Clock(60.0, started=time.monotonic() - 40.0)
    clock.planned_steps = 1_262
    clock.record("step", since=time.monotonic() - 30.0)
    clock.record("evaluate", since=time.monotonic() - 2.0)
    line = clock.account(steps=1_070)
    assert line.startswith("time: 1,070 steps of ~1,262 planned, 30.0 s in training steps, 75% of")
    assert "validation 2.0 s" in line
    clock.planned_steps = None  # a run the recipe did not plan: no plan to compare with
    assert clock.account(steps=5).startswith("time: 5 steps, ")


def test_a_budget_is_spent_once_what_is_left_no_longer_covers_the_reserve():
    # 10 s left: spent once the first validation and the exit need more
    assert not Clock(60.0, started=time.monotonic() - 50.0).spent(first_validation=5.0)
    assert Clock(60.0, started=time.monotonic() - 50.0).spent(first_validation=10.5 - EXIT_SECONDS)
    assert Clock(60.0, started=time.monotonic() - 61.0).spent()


def test_a_budget_is_spent_when_the_next_step_would_eat_into_the_reserve():
    clock = Clock(60.0, started=time.monotonic() - 50.0)  # 10 s left
    assert not clock.spent(first_validation=5.0, next_step=1.0)
    assert clock.spent(first_validation=5.0, next_step=10.0 - 5.0 - EXIT_SECONDS)


def test_the_launch_is_the_start_of_the_process_not_the_import_of_charlm():
    # a process that sleeps before importing charlm: its launch is before the sleep
    code = (
        "import time; time.sleep(1.0); from charlm.training.clock import process_started; "
        "print(time.monotonic() - process_started())"
    )
    age = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True, cwd=ROOT).stdout)  # fmt: skip
    assert 1.0 <= age < 30.0
    assert process_started() <= time.monotonic()


def test_the_first_validation_also_builds_the_scorer():
    assert validation_seconds(30_000, 10_000.0) == pytest.approx(1.0, rel=1e-12)
    assert validation_seconds(30_000, 10_000.0, first=True) == pytest.approx(
        1.0 + SCORER_TRACE_SECONDS, rel=1e-12
    )


def test_training_gets_most_of_what_is_left_and_never_under_a_second():
    assert training_seconds(100.0) == pytest.approx(91.0, rel=1e-12)
    assert training_seconds(3.0) == 1.0


def test_too_little_time_left_after_start_up_is_one_clear_error_per_recipe():
    check_time_left("1m", MIN_SECONDS["auto"], "auto")  # exactly enough: no error
    check_time_left("1m", MIN_SECONDS["fixed"], "fixed")
    auto = error(check_time_left, "12s", 9.6, "auto")
    assert auto == (
        "--time-budget 12s leaves 10 s after start-up; the budget recipe needs at "
        "least 10 s to measure this machine and train: give a longer budget, e.g. 1m"
    )
    fixed = error(check_time_left, "1s", -0.4, "fixed")
    assert fixed == (
        "--time-budget 1s leaves 0 s after start-up, too little to train, validate "
        "and save (at least 5 s): give a longer budget, e.g. 1m"
    )


def test_importing_the_clock_does_not_load_tensorflow():
    code = "import sys, charlm.training.clock; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert out.strip() == "False"


def test_a_budget_runs_bar_ends_with_the_budget_and_shows_the_seconds_left():
    from charlm.training.console import Console

    class Meter:
        def chars_per_sec(self):
            return 1000.0

    console = Console(log=print, progress=True, left=lambda: 12.0)
    with console.session(total=5, initial=0):  # the plan's count, made before the speed
        for step in range(1, 31):
            time.sleep(0.01)  # past tqdm's 0.1 s between refreshes, which measure the pace
            console.show(step, loss=2.0, meter=Meter())
        bar = console.bar
        assert bar is not None and bar.n == 30
        rate = bar.format_dict["rate"]
        assert rate
        assert bar.total == pytest.approx(30 + 12.0 * rate, abs=2 + 0.2 * 12.0 * rate)
        assert bar.postfix is not None and "budget_left=12s" in bar.postfix
