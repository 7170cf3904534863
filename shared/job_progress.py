"""How a job's progress is told: each stage's share of the job's 0-100 comes from the kind's
stage weights, progress never goes back, and an update is worth an event at most every
``PROGRESS_EVENT_INTERVAL_S`` (a stage reporting every frame must not flood the stream)."""

from __future__ import annotations

import time
from collections.abc import Callable

PROGRESS_EVENT_INTERVAL_S = 0.25
# Below this much progress the time left is a guess, so none is given.
MIN_PERCENT_FOR_ESTIMATE = 5


class ProgressPlan:
    """The job's progress plan for stages ``[(name, weight), ...]``."""

    def __init__(
        self,
        stages: list[tuple[str, float]],
        *,
        min_interval_s: float = PROGRESS_EVENT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        total = sum(w for _, w in stages) or 1.0
        self._spans: dict[str, tuple[float, float]] = {}
        acc = 0.0
        for name, w in stages:
            self._spans[name] = (acc / total * 100.0, w / total * 100.0)
            acc += w
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._started = clock()
        self._last_event = 0.0
        self._last_pct = -1.0

    def start_of(self, stage: str) -> float | None:
        """Where ``stage`` starts on the 0-100 scale; None for a stage the kind does not list."""
        span = self._spans.get(stage)
        return None if span is None else span[0]

    def end_of(self, stage: str) -> float:
        """Where ``stage`` ends (0 for a stage the kind does not list)."""
        start, width = self._spans.get(stage, (0.0, 0.0))
        return start + width

    def within(self, stage: str, fraction: float) -> float | None:
        """The job's percent when ``stage`` is ``fraction`` (0..1) done; None if unlisted."""
        span = self._spans.get(stage)
        if span is None:
            return None
        return span[0] + span[1] * min(1.0, max(0.0, fraction))

    def update(self, percent: float, *, force: bool = False) -> tuple[float, float | None] | None:
        """``(percent, remaining_s)`` when this update deserves an event, else None: it must
        move forward and come ``min_interval_s`` after the last one (``force`` skips both)."""
        percent = round(min(100.0, max(0.0, float(percent))), 1)
        now = self._clock()
        if not force and (
            now - self._last_event < self.min_interval_s or percent <= self._last_pct
        ):
            return None
        self._last_event = now
        self._last_pct = max(self._last_pct, percent)
        elapsed = now - self._started
        if percent < MIN_PERCENT_FOR_ESTIMATE:
            return percent, None
        return percent, elapsed * (100.0 - percent) / percent
