"""Where a stage runs: the one owner of that decision.

A pipeline calls ``ctx.call(stage, **kw)`` / ``ctx.map(stage, items)`` and never asks where it
runs; the job's executor decides:

- :class:`LocalExecutor`: stage functions run in this process (``map`` is a bounded thread
  pool); a ``progress`` callable in the keyword arguments is called directly.
- :class:`ModalExecutor`: stages listed in its table (built by ``modal_app.py``) run as Modal
  functions or methods of classes that hold a model (``.remote()`` / ``.map()``); everything else runs in
  ``run_job``'s own container. A ``progress`` callable cannot cross to another container, so
  it is swapped for a :class:`QueueProgress` writing to a ``modal.Queue`` that a thread here
  drains into the original callable: remote progress reaches the job's events as it happens.

Each executor also says where a stage ran (:meth:`placement`: the provider, GPU and
reservation that the job's compute cost is priced by).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("soundstage.executors")

# run_job's own container (modal_app.py reserves the same): stages not in the table run there.
RUN_JOB_CORES = 4.0
RUN_JOB_MEMORY_GIB = 4.0
# How long the drain thread waits for remote progress before looking whether the call ended.
DRAIN_POLL_S = 0.5


@dataclass(frozen=True)
class RemoteStage:
    """A stage served by a Modal function (``"blend_stage"``) or a method of a class that holds
    a model (``"StemSeparator.separate"``), with what that function reserves (for its price)."""

    target: str
    gpu: str | None = None
    cores: float = 2.0
    memory_gib: float = 4.0


@dataclass(frozen=True)
class Placement:
    """Where some compute ran: ``provider`` is ``"local"`` (free) or ``"modal"`` (priced)."""

    provider: str
    cores: float
    memory_gib: float
    gpu: str | None = None


class LocalExecutor:
    """Stage functions run in this process; ``map`` is a bounded thread pool."""

    provider = "local"

    def __init__(self, max_workers: int = 2) -> None:
        self.max_workers = max(1, max_workers)

    def placement(
        self, stage: Callable[..., Any] | str, *, cores: float = 2.0, memory_gib: float = 4.0
    ) -> Placement:
        """Where ``stage`` (a stage function, or a name for work done inline) runs."""
        return Placement(self.provider, cores, memory_gib)

    def call(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        return fn(**kwargs)

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[dict[str, Any]],
        *,
        max_concurrency: int | None = None,
        on_result: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        """Results in input order. ``on_result`` sees each as it finishes (progress); if it
        raises (a deadline, a cancel), items not yet started are dropped and it propagates."""
        workers = min(max_concurrency or self.max_workers, len(items))
        if workers <= 1:
            out = []
            for kw in items:
                out.append(fn(**kw))
                if on_result is not None:
                    on_result(out[-1])
            return out
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = {pool.submit(fn, **kw): i for i, kw in enumerate(items)}
            results: list[Any] = [None] * len(items)
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                if on_result is not None:
                    on_result(results[futures[fut]])
            return results
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class QueueProgress:
    """A stage's ``progress`` callable on the far side of a Modal call: each call is put on
    the queue as ``(key, args)`` for the caller's drain thread. Picklable (a Modal Queue
    travels as a function argument); it never raises into the stage."""

    queue: Any
    key: int = 0

    def __call__(self, *args: Any) -> None:
        try:
            self.queue.put((self.key, args))
        except Exception:  # noqa: BLE001 - lost progress must not fail the stage
            log.warning("progress could not be sent", exc_info=True)


class ProgressDrain:
    """Takes ``(key, args)`` items off ``queue`` in a thread and calls ``sinks[key](*args)``.

    Used as a context manager around a remote call: on exit the queue is read until empty, and
    an error a sink raised (a cancel, a lost job) is raised in the caller."""

    def __init__(self, queue: Any, sinks: dict[int, Callable[..., Any]]) -> None:
        self.queue = queue
        self.sinks = sinks
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-drain", daemon=True)

    def __enter__(self) -> ProgressDrain:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error

    def _deliver(self, batch: list[Any]) -> None:
        for key, args in batch:
            if self.error is None:
                try:
                    self.sinks[key](*args)
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller
                    self.error = e

    def _run(self) -> None:
        while True:
            finishing = self._done.is_set()
            try:
                batch = self.queue.get_many(100, block=not finishing, timeout=DRAIN_POLL_S)
            except Exception:  # noqa: BLE001 - progress is best effort; the result is not
                log.warning("progress queue read failed", exc_info=True)
                if finishing:
                    return
                self._done.wait(DRAIN_POLL_S)  # then once more, or the last read
                continue
            self._deliver(batch)
            if finishing and not batch:
                return


def _ephemeral_queue() -> Any:
    import modal

    return modal.Queue.ephemeral()


class ModalExecutor(LocalExecutor):
    """Stages in ``stages`` run on Modal; the rest in this (``run_job``'s) container.

    ``stages`` maps stage functions to :class:`RemoteStage` (modal_app.py builds it). Modal
    stage wrappers take one positional dict (the stage's keyword arguments), so ``.remote(kw)``
    and ``.map([kw, ...])`` share one calling convention.
    """

    provider = "modal"

    def __init__(
        self,
        app_name: str,
        stages: dict[Callable[..., Any], RemoteStage],
        max_workers: int = 8,
        queue_factory: Callable[[], Any] = _ephemeral_queue,
    ) -> None:
        super().__init__(max_workers)
        self.app_name = app_name
        self.stages = dict(stages)
        self.queue_factory = queue_factory

    def placement(self, stage, *, cores=RUN_JOB_CORES, memory_gib=RUN_JOB_MEMORY_GIB):
        remote = self.stages.get(stage) if callable(stage) else None
        if remote is None:  # inline in run_job's container
            return Placement(self.provider, cores, memory_gib)
        return Placement(self.provider, remote.cores, remote.memory_gib, remote.gpu)

    def _remote(self, fn: Callable[..., Any]) -> Any | None:
        spec = self.stages.get(fn)
        if spec is None:
            return None
        import modal

        if "." in spec.target:  # "Class.method": a class that keeps its model loaded
            cls_name, method = spec.target.split(".", 1)
            return getattr(modal.Cls.from_name(self.app_name, cls_name)(), method)
        return modal.Function.from_name(self.app_name, spec.target)

    @contextmanager
    def _progress_over_queue(self, items: list[dict[str, Any]]) -> Iterator[list[dict]]:
        """``items`` with each ``progress`` callable replaced by a :class:`QueueProgress`,
        drained into the original while the block runs."""
        sinks = {i: kw["progress"] for i, kw in enumerate(items) if callable(kw.get("progress"))}
        if not sinks:
            yield items
            return
        with self.queue_factory() as queue, ProgressDrain(queue, sinks):
            yield [
                {**kw, "progress": QueueProgress(queue, i)} if i in sinks else kw
                for i, kw in enumerate(items)
            ]

    def call(self, fn, kwargs):
        remote = self._remote(fn)
        if remote is None:
            return fn(**kwargs)
        with self._progress_over_queue([kwargs]) as (kw,):
            return remote.remote(kw)

    def map(self, fn, items, *, max_concurrency=None, on_result=None):
        remote = self._remote(fn)
        if remote is None:
            return super().map(fn, items, max_concurrency=max_concurrency, on_result=on_result)
        # The Modal function's max_containers bounds its concurrency (modal_app.py reads the
        # same setting); results stream back in order as they arrive, for progress.
        out = []
        with self._progress_over_queue(list(items)) as sent:
            for result in remote.map(sent):
                out.append(result)
                if on_result is not None:
                    on_result(result)
        return out


def runs_stages_remotely(settings: Any) -> bool:
    """Whether this deployment's jobs run their GPU stages remotely, side by side (for a
    kind's estimates, made before any executor exists)."""
    return settings.runner == "modal"
