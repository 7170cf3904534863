"""The job context a pipeline sees while a worker runs it: stages, progress, costs, outputs,
caches and cancellation, each written to Postgres as rows and events (see shared.context)."""

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

from psycopg.types.json import Jsonb

from shared import prices
from shared.context import InputFile, OutputFile
from shared.errors import JobCanceled
from shared.executors import Placement
from shared.library import link_job, register_output
from shared.registry import JobKind
from shared.services import Services
from shared.storage import safe_filename

log = logging.getLogger("soundstage.runner")

PROGRESS_EVENT_INTERVAL_S = 0.25


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


def _attempt_entry(attempt: int, status: str, duration_s: float, exc: BaseException | None) -> dict:
    """One line of a stage's ``attempt_log``: which attempt, how it ended, and why."""
    entry: dict[str, Any] = {
        "attempt": attempt,
        "status": status,
        "duration_s": round(duration_s, 3),
    }
    if exc is not None:
        from shared.retries import classify

        failure = classify(exc)
        entry["code"] = failure.code
        entry["message"] = failure.message if failure.code == "INTERNAL_ERROR" else str(exc)[:300]
    return entry


class _Stage:
    def __init__(self, ctx: DbJobContext, name: str, engine: str | None) -> None:
        self.ctx = ctx
        self.name = name
        self.engine = engine

    def progress(self, fraction: float, message: str | None = None) -> None:
        self.ctx._stage_progress(self.name, fraction, message)


class DbJobContext:
    """A :class:`shared.context.JobContext` that writes rows and events as the job runs."""

    def __init__(
        self, services: Services, job: dict, kind: JobKind, worker_id: str, executor: StageExecutor
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
        self._weights = self._stage_offsets(kind.stages)
        self._current: str | None = None
        self._last_event = 0.0
        self._last_pct = -1.0
        self._last_cancel_check = 0.0
        self._lost = threading.Event()
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self.attempt = int(job.get("attempts") or 1)  # set by the runner on a retry
        self.previous_failure: str | None = None  # the code the last attempt failed with

    @staticmethod
    def _stage_offsets(stages: list[tuple[str, float]]) -> dict[str, tuple[float, float]]:
        total = sum(w for _, w in stages) or 1.0
        out, acc = {}, 0.0
        for name, w in stages:
            out[name] = (acc / total * 100.0, w / total * 100.0)
            acc += w
        return out

    # inputs ---------------------------------------------------------------------------------

    def materialise_inputs(self) -> None:
        folder = self.workdir / "inputs"
        for i, spec in enumerate(self.job["inputs"]):
            dest = folder / f"{i}_{safe_filename(spec.get('filename', 'input'))}"
            self.services.storage.download(spec["bucket"], spec["path"], dest)
            self.inputs.append(
                InputFile(
                    path=dest,
                    filename=spec.get("filename", dest.name),
                    bucket=spec["bucket"],
                    object_path=spec["path"],
                    size_bytes=int(spec.get("size_bytes", 0)),
                    sha256=spec.get("sha256", ""),
                )
            )

    # stages and progress ---------------------------------------------------------------------

    @contextmanager
    def stage(self, name: str, engine: str | None = None) -> Iterator[_Stage]:
        self.check_canceled(force=True)
        handle = _Stage(self, name, engine)
        started = time.monotonic()
        with self.store.db.service() as conn, conn.transaction():
            stage_attempt = conn.execute(
                "insert into job_stages (job_id, user_id, name, position, status, engine, attempts,"
                " started_at) values (%s, %s, %s, 1000, 'running', %s, 1, now())"
                " on conflict (job_id, name) do update set status = 'running', engine = excluded.engine,"
                " attempts = job_stages.attempts + 1, started_at = now(), completed_at = null, error = null"
                " returning attempts",
                (self.job_id, self.user_id, name, engine),
            ).fetchone()["attempts"]
            pct = self._weights.get(name, (None, 0))[0]
            conn.execute(
                "update jobs set current_stage = %s, progress = greatest(progress, coalesce(%s, progress)),"
                " updated_at = now() where id = %s",
                (name, pct, self.job_id),
            )
            self.store.add_event(
                conn,
                self.job,
                "stage_update",
                {
                    "stage": name,
                    "status": "running",
                    "engine": engine,
                    "progress": pct,
                    "attempt": stage_attempt,
                },
            )
        self._current = name
        log.info("stage started", extra={"job_id": self.job_id, "stage": name, "engine": engine})
        try:
            yield handle
        except BaseException as exc:
            duration = time.monotonic() - started
            status = "skipped" if isinstance(exc, JobCanceled) else "failed"
            with self.store.db.service() as conn, conn.transaction():
                conn.execute(
                    "update job_stages set status = %s, completed_at = now(), duration_s = %s,"
                    " engine = %s, error = %s, attempt_log = attempt_log || %s"
                    " where job_id = %s and name = %s",
                    (
                        status,
                        duration,
                        handle.engine,
                        str(exc)[:500],
                        Jsonb([_attempt_entry(stage_attempt, status, duration, exc)]),
                        self.job_id,
                        name,
                    ),
                )
                self.store.add_event(
                    conn,
                    self.job,
                    "stage_update",
                    {
                        "stage": name,
                        "status": status,
                        "engine": handle.engine,
                        "duration_s": round(duration, 3),
                        "attempt": stage_attempt,
                        "error": _attempt_entry(stage_attempt, status, duration, exc).get("code"),
                    },
                )
            raise
        duration = time.monotonic() - started
        start_pct, width = self._weights.get(name, (0.0, 0.0))
        with self.store.db.service() as conn, conn.transaction():
            conn.execute(
                "update job_stages set status = 'completed', completed_at = now(), duration_s = %s,"
                " engine = %s, attempt_log = attempt_log || %s where job_id = %s and name = %s",
                (
                    duration,
                    handle.engine,
                    Jsonb([_attempt_entry(stage_attempt, "completed", duration, None)]),
                    self.job_id,
                    name,
                ),
            )
            self.store.add_event(
                conn,
                self.job,
                "stage_update",
                {
                    "stage": name,
                    "status": "completed",
                    "engine": handle.engine,
                    "duration_s": round(duration, 3),
                    "attempt": stage_attempt,
                },
            )
        self._set_progress(start_pct + width, None, force=True)
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
        start, width = self._weights.get(name, (None, None))
        if start is None:
            self.message(message) if message else None
            return
        self._set_progress(start + width * min(1.0, max(0.0, fraction)), message)

    def progress(self, percent: float, message: str | None = None) -> None:
        self._set_progress(percent, message)

    def _set_progress(self, percent: float, message: str | None, force: bool = False) -> None:
        percent = round(min(100.0, max(0.0, float(percent))), 1)
        now = time.monotonic()
        if not force and (
            now - self._last_event < PROGRESS_EVENT_INTERVAL_S or percent <= self._last_pct
        ):
            return
        self._last_event = now
        self._last_pct = max(self._last_pct, percent)
        elapsed = now - self._started
        remaining = elapsed * (100.0 - percent) / percent if percent >= 5 else None
        with self.store.db.service() as conn, conn.transaction():
            conn.execute(
                "update jobs set progress = greatest(progress, %s),"
                " estimated_remaining_s = coalesce(%s, estimated_remaining_s), updated_at = now()"
                " where id = %s",
                (percent, remaining, self.job_id),
            )
            data = {"progress": percent, "stage": self._current}
            if message:
                data["message"] = message
            if remaining is not None:
                data["estimated_remaining_s"] = round(remaining, 1)
            self.store.add_event(conn, self.job, "progress", data)
        self.check_canceled()

    def message(self, text: str, **data: Any) -> None:
        self.store.event(self.job, "message", {"message": text, "stage": self._current, **data})

    # money -------------------------------------------------------------------------------------

    def cost(
        self, provider: str, units: float, usd: float, *, unit: str = "seconds", detail: str = ""
    ) -> None:
        with self._lock:
            self.total_cost_usd += float(usd)
            total = self.total_cost_usd
        with self.store.db.service() as conn, conn.transaction():
            conn.execute(
                "insert into job_costs (job_id, user_id, stage, provider, units, unit, cost_usd, detail)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s)",
                (self.job_id, self.user_id, self._current, provider, units, unit, usd, detail),
            )
            conn.execute(
                "update jobs set total_cost_usd = total_cost_usd + %s where id = %s",
                (usd, self.job_id),
            )
            if self._current:
                conn.execute(
                    "update job_stages set cost_usd = cost_usd + %s where job_id = %s and name = %s",
                    (usd, self.job_id, self._current),
                )
            self.store.add_event(
                conn,
                self.job,
                "cost_update",
                {
                    "stage": self._current,
                    "provider": provider,
                    "units": units,
                    "unit": unit,
                    "cost_usd": round(float(usd), 6),
                    "total_cost_usd": round(total, 6),
                },
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
        fname = safe_filename(filename or Path(path).name)
        obj_path = f"{self.user_id}/{self.job_id}/{safe_filename(name)}-{fname}"
        stored = self.services.storage.put(
            bucket, obj_path, Path(path), owner=self.user_id, content_type=content_type
        )
        # Every output is a library file; bytes the user already has stay stored once.
        lib = register_output(
            self.services, self.user_id, self.job_id, name, stored, Path(path), fname, meta
        )
        if lib is not None:
            bucket, obj_path = lib["bucket"], lib["path"]
        out = OutputFile(
            name=name,
            bucket=bucket,
            object_path=obj_path,
            content_type=stored.content_type,
            size_bytes=stored.size_bytes,
            filename=fname,
            meta=meta or {},
        )
        record = {
            "name": name,
            "bucket": bucket,
            "path": obj_path,
            "filename": fname,
            "content_type": stored.content_type,
            "size_bytes": stored.size_bytes,
            "meta": meta or {},
            "file_id": str(lib["id"]) if lib is not None else None,
        }
        self._record_output(name, record)
        return out

    def reuse_output(self, name: str, stored: dict[str, Any]) -> OutputFile | None:
        """Attach an output an earlier job of this user stored (a content-hash cache hit).

        A library file is shared, not copied: the job is linked to it, and deleting the earlier
        job keeps it while this one uses it. Otherwise the object is copied into this job's
        folder. None when the earlier object is gone (then recompute).
        """
        src = stored.get("object_path") or stored.get("path")
        bucket = stored.get("bucket", "audio-outputs")
        if not src or not src.startswith(f"{self.user_id}/"):
            return None  # only ever the same user's objects
        shared = self._reuse_library_file(name, bucket, src, stored)
        if shared is not None:
            return shared
        fname = safe_filename(stored.get("filename") or Path(src).name)
        obj_path = f"{self.user_id}/{self.job_id}/{safe_filename(name)}-{fname}"
        copied = self.services.storage.copy(bucket, src, obj_path, owner=self.user_id)
        if copied is None:
            return None
        meta = stored.get("meta") or {}
        record = {
            "name": name,
            "bucket": bucket,
            "path": obj_path,
            "filename": fname,
            "content_type": copied.content_type,
            "size_bytes": copied.size_bytes,
            "meta": meta,
        }
        self._record_output(name, record)
        return OutputFile(
            name=name,
            bucket=bucket,
            object_path=obj_path,
            content_type=copied.content_type,
            size_bytes=copied.size_bytes,
            filename=fname,
            meta=meta,
        )

    def fetch_stored(self, stored: dict[str, Any], dest: Path) -> Path | None:
        """Download an object this user stored earlier (a cache hit) to ``dest``; None when it
        is gone or not this user's."""
        src = stored.get("object_path") or stored.get("path")
        if not src or not src.startswith(f"{self.user_id}/"):
            return None
        try:
            self.services.storage.download(stored.get("bucket", "audio-outputs"), src, dest)
        except Exception:  # noqa: BLE001 - a vanished cache object means: compute again
            return None
        return dest if dest.exists() else None

    def _reuse_library_file(
        self, name: str, bucket: str, src: str, stored: dict[str, Any]
    ) -> OutputFile | None:
        with self.store.db.service() as conn:
            row = conn.execute(
                "select * from files where user_id = %s and bucket = %s and path = %s",
                (self.user_id, bucket, src),
            ).fetchone()
        if row is None:
            return None
        link_job(self.services, self.job_id, self.user_id, str(row["id"]), "output", name)
        meta = stored.get("meta") or {}
        record = {
            "name": name,
            "bucket": bucket,
            "path": src,
            "filename": row["name"],
            "content_type": row["content_type"],
            "size_bytes": int(row["size_bytes"]),
            "meta": meta,
            "file_id": str(row["id"]),
        }
        self._record_output(name, record)
        return OutputFile(
            name=name,
            bucket=bucket,
            object_path=src,
            content_type=row["content_type"],
            size_bytes=int(row["size_bytes"]),
            filename=row["name"],
            meta=meta,
        )

    def _record_output(self, name: str, record: dict[str, Any]) -> None:
        with self.store.db.service() as conn, conn.transaction():
            conn.execute(
                "update jobs set outputs = (select coalesce(jsonb_agg(o), '[]'::jsonb) from"
                " jsonb_array_elements(outputs) o where o->>'name' <> %s) || jsonb_build_array(%s::jsonb)"
                " where id = %s",
                (name, Jsonb(record), self.job_id),
            )

    def discard_outputs(self, names: Sequence[str]) -> list[str]:
        """Remove outputs that served their purpose (e.g. video clips after composition)."""
        job = self.store.load(self.job_id)
        gone = [o for o in job["outputs"] if o["name"] in set(names)]
        by_bucket: dict[str, list[str]] = {}
        for o in gone:
            by_bucket.setdefault(o["bucket"], []).append(o["path"])
        for bucket, paths in by_bucket.items():
            self.services.storage.remove(bucket, paths)
        with self.store.db.service() as conn:
            conn.execute(
                "update jobs set outputs = (select coalesce(jsonb_agg(o), '[]'::jsonb) from"
                " jsonb_array_elements(outputs) o where not (o->>'name' = any(%s))) where id = %s",
                (list(names), self.job_id),
            )
        return [o["name"] for o in gone]

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
        if max_concurrency is None and on_result is None:
            return self.executor.map(fn, list(items))
        return self.executor.map(
            fn, list(items), max_concurrency=max_concurrency, on_result=on_result
        )

    # cache -------------------------------------------------------------------------------------

    def cache_get(self, namespace: str, key: str) -> Any | None:
        with self.store.db.service() as conn:
            row = conn.execute(
                "select value from analysis_cache where user_id = %s and namespace = %s and key = %s"
                " and expires_at > now()",
                (self.user_id, namespace, key),
            ).fetchone()
        return row["value"] if row else None

    def cache_put(self, namespace: str, key: str, value: Any) -> None:
        with self.store.db.service() as conn:
            conn.execute(
                "insert into analysis_cache (user_id, namespace, key, value) values (%s, %s, %s, %s)"
                " on conflict (user_id, namespace, key) do update set value = excluded.value,"
                " created_at = now(), expires_at = now() + interval '14 days'",
                (self.user_id, namespace, key, Jsonb(value)),
            )

    # cancellation ------------------------------------------------------------------------------

    def check_canceled(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._lost.is_set():
            raise JobCanceled("This worker lost the job (it was taken over).", code="WORKER_LOST")
        if not force and now - self._last_cancel_check < 1.0:
            return
        self._last_cancel_check = now
        row = self.store.status_of(self.job_id)
        if row is None or row["cancel_requested"]:
            raise JobCanceled("Canceled by the user.")

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
