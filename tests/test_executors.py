"""The local executor (shared.executors.LocalExecutor): calls run here with their keyword
arguments, ``map`` keeps input order with a bounded pool, reports each result as it finishes,
and stops starting items once the reporting raises; and where it says a stage ran."""

from __future__ import annotations

import threading
import time

import pytest

from shared.executors import LocalExecutor, ModalExecutor, Placement, runs_stages_remotely


def _stage(x: int, pause: float = 0.0) -> int:
    time.sleep(pause)
    return x * 10


def test_call_passes_the_keyword_arguments():
    assert LocalExecutor().call(_stage, {"x": 4}) == 40


def test_map_keeps_the_input_order_and_reports_each_result():
    seen: list[int] = []
    items = [{"x": 1, "pause": 0.2}, {"x": 2, "pause": 0.0}, {"x": 3, "pause": 0.1}]
    assert LocalExecutor(max_workers=3).map(_stage, items, on_result=seen.append) == [10, 20, 30]
    assert sorted(seen) == [10, 20, 30]
    assert LocalExecutor().map(_stage, []) == []


def test_map_runs_at_most_max_workers_at_once():
    lock, running, peak = threading.Lock(), [0], [0]

    def stage(x: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return x

    items = [{"x": i} for i in range(8)]
    assert LocalExecutor(max_workers=3).map(stage, items) == list(range(8))
    assert peak[0] <= 3
    peak[0] = 0
    assert LocalExecutor(max_workers=8).map(stage, items, max_concurrency=2) == list(range(8))
    assert peak[0] <= 2
    peak[0] = 0
    LocalExecutor(max_workers=0).map(stage, items[:3])
    assert peak[0] == 1  # at least one worker, one at a time


def test_map_one_at_a_time_reports_in_order_and_stops_at_a_failed_report():
    started: list[int] = []

    def stage(x: int) -> int:
        started.append(x)
        return x

    def report(result: int) -> None:
        if result == 2:
            raise RuntimeError("over budget")

    with pytest.raises(RuntimeError, match="over budget"):
        LocalExecutor(max_workers=1).map(stage, [{"x": i} for i in range(1, 6)], on_result=report)
    assert started == [1, 2]
    seen: list[int] = []
    assert LocalExecutor(1).map(stage, [{"x": 7}, {"x": 8}], on_result=seen.append) == [7, 8]
    assert seen == [7, 8]


def test_a_failed_report_drops_the_items_not_yet_started():
    started: list[int] = []

    def stage(x: int) -> int:
        started.append(x)
        time.sleep(0.05)
        return x

    def report(result: int) -> None:
        raise RuntimeError("canceled")

    with pytest.raises(RuntimeError, match="canceled"):
        LocalExecutor(max_workers=2).map(stage, [{"x": i} for i in range(20)], on_result=report)
    assert len(started) < 20


def test_placement_says_where_a_stage_ran():
    assert LocalExecutor().placement(_stage) == Placement("local", 2.0, 4.0)
    assert LocalExecutor().placement("mixing", cores=8.0, memory_gib=16.0) == Placement(
        "local", 8.0, 16.0
    )
    inline = ModalExecutor("app", {}).placement("mixing")
    assert inline == Placement("modal", 4.0, 4.0)


def test_stages_run_remotely_only_on_the_modal_runner():
    class S:
        runner = "modal"

    assert runs_stages_remotely(S()) is True
    S.runner = "local"
    assert runs_stages_remotely(S()) is False
