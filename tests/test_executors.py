"""The local executor (shared.executors.LocalExecutor): calls run here with their keyword
arguments, ``map`` keeps input order with a bounded pool, reports each result as it finishes,
and stops starting items once the reporting raises; and where it says a stage ran."""

from __future__ import annotations

import threading
import time

import pytest

from shared.executors import LocalExecutor, ModalExecutor, Placement, runs_stages_remotely
from tests.store_helpers import logged

# A drain that never ends (the remote call's exit joins it) must fail here, not hang.
pytestmark = pytest.mark.timeout(30)


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
    finished: list[int] = []

    def stage(x: int) -> int:
        started.append(x)
        time.sleep(0.2)
        finished.append(x)
        return x

    def report(result: int) -> None:
        raise RuntimeError("canceled")

    with pytest.raises(RuntimeError, match="canceled"):
        LocalExecutor(max_workers=2).map(stage, [{"x": i} for i in range(20)], on_result=report)
    assert len(started) < 20
    assert sorted(finished) == sorted(started)  # nothing left running behind the error


def test_two_workers_run_two_items_at_once():
    both = threading.Barrier(2, timeout=10)  # breaks unless both items run side by side

    def stage(x: int) -> int:
        both.wait()
        return x

    assert LocalExecutor(max_workers=2).map(stage, [{"x": 1}, {"x": 2}]) == [1, 2]


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


def _triple(x: int) -> int:
    return 3 * x


class _Remote:
    """A Modal function's ``.remote`` / ``.map`` as the executor calls them, noted in ``asked``."""

    def __init__(self, name: str, asked: list) -> None:
        self.name, self.asked = name, asked

    def remote(self, kw: dict):
        self.asked.append((self.name, "remote", kw))
        return ("remote", kw["x"])

    def map(self, items: list):
        self.asked.append((self.name, "map", items))
        for kw in items:
            yield ("remote", kw["x"])


@pytest.fixture
def modal_lookups(monkeypatch) -> list:
    """modal's ``Function.from_name`` / ``Cls.from_name`` replaced by recorders."""
    import types

    import modal

    asked: list = []

    def function(app, name, **kw):
        asked.append((app, name))
        return _Remote(name, asked)

    def cls(app, name, **kw):
        asked.append((app, name))
        return lambda: types.SimpleNamespace(separate=_Remote(f"{name}().separate", asked))

    monkeypatch.setattr(modal.Function, "from_name", staticmethod(function))
    monkeypatch.setattr(modal.Cls, "from_name", staticmethod(cls))
    return asked


def test_stages_in_the_table_run_on_their_modal_function_or_class_and_others_here(
    modal_lookups,
):
    from shared.executors import RemoteStage

    ex = ModalExecutor(
        "soundstage",
        {_stage: RemoteStage("stage_fn"), _triple: RemoteStage("Separator.separate", gpu="L4")},
    )
    assert ex.max_workers == 8
    assert ex.call(_stage, {"x": 3}) == ("remote", 3)
    assert ex.call(_triple, {"x": 2}) == ("remote", 2)
    assert modal_lookups == [
        ("soundstage", "stage_fn"),
        ("stage_fn", "remote", {"x": 3}),
        ("soundstage", "Separator"),
        ("Separator().separate", "remote", {"x": 2}),
    ]
    seen: list = []
    assert ex.map(_stage, [{"x": 1}, {"x": 2}], on_result=seen.append) == [
        ("remote", 1),
        ("remote", 2),
    ]
    assert seen == [("remote", 1), ("remote", 2)]
    modal_lookups.clear()
    # A stage the table does not list runs in this container, without a lookup.
    assert ModalExecutor("soundstage", {}).call(_triple, {"x": 2}) == 6
    assert ModalExecutor("soundstage", {}).map(_triple, [{"x": 1}, {"x": 2}]) == [3, 6]
    assert modal_lookups == []


def test_a_remote_stage_is_priced_by_what_its_function_reserves():
    from shared.executors import RemoteStage

    ex = ModalExecutor(
        "app",
        {_stage: RemoteStage("s", gpu="L4", cores=8.0, memory_gib=32.0), _triple: RemoteStage("t")},
    )
    assert ex.placement(_stage) == Placement("modal", 8.0, 32.0, "L4")
    assert ex.placement(_triple) == Placement("modal", 2.0, 4.0, None)
    assert ex.placement(lambda: None) == Placement("modal", 4.0, 4.0, None)


def test_progress_crosses_as_key_and_arguments_and_never_fails_the_stage():
    from shared.executors import QueueProgress

    class Queue:
        def __init__(self) -> None:
            self.items: list = []

        def put(self, value) -> None:
            self.items.append(value)

    class Gone:
        def put(self, value) -> None:
            raise ConnectionError("the queue is gone")

    q = Queue()
    QueueProgress(q, 3)(0.5, "halfway")
    QueueProgress(q)(1.0)
    assert q.items == [(3, (0.5, "halfway")), (0, (1.0,))]
    with logged("soundstage.executors") as records:
        QueueProgress(Gone(), 1)(0.5)  # lost progress is only logged
    assert [(r.getMessage(), r.levelname, r.exc_info[0]) for r in records] == [
        ("progress could not be sent", "WARNING", ConnectionError)
    ]


def test_the_drain_outlives_a_failed_read_and_delivers_what_follows():
    from shared.executors import ProgressDrain

    class Queue:
        def __init__(self) -> None:
            self.reads = 0

        def get_many(self, n, block=True, timeout=None):
            self.reads += 1
            if self.reads == 1:
                return []  # a quiet moment: the remote stage has not reported yet
            if self.reads == 2:
                raise ConnectionError("read failed")
            if self.reads == 3:
                return [(0, (0.5,)), (1, (1.0,))]
            return []

    got: list = []
    queue = Queue()
    with logged("soundstage.executors") as records:
        with ProgressDrain(queue, {0: got.append, 1: lambda f: got.append(-f)}):
            deadline = time.monotonic() + 10
            while queue.reads < 3:  # the remote call runs until the failed read and the next
                assert time.monotonic() < deadline, "the drain stopped reading"
                time.sleep(0.01)
    assert got == [0.5, -1.0]
    assert [(r.getMessage(), r.levelname, r.exc_info[0]) for r in records] == [
        ("progress queue read failed", "WARNING", ConnectionError)
    ]


def test_the_calls_own_error_wins_over_a_progress_error():
    from shared.executors import ProgressDrain

    class Queue:
        def __init__(self) -> None:
            self.sent = [(0, (0.5,))]

        def get_many(self, n, block=True, timeout=None):
            out, self.sent = self.sent, []
            return out

    def sink(f):
        raise RuntimeError("canceled in progress")

    with pytest.raises(ValueError, match="the remote call failed"):
        with ProgressDrain(Queue(), {0: sink}):
            raise ValueError("the remote call failed")
    with pytest.raises(ValueError, match="the remote call failed"):
        with ProgressDrain(Queue(), {}):
            raise ValueError("the remote call failed")
    with pytest.raises(RuntimeError, match="canceled in progress"):
        with ProgressDrain(Queue(), {0: sink}):
            pass


def test_placements_remote_stages_and_progress_writers_are_fixed_values():
    import dataclasses

    from shared.executors import QueueProgress, RemoteStage

    assert LocalExecutor().max_workers == 2
    placement, stage = Placement("modal", 2.0, 4.0), RemoteStage("stage_fn")
    for value, field in ((placement, "cores"), (stage, "cores"), (QueueProgress(None, 1), "key")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, 64.0)
    assert (placement.gpu, stage.gpu) == (None, None)
