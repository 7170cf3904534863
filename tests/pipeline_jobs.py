"""Pipeline-level runs for tests, each a real job: stored inputs, a ``jobs`` row claimed by a
worker id, the kind's pipeline run here in the worker's own job context (``DbJobContext`` with a
``LocalExecutor``), and what it recorded read back from the job store and storage.

The runs go to a database of their own on the session's embedded Postgres (no worker polls it),
so a test's job is never claimed by the app's worker threads, and a pipeline's exception reaches
the test as raised (the worker would turn it into a failed job). Cancellation, budget, the
analysis cache and reused outputs are the real ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel

from shared.config import get_settings
from shared.context import OutputFile
from shared.errors import JobCanceled
from shared.executors import LocalExecutor
from shared.job_context import DbJobContext
from shared.job_progress import ProgressPlan
from shared.retries import classify
from shared.services import Services
from shared.storage import safe_filename
from shared.submit import parse_params


@dataclass
class PipelineRun:
    """What a completed job left: its result, outputs (as local files in storage), the stages
    it entered (in order), its events as ``(type, data)``, and its cost rows."""

    result: dict
    outputs: dict[str, Path]
    stages: list[dict]
    events: list[tuple[str, dict]]
    costs: list[dict]
    output_files: dict[str, OutputFile] = field(default_factory=dict)
    job_id: str = ""


def new_user_id(services: Services) -> str:
    """A fresh user with no password (nobody logs in as it): each test's jobs, cache and library
    are its own."""
    email = f"pipeline-{uuid.uuid4().hex[:12]}@example.com"
    with services.db.service() as conn:
        row = conn.execute(
            "insert into auth.users (email, encrypted_password) values (%s, null) returning id",
            (email,),
        ).fetchone()
    return str(row["id"])


class PipelineJobs:
    """Runs jobs of one user (``user_id``) on ``services``; every run of one instance shares the
    user's analysis cache and library, as one user's jobs do."""

    def __init__(self, services: Services, user_id: str | None = None) -> None:
        self.services = services
        self.user_id = user_id or new_user_id(services)
        self.worker_id = f"pipeline-test-{uuid.uuid4().hex[:6]}"
        self.current_job_id: str | None = None  # the job running now, or the last one

    def __call__(
        self,
        kind: str,
        files: list[Path] = (),
        params: dict | BaseModel | None = None,
        *,
        budget_usd: float | None = 20.0,
        every_progress: bool = False,
    ) -> PipelineRun:
        """Run a ``kind`` job on ``files`` to its end. A pipeline error is raised as the
        pipeline raised it, after the job is recorded failed (or canceled). ``every_progress``
        makes each progress report an event (the user's stream gets one per 0.25 s at most),
        for tests that read the reports one by one."""
        store = self.services.jobs
        k = self.services.kinds.get(kind)
        model = params if isinstance(params, BaseModel) else parse_params(k, params or {})
        job_id = str(uuid.uuid4())
        inputs = [self._store_input(job_id, i, Path(f)) for i, f in enumerate(files)]
        store.create(
            job_id=job_id,
            user_id=self.user_id,
            kind=k.name,
            params=model.model_dump(mode="json"),
            inputs=inputs,
            stages=k.stage_names(),
            idempotency_key=None,
            estimated_duration_s=0.0,
            estimated_cost_usd=0.0,
            budget_usd=budget_usd,
        )
        job = store.claim(self.worker_id, job_id)
        assert job is not None, "nothing else claims jobs on the pipeline tests' database"
        self.current_job_id = job_id
        # The settings as the test has set them now (keys, engines): the services are opened once
        # per session, but a worker process reads its environment when it starts.
        services = replace(self.services, settings=get_settings())
        ctx = DbJobContext(services, job, k, self.worker_id, LocalExecutor(max_workers=2))
        if every_progress:
            ctx._progress = ProgressPlan(k.stages, min_interval_s=0.0)
        try:
            ctx.materialise_inputs()
            result = k.run(ctx)
            ctx.check_canceled(force=True)
            store.complete(job, result or {})
        except JobCanceled:
            store.mark_canceled(job)
            raise
        except Exception as e:
            failure = classify(e)
            store.fail(job, failure.code, failure.message, failure.retryable)
            raise
        finally:
            ctx.cleanup()
        return self.read(job_id)

    def _store_input(self, job_id: str, index: int, path: Path) -> dict:
        name = safe_filename(path.name)
        object_path = f"{self.user_id}/{job_id}/input-{index}-{name}"
        obj = self.services.storage.put("audio-uploads", object_path, path, owner=self.user_id)
        return {
            "filename": path.name,
            "bucket": "audio-uploads",
            "path": object_path,
            "size_bytes": obj.size_bytes,
            "sha256": obj.sha256,
            "content_type": obj.content_type,
        }

    def read(self, job_id: str) -> PipelineRun:
        """The job as the store and storage hold it, in the shape pipeline tests read."""
        store, storage = self.services.jobs, self.services.storage
        job = store.get(self.user_id, job_id)
        entered = [s for s in job["stages"] if s["status"] != "pending"]
        entered.sort(key=lambda s: s["started_at"] or "")
        output_files = {
            o["name"]: OutputFile(
                name=o["name"],
                bucket=o["bucket"],
                object_path=o["path"],
                content_type=o["content_type"],
                size_bytes=o["size_bytes"],
                filename=o["filename"],
                meta=o.get("meta") or {},
            )
            for o in job["outputs"]
        }
        return PipelineRun(
            result=job["result"],
            outputs={
                n: storage.file_path(o.bucket, o.object_path) for n, o in output_files.items()
            },
            stages=[{k: s[k] for k in ("name", "status", "engine", "duration_s")} for s in entered],
            events=[
                (e["type"], e["data"]) for e in store.events_after(self.user_id, job_id, 0, 10**6)
            ],
            costs=[{k: v for k, v in c.items() if k != "created_at"} for c in job["cost_items"]],
            output_files=output_files,
            job_id=job_id,
        )
