"""The retention sweeper: Supabase Storage has no lifecycle rules, so we expire files ourselves.

First each finished job's files by its kind's rule (``RETENTION``, changed by
``SOUNDSTAGE_RETENTION``): uploads 14 days after success and 7 after a failure, outputs 14 days,
a blend's outputs 24 hours. Then objects older than their bucket's retention
(``shared.storage.BUCKETS``) -- except library files, which ``shared.library_files.sweep_library``
expires by their own rule (never a pinned file or one a commit holds) -- through the Storage
interface (never by SQL delete, which the storage guard forbids), expired analysis-cache rows, and
finished jobs past their ``expires_at`` (their files first, then the row; its stages and events go
with it by cascade). Runs every ``retention_sweep_s`` locally and on a Modal schedule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace
from typing import Any

from shared.analysis_cache import AnalysisCache
from shared.library_files import release_swept_paths, sweep_library
from shared.services import Services
from shared.storage import BUCKETS

log = logging.getLogger("soundstage.retention")

UPLOADS_BUCKET = "audio-uploads"
JOBS_PER_SWEEP = 500


@dataclass(frozen=True)
class KindRetention:
    """How long one kind's files live, counted from the job's end. Buckets add a ceiling of
    their own (``BUCKETS``: 14 days; video clips 7)."""

    uploads_days: float = 14.0  # after a completed job
    failed_uploads_days: float = 7.0  # after a failed or canceled job (the video design's rule)
    outputs_days: float = 14.0
    delete_uploads_when_done: bool = False  # the job removes its originals once converted
    note: str = ""


# The product's rules (the README's retention table prints the same). Any field can be changed
# per kind, or for all kinds with "*", by SOUNDSTAGE_RETENTION, e.g. '{"blend": {"outputs_days": 2}}'.
RETENTION: dict[str, KindRetention] = {
    "*": KindRetention(),
    "blend": KindRetention(
        outputs_days=1.0,
        delete_uploads_when_done=True,
        note="MusicLab: originals deleted once converted, the blend kept 24 hours",
    ),
    "video": KindRetention(
        note="clips deleted right after a successful composition, kept 7 days after a failure",
    ),
}


def retention_for(kind: str, overrides: dict[str, dict[str, Any]] | None = None) -> KindRetention:
    """The rule for ``kind``: its entry (or the default), then the overrides for "*" and it."""
    rule = RETENTION.get(kind, RETENTION["*"])
    known = {f.name for f in fields(KindRetention)}
    for key in ("*", kind):
        changes = {k: v for k, v in ((overrides or {}).get(key) or {}).items() if k in known}
        if changes:
            rule = replace(rule, **changes)
    return rule


def rules_table(overrides: dict[str, dict[str, Any]] | None = None) -> Any:
    """The rules in effect as a rich table (``soundstage sweep`` prints it)."""
    from rich.table import Table

    table = Table(
        "kind", "uploads (done)", "uploads (failed)", "outputs", "note", title="Retention"
    )
    for kind in RETENTION:
        r = retention_for(kind, overrides)
        table.add_row(
            "every other kind" if kind == "*" else kind,
            "deleted once converted" if r.delete_uploads_when_done else f"{r.uploads_days:g} d",
            f"{r.failed_uploads_days:g} d",
            f"{r.outputs_days * 24:g} h" if r.outputs_days < 2 else f"{r.outputs_days:g} d",
            r.note,
        )
    return table


def own_uploads(job: dict) -> list[str]:
    """The job's uploaded originals: objects in the uploads bucket under this job's folder (an
    input by reference, e.g. a library file, belongs to something else and is never touched)."""
    prefix = f"{job['user_id']}/{job['id']}/"
    return [
        i["path"]
        for i in job.get("inputs") or []
        if i.get("bucket") == UPLOADS_BUCKET and str(i.get("path", "")).startswith(prefix)
    ]


def _outputs_by_bucket(job: dict) -> dict[str, list[str]]:
    by_bucket: dict[str, list[str]] = {}
    for o in job.get("outputs") or []:
        by_bucket.setdefault(o["bucket"], []).append(o["path"])
    return by_bucket


def _remove_job_files(services: Services, job: dict, by_bucket: dict[str, list[str]]) -> int:
    """Remove a job's objects, except what the library still holds (a pin, a commit, another
    live job); returns how many went."""
    removed = 0
    for bucket, paths in by_bucket.items():
        if free := release_swept_paths(services, job["id"], bucket, paths):
            removed += services.storage.remove(bucket, free)
    return removed


def sweep_jobs(services: Services) -> dict[str, int]:
    """Apply each kind's rule to finished jobs whose files have not been swept yet."""
    overrides = getattr(services.settings, "retention", None) or {}
    counts = {"uploads": 0, "outputs": 0}
    jobs = services.jobs.finished_unswept(JOBS_PER_SWEEP)
    for job in jobs:
        rule = retention_for(job["kind"], overrides)
        age = float(job["age_days"])
        if job["inputs_swept_at"] is None:
            limit = rule.uploads_days if job["status"] == "completed" else rule.failed_uploads_days
            if age >= limit:
                counts["uploads"] += _remove_job_files(
                    services, job, {UPLOADS_BUCKET: own_uploads(job)}
                )
                services.jobs.mark_swept(job["id"], "inputs")
        if job["outputs_swept_at"] is None and age >= rule.outputs_days:
            counts["outputs"] += _remove_job_files(services, job, _outputs_by_bucket(job))
            services.jobs.mark_swept(job["id"], "outputs")
    return {f"job_{k}": v for k, v in counts.items() if v}


def after_success(services: Services, job: dict) -> int:
    """What a kind's rule removes as soon as its job succeeded (a blend's originals, once
    converted and blended); returns how many objects went."""
    overrides = getattr(services.settings, "retention", None) or {}
    if not retention_for(job["kind"], overrides).delete_uploads_when_done:
        return 0
    n = _remove_job_files(services, job, {UPLOADS_BUCKET: own_uploads(job)})
    services.jobs.mark_swept(job["id"], "inputs")
    log.info("uploads deleted once converted", extra={"job_id": str(job["id"]), "files": n})
    return n


def sweep_expired_jobs(services: Services) -> dict[str, int]:
    """Delete finished jobs whose ``expires_at`` has passed: their own uploads and outputs
    through the Storage interface, then the row. A queued or running job is never deleted,
    however old: its worker would lose it mid-run."""
    files = rows = 0
    jobs = services.jobs.expired_finished(JOBS_PER_SWEEP)
    for job in jobs:
        by_bucket = _outputs_by_bucket(job)
        by_bucket.setdefault(UPLOADS_BUCKET, []).extend(own_uploads(job))
        files += _remove_job_files(services, job, by_bucket)
        # Re-checked: a job retried since it was listed is live again and stays.
        rows += services.jobs.delete_expired(job["id"])
    return {k: v for k, v in (("expired_jobs", rows), ("expired_job_files", files)) if v}


def sweep(services: Services) -> dict[str, int]:
    """One pass: per-kind rules on finished jobs, then the buckets' ceilings, then the cache,
    then the jobs past their expiry."""
    removed: dict[str, int] = dict(sweep_jobs(services))
    for bucket in BUCKETS.values():
        if bucket.retention_days is None:
            continue
        total = 0
        while names := services.storage.expired(bucket.name, bucket.retention_days, limit=500):
            total += services.storage.remove(bucket.name, names)
            if len(names) < 500:
                break
        if total:
            removed[bucket.name] = total
    # Library files (uploads, outputs) follow their own rule: pins and commits keep them.
    if library := sweep_library(services):
        removed["library"] = library
    if cache := AnalysisCache(services.db).purge_expired():
        removed["analysis_cache"] = cache
    removed.update(sweep_expired_jobs(services))
    if removed:
        log.info("retention sweep removed %s", removed)
    return removed
