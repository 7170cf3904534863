"""The job's progress plan: stage weights map onto 0-100, progress never goes back, updates
are throttled to one event per interval, and the time left is estimated only past 5 %."""

from __future__ import annotations

import pytest

from shared.job_progress import ProgressPlan


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stage_weights_split_the_job_and_unlisted_stages_have_no_share():
    plan = ProgressPlan([("analyzing", 1.0), ("mastering", 3.0)], clock=Clock())
    assert (plan.start_of("analyzing"), plan.end_of("analyzing")) == (0.0, 25.0)
    assert (plan.start_of("mastering"), plan.end_of("mastering")) == (25.0, 100.0)
    assert plan.within("mastering", 0.5) == pytest.approx(62.5)
    assert plan.within("mastering", 7.0) == 100.0  # fractions are clamped to 0..1
    assert plan.start_of("encoding") is None and plan.within("encoding", 0.5) is None
    assert plan.end_of("encoding") == 0.0


def test_updates_are_throttled_never_go_back_and_estimate_time_left():
    clock = Clock()
    plan = ProgressPlan([("a", 1.0)], min_interval_s=0.25, clock=clock)
    clock.now += 1.0
    assert plan.update(2.0) == (2.0, None)  # too early to guess the time left
    clock.now += 0.1
    assert plan.update(30.0) is None  # within the interval
    clock.now += 0.2
    assert plan.update(1.0) is None  # backwards
    percent, remaining_s = plan.update(20.0)
    assert percent == 20.0 and remaining_s == pytest.approx(1.3 * 80 / 20)
    assert plan.update(20.0, force=True) == (20.0, pytest.approx(1.3 * 80 / 20))
    assert plan.update(150.0, force=True) == (100.0, 0.0)
