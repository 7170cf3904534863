"""Who runs a job: the one execution routine and the runners (where stages run: shared.executors).

- ``execute_job(services, job, worker_id, executor)``: builds a ``DbJobContext`` (shared.job_context), heartbeats
  while the pipeline runs, and records the outcome (completed / failed with a stable code /
  canceled). Local threads and Modal's ``run_job`` both call it, so a job's life is the same.
- ``LocalRunner``: worker threads that claim queued jobs with ``FOR UPDATE SKIP LOCKED``, plus a
  maintenance thread that requeues (or fails) jobs whose worker stopped heartbeating and runs the
  retention sweeper every ``retention_sweep_s``.
- ``ModalRunner``: ``run_job.spawn(job_id)`` on the deployed Modal app; there stage functions
  become ``.remote()`` / ``.map()`` calls through :class:`shared.executors.ModalExecutor`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from shared import quota
from shared.errors import JobCanceled, WorkerLost
from shared.executors import LocalExecutor
from shared.job_context import DbJobContext
from shared.links import download_links
from shared.retention import after_success
from shared.retries import classify, job_retrying
from shared.services import Services

log = logging.getLogger("soundstage.runner")


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

    def beat() -> None:
        while not stop.wait(settings.heartbeat_s):
            try:
                if not store.heartbeat(str(job["id"]), worker_id):
                    taken_over.set()
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
        ctx = DbJobContext(services, job, kind, worker_id, executor, lost=taken_over)
        ctx.total_cost_usd = spent  # the budget counts every attempt's spending
        ctx.attempt = attempt["n"]
        ctx.previous_failure = attempt["previous"]
        ctx.materialise_inputs()
        result = kind.run(ctx)
        ctx.check_canceled(force=True)
        quota.enforce_after(services, job)  # the real output sizes against the quota
        if not store.complete(job, result or {}, download_links(services, str(job["id"]), kind)):
            raise WorkerLost()
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
        if taken_over.is_set():  # the new owner counts its own attempts
            raise WorkerLost()
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
    except JobCanceled:
        # A cancel takes only while this worker still owns the job; else (WorkerLost among
        # others) another worker owns it now and this one writes nothing.
        if store.mark_canceled(job, owner=worker_id):
            status = "canceled"
    except Exception as e:  # noqa: BLE001 - any crash becomes a failed job, never a lost one
        failure = classify(e)
        if taken_over.is_set():  # the job is another worker's now: its end is that worker's
            log.warning(
                "lost job failed here", extra={"job_id": str(job["id"]), "code": failure.code}
            )
        else:
            if failure.code == "INTERNAL_ERROR":
                log.exception("job crashed", extra={"job_id": str(job["id"]), "kind": job["kind"]})
            if store.fail(job, failure.code, failure.message, failure.retryable):
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
                # Cleared before the claim, so a submit() during it is not lost: the wait below
                # then returns at once and the new job is claimed without a poll interval.
                self._wake.clear()
                if self.run_one() is None:
                    self._wake.wait(1.0)
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


def run_job_by_id(services: Services, job_id: str, executor: LocalExecutor) -> str:
    """What Modal's ``run_job`` does: claim this job and run it with ``executor`` (a
    ``ModalExecutor`` that modal_app.py builds with its stage table); no-op if already taken."""
    worker_id = new_worker_id("modal")
    job = services.jobs.claim(worker_id, job_id)
    if job is None:
        return "not-claimed"
    return execute_job(services, job, worker_id, executor)
