"""The job context a pipeline sees while a worker runs it (see shared.context): it decides
when a stage starts and ends, how progress maps onto the job's 0-100, what has been spent, and
whether the job may go on (canceled, over budget, or taken over by another worker). What it
records goes through the job store (shared.jobs); files through shared.job_files; cached
results through shared.analysis_cache."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from shared import prices
from shared.analysis_cache import AnalysisCache
from shared.context import InputFile, OutputFile
from shared.errors import JobCanceled, WorkerLost
from shared.executors import Placement
from shared.job_files import JobFiles
from shared.job_progress import ProgressPlan
from shared.registry import JobKind
from shared.services import Services

log = logging.getLogger("soundstage.runner")


class StageExecutor(Protocol):
    """Runs stage functions: in-process (LocalExecutor) or as Modal functions (ModalExecutor)."""

    def placement(
        self, stage: Callable[..., Any] | str, *, cores: float = ..., memory_gib: float = ...
    ) -> Placement: ...

    def call(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any: ...

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[dict[str, Any]],
        *,
        max_concurrency: int | None = None,
        on_result: Callable[[Any], None] | None = None,
    ) -> list[Any]: ...


class _Stage:
    def __init__(self, ctx: DbJobContext, name: str, engine: str | None) -> None:
        self.ctx = ctx
        self.name = name
        self.engine = engine

    def progress(self, fraction: float, message: str | None = None) -> None:
        self.ctx._stage_progress(self.name, fraction, message)


class DbJobContext:
    """A :class:`shared.context.JobContext` for a worker that claimed ``job``: it records the
    job's course through the job store as the pipeline runs."""

    def __init__(
        self,
        services: Services,
        job: dict,
        kind: JobKind,
        worker_id: str,
        executor: StageExecutor,
        lost: threading.Event | None = None,
    ) -> None:
        self.services = services
        self.store = services.jobs
        self.job = job
        self.job_id = str(job["id"])
        self.user_id = str(job["user_id"])
        self.kind = kind.name
        self.kind_def = kind
        self.worker_id = worker_id
        self.executor = executor
        self.params = kind.params.model_validate(job["params"])
        self.budget_usd = prices.job_budget_usd(job.get("budget_usd"), self.params)
        self.total_cost_usd = 0.0
        self.workdir = Path(tempfile.mkdtemp(prefix=f"soundstage-{self.job_id[:8]}-"))
        self.inputs: list[InputFile] = []
        self._progress = ProgressPlan(kind.stages)
        self._current: str | None = None
        self._last_cancel_check = 0.0
        # Set once another worker owns the job; the runner shares its own (its heartbeat sets it).
        self._lost = lost if lost is not None else threading.Event()
        self._lock = threading.Lock()
        self.attempt = int(job.get("attempts") or 1)  # set by the runner on a retry
        self.previous_failure: str | None = None  # the code the last attempt failed with
        self._files = JobFiles(services, self.job_id, self.user_id)
        self._cache = AnalysisCache(services.db)

    # inputs ---------------------------------------------------------------------------------

    def materialise_inputs(self) -> None:
        self.inputs.extend(self._files.download_inputs(self.job["inputs"], self.workdir / "inputs"))

    # stages and progress ---------------------------------------------------------------------

    @contextmanager
    def stage(self, name: str, engine: str | None = None) -> Iterator[_Stage]:
        self.check_canceled(force=True)
        handle = _Stage(self, name, engine)
        started = time.monotonic()
        attempt = self.store.start_stage(self.job, name, engine, self._progress.start_of(name))
        self._current = name
        log.info("stage started", extra={"job_id": self.job_id, "stage": name, "engine": engine})
        try:
            yield handle
        except BaseException as exc:
            if not self.lost:  # the stage row is the new owner's now
                self.store.finish_stage(
                    self.job,
                    name,
                    attempt=attempt,
                    status="skipped" if isinstance(exc, JobCanceled) else "failed",
                    engine=handle.engine,
                    duration_s=time.monotonic() - started,
                    exc=exc,
                )
            raise
        self._ensure_owner()
        duration = time.monotonic() - started
        self.store.finish_stage(
            self.job,
            name,
            attempt=attempt,
            status="completed",
            engine=handle.engine,
            duration_s=duration,
        )
        self._set_progress(self._progress.end_of(name), None, force=True)
        log.info(
            "stage completed",
            extra={
                "job_id": self.job_id,
                "stage": name,
                "engine": handle.engine,
                "duration_s": round(duration, 3),
            },
        )

    def _stage_progress(self, name: str, fraction: float, message: str | None) -> None:
        percent = self._progress.within(name, fraction)
        if percent is None:  # a stage the kind does not list: its words still reach the user
            self.message(message) if message else None
            return
        self._set_progress(percent, message)

    def progress(self, percent: float, message: str | None = None) -> None:
        self._set_progress(percent, message)

    def _set_progress(self, percent: float, message: str | None, force: bool = False) -> None:
        self._ensure_owner()
        due = self._progress.update(percent, force=force)
        if due is None:
            return
        percent, remaining = due
        self.store.record_progress(
            self.job, percent, stage=self._current, remaining_s=remaining, message=message
        )
        self.check_canceled()

    def message(self, text: str, **data: Any) -> None:
        self._ensure_owner()
        self.store.event(self.job, "message", {"message": text, "stage": self._current, **data})

    # money -------------------------------------------------------------------------------------

    def cost(
        self, provider: str, units: float, usd: float, *, unit: str = "seconds", detail: str = ""
    ) -> None:
        with self._lock:
            self.total_cost_usd += float(usd)
            total = self.total_cost_usd
        self.store.record_cost(
            self.job,
            stage=self._current,
            provider=provider,
            units=units,
            unit=unit,
            cost_usd=usd,
            detail=detail,
            total_cost_usd=total,
        )
        log.info(
            "cost",
            extra={"job_id": self.job_id, "stage": self._current, "cost_usd": round(float(usd), 6)},
        )

    def ensure_budget(self, next_cost_usd: float, what: str = "the next step") -> None:
        """Raise BUDGET_EXCEEDED if spending ``next_cost_usd`` more would pass the job's budget."""
        prices.check_budget(self.total_cost_usd, next_cost_usd, self.budget_usd, what)

    def compute_price(
        self,
        stage: Callable[..., Any] | str,
        wall_s: float,
        *,
        cores: float = 2.0,
        memory_gib: float = 4.0,
    ) -> float:
        """What ``wall_s`` seconds of ``stage`` (a stage function, or a name for work done in
        the pipeline's own process with ``cores``/``memory_gib``) cost where it runs."""
        where = self.executor.placement(stage, cores=cores, memory_gib=memory_gib)
        return prices.compute_usd(where, wall_s)

    def compute_cost(
        self,
        stage: Callable[..., Any] | str,
        wall_s: float,
        *,
        cores: float = 2.0,
        memory_gib: float = 4.0,
        detail: str | None = None,
        unit: str = "wall_seconds",
    ) -> float:
        """Record ``wall_s`` seconds of compute as a cost row priced where the executor ran it
        (free, provider ``local``, in this process; Modal's price on Modal). Returns the USD."""
        where = self.executor.placement(stage, cores=cores, memory_gib=memory_gib)
        usd, provider, detail = prices.compute_charge(where, stage, wall_s, detail)
        self.cost(provider, round(wall_s, 3), round(usd, 6), unit=unit, detail=detail)
        return usd

    @property
    def settings(self) -> Any:
        """The deployment's settings, for pipelines (stage functions get values as arguments)."""
        return self.services.settings

    # files -------------------------------------------------------------------------------------

    def output(
        self,
        name: str,
        path: Path,
        *,
        bucket: str = "audio-outputs",
        content_type: str | None = None,
        filename: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> OutputFile:
        self._ensure_owner()
        return self._files.keep(
            name, path, bucket=bucket, content_type=content_type, filename=filename, meta=meta
        )

    def reuse_output(self, name: str, stored: dict[str, Any]) -> OutputFile | None:
        """Attach an output an earlier job of this user stored (a content-hash cache hit): a
        library file is linked, anything else copied; None when it is gone (recompute)."""
        self._ensure_owner()
        return self._files.reuse(name, stored)

    def fetch_stored(self, stored: dict[str, Any], dest: Path) -> Path | None:
        """Download an object this user stored earlier (a cache hit) to ``dest``; None when it
        is gone or not this user's."""
        return self._files.fetch(stored, dest)

    def discard_outputs(self, names: Sequence[str]) -> list[str]:
        """Remove outputs that served their purpose (e.g. video clips after composition)."""
        self._ensure_owner()
        return self._files.discard(names)

    # fan-out -----------------------------------------------------------------------------------

    def call(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run the stage ``fn`` where the executor puts it; a ``progress`` callable in
        ``kwargs`` reports back here wherever that is. Refused once the budget is spent."""
        self.ensure_budget(0.0, f"running {fn.__name__}")
        return self.executor.call(fn, kwargs)

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[dict[str, Any]],
        *,
        max_concurrency: int | None = None,
        on_result: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        """Fan out ``fn`` over ``items`` (``max_concurrency`` at a time where this process runs
        them); ``on_result`` is called as each finishes. Refused once the budget is spent."""
        self.ensure_budget(0.0, f"running {fn.__name__}")
        return self.executor.map(
            fn, list(items), max_concurrency=max_concurrency, on_result=on_result
        )

    # cache -------------------------------------------------------------------------------------

    def cache_get(self, namespace: str, key: str) -> Any | None:
        return self._cache.get(self.user_id, namespace, key)

    def cache_put(self, namespace: str, key: str, value: Any) -> None:
        self._cache.put(self.user_id, namespace, key, value)

    # cancellation and ownership ------------------------------------------------------------------

    def mark_lost(self) -> None:
        """Another worker owns the job now (this one missed its heartbeat): from here on this
        context writes nothing over the new owner's state (stages, progress, messages,
        outputs) and the pipeline stops at its next check with WORKER_LOST. Costs it still
        runs up are recorded: that money was spent."""
        self._lost.set()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def _ensure_owner(self) -> None:
        if self._lost.is_set():
            raise WorkerLost()

    def check_canceled(self, force: bool = False) -> None:
        self._ensure_owner()
        now = time.monotonic()
        if not force and now - self._last_cancel_check < 1.0:
            return
        self._last_cancel_check = now
        row = self.store.status_of(self.job_id)
        if row is not None and row["worker_id"] != self.worker_id:
            # Given to another worker since the last heartbeat: even a cancel is that worker's
            # to write now (this one would release the new owner's reservation).
            self.mark_lost()
            self._ensure_owner()
        if row is None or row["cancel_requested"]:
            raise JobCanceled("Canceled by the user.")

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
