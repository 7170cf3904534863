"""Who runs a job: the context pipelines see, the one execution routine, and the runners.

- ``execute_job(services, job, worker_id, executor)``: builds a ``DbJobContext`` (shared.job_context), heartbeats
  while the pipeline runs, and records the outcome (completed / failed with a stable code /
  canceled). Local threads and Modal's ``run_job`` both call it, so a job's life is the same.
- ``LocalRunner``: worker threads that claim queued jobs with ``FOR UPDATE SKIP LOCKED``, plus a
  maintenance thread that requeues (or fails) jobs whose worker stopped heartbeating and runs the
  retention sweeper every ``retention_sweep_s``.
- ``ModalRunner``: ``run_job.spawn(job_id)`` on the deployed Modal app; stage functions become
  ``.remote()`` / ``.map()`` calls through :class:`ModalExecutor`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from shared import quota
from shared.errors import JobCanceled
from shared.job_context import DbJobContext
from shared.links import download_links
from shared.registry import REMOTE_STAGES
from shared.retention import after_success
from shared.retries import classify, job_retrying
from shared.services import Services

log = logging.getLogger("soundstage.runner")


# -- stage execution: in-process or on Modal ----------------------------------------------------


class LocalExecutor:
    """Stage functions run in this process; ``map`` is a bounded thread pool."""

    def __init__(self, max_workers: int = 2) -> None:
        self.max_workers = max(1, max_workers)

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


class ModalExecutor(LocalExecutor):
    def __init__(self, app_name: str, max_workers: int = 8) -> None:
        super().__init__(max_workers)
        self.app_name = app_name

    def _remote(self, fn: Callable[..., Any]):
        name = REMOTE_STAGES.get(f"{fn.__module__}.{fn.__qualname__}")
        if name is None:
            return None
        import modal

        if "." in name:  # "Class.method": a GPU class that keeps its model loaded
            cls_name, method = name.split(".", 1)
            return getattr(modal.Cls.from_name(self.app_name, cls_name)(), method)
        return modal.Function.from_name(self.app_name, name)

    # Modal stage wrappers in modal_app.py take one positional dict (the stage's keyword
    # arguments), so ``.remote(kw)`` and ``.map([kw, ...])`` share one calling convention.
    def call(self, fn, kwargs):
        remote = self._remote(fn)
        return remote.remote(kwargs) if remote is not None else fn(**kwargs)

    def map(self, fn, items, *, max_concurrency=None, on_result=None):
        remote = self._remote(fn)
        if remote is None:
            return super().map(fn, items, max_concurrency=max_concurrency, on_result=on_result)
        # The Modal function's max_containers bounds its concurrency (modal_app.py reads the
        # same setting); results stream back in order as they arrive, for progress.
        out = []
        for result in remote.map(list(items)):
            out.append(result)
            if on_result is not None:
                on_result(result)
        return out


# -- executing one job --------------------------------------------------------------------------


def execute_job(services: Services, job: dict, worker_id: str, executor: LocalExecutor) -> str:
    """Run a claimed job to its end; returns the final status. Never raises for job errors.

    A transient failure runs the job again in this worker after a backoff (shared.retries);
    each attempt shows in the stage rows (``attempts``, ``attempt_log``) and as a ``message``
    event carrying ``retry``.
    """
    store = services.jobs
    settings = services.settings
    kind = services.kinds.get(job["kind"])
    ctx: DbJobContext | None = None
    stop = threading.Event()
    taken_over = threading.Event()  # another worker owns the job: from then on write nothing
    attempt = {"n": int(job.get("attempts") or 1), "previous": None}

    def lost() -> bool:
        return taken_over.is_set() or (ctx is not None and ctx.lost)

    def beat() -> None:
        while not stop.wait(settings.heartbeat_s):
            try:
                if not store.heartbeat(str(job["id"]), worker_id):
                    taken_over.set()
                    if ctx is not None:
                        ctx.mark_lost()
            except Exception:  # noqa: BLE001 - a missed beat is retried next period
                log.warning("heartbeat failed", extra={"job_id": str(job["id"])})

    def run_once() -> None:
        nonlocal ctx
        if ctx is not None:
            spent = ctx.total_cost_usd
            ctx.cleanup()
        else:
            spent = float(job.get("total_cost_usd") or 0)
        store.clear_outputs(str(job["id"]))  # a retried attempt starts with a clean slate
        ctx = DbJobContext(services, job, kind, worker_id, executor)
        if taken_over.is_set():
            ctx.mark_lost()
        ctx.total_cost_usd = spent  # the budget counts every attempt's spending
        ctx.attempt = attempt["n"]
        ctx.previous_failure = attempt["previous"]
        ctx.materialise_inputs()
        result = kind.run(ctx)
        ctx.check_canceled(force=True)
        quota.enforce_after(services, job)  # the real output sizes against the quota
        store.complete(job, result or {}, download_links(services, str(job["id"]), kind))
        try:
            after_success(services, job)
        except Exception:  # noqa: BLE001 - the job is done; the sweeper tries the files again
            log.exception("retention after success failed", extra={"job_id": str(job["id"])})

    def wait_before_retry(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(0.25, left))
            if ctx is not None:
                ctx.check_canceled(force=True)

    def announce_retry(state) -> None:
        if lost():  # the new owner counts its own attempts
            raise JobCanceled("This worker lost the job (it was taken over).", code="WORKER_LOST")
        failure = classify(state.outcome.exception())
        delay = state.next_action.sleep if state.next_action else 0.0
        attempt["previous"] = failure.code
        attempt["n"] = store.record_retry(
            job,
            attempt=attempt["n"],
            max_attempts=settings.max_attempts,
            code=failure.code,
            message=failure.message,
            delay_s=delay,
        )

    beater = threading.Thread(target=beat, name=f"heartbeat-{str(job['id'])[:8]}", daemon=True)
    beater.start()
    started = time.monotonic()
    status = "lost"  # until the attempt ends one way or another
    retrying = job_retrying(
        attempts=settings.max_attempts - attempt["n"] + 1,
        backoff_s=settings.retry_backoff_s,
        backoff_max_s=settings.retry_backoff_max_s,
        sleep=wait_before_retry,
        before_sleep=announce_retry,
    )
    try:
        retrying(run_once)
        status = "completed"
    except JobCanceled as e:
        if e.code == "WORKER_LOST" or lost():
            status = "lost"  # another worker owns it now; write nothing
        else:
            store.mark_canceled(job)
            status = "canceled"
    except Exception as e:  # noqa: BLE001 - any crash becomes a failed job, never a lost one
        failure = classify(e)
        if lost():  # the job is another worker's now: its end is that worker's to write
            log.warning(
                "lost job failed here", extra={"job_id": str(job["id"]), "code": failure.code}
            )
        else:
            if failure.code == "INTERNAL_ERROR":
                log.exception("job crashed", extra={"job_id": str(job["id"]), "kind": job["kind"]})
            store.fail(job, failure.code, failure.message, failure.retryable)
            status = "failed"
    finally:
        stop.set()
        if ctx is not None:
            ctx.cleanup()
        if status != "lost":
            quota.release(services.db, str(job["id"]))
    log.info(
        "job finished",
        extra={
            "job_id": str(job["id"]),
            "kind": job["kind"],
            "status": status,
            "attempts": attempt["n"],
            "duration_s": round(time.monotonic() - started, 3),
        },
    )
    return status


# -- runners ------------------------------------------------------------------------------------


def new_worker_id(prefix: str = "local") -> str:
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class LocalRunner:
    """Worker threads in this process, plus stale-job recovery and the retention sweeper."""

    def __init__(
        self, services: Services, workers: int | None = None, *, maintenance: bool = True
    ) -> None:
        self.services = services
        self.n_workers = services.settings.workers if workers is None else workers
        self.executor = LocalExecutor(max_workers=max(2, self.n_workers))
        self.maintenance = maintenance
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.worker_id = new_worker_id()

    def submit(self, job_id: str) -> None:
        self._wake.set()

    def start(self) -> LocalRunner:
        for i in range(self.n_workers):
            t = threading.Thread(target=self._work, name=f"worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.maintenance:
            t = threading.Thread(target=self._maintain, name="maintenance", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)

    def run_one(self, job_id: str | None = None) -> str | None:
        """Claim one queued job (or ``job_id``) and run it here; None if nothing was claimable."""
        job = self.services.jobs.claim(self.worker_id, job_id)
        if job is None:
            return None
        return execute_job(self.services, job, self.worker_id, self.executor)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_one() is None:
                    self._wake.wait(1.0)
                    self._wake.clear()
            except Exception:  # noqa: BLE001 - keep the worker alive (e.g. DB restart)
                log.exception("worker loop error")
                self._stop.wait(2.0)

    def _maintain(self) -> None:
        from shared.retention import sweep

        s = self.services.settings
        next_sweep = time.monotonic() + 5.0
        while not self._stop.wait(min(5.0, s.stale_after_s / 2)):
            try:
                if self.services.jobs.recover_stale(s.stale_after_s, s.max_attempts):
                    self._wake.set()
                if time.monotonic() >= next_sweep:
                    sweep(self.services)
                    next_sweep = time.monotonic() + s.retention_sweep_s
            except Exception:  # noqa: BLE001
                log.exception("maintenance error")


class ModalRunner:
    """Jobs run in Modal: ``run_job.spawn(job_id)``; recovery runs on a Modal schedule."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def submit(self, job_id: str) -> None:
        import modal

        fn = modal.Function.from_name(self.services.settings.modal_app_name, "run_job")
        fn.spawn(job_id)

    def start(self) -> ModalRunner:
        return self

    def stop(self, timeout: float = 0) -> None:
        return None


def open_runner(services: Services) -> LocalRunner | ModalRunner:
    if services.settings.runner == "modal":
        return ModalRunner(services)
    return LocalRunner(services)


def run_job_by_id(services: Services, job_id: str, executor: LocalExecutor | None = None) -> str:
    """What Modal's ``run_job`` does: claim this job and run it (no-op if already taken)."""
    worker_id = new_worker_id("modal")
    job = services.jobs.claim(worker_id, job_id)
    if job is None:
        return "not-claimed"
    executor = executor or ModalExecutor(services.settings.modal_app_name)
    return execute_job(services, job, worker_id, executor)
