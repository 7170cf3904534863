"""``GET /api/v1/jobs/{id}/inputs``: a job's input files with signed, expiring URLs.

The web client draws an analysis over the track that was analysed and plays a master's
"before" next to its "after"; the job object lists inputs without their storage location, so
the links come from here, for the owner only (someone else's job is a 404). Inputs expire with
their bucket's retention (``audio-uploads``: 14 days); the link to an expired one answers 410.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from web.deps import CurrentUser, ServicesDep
from web.routers.jobs import JobId

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class JobInput(BaseModel):
    index: int
    filename: str
    url: str
    duration_s: float | None = None
    format: str | None = None
    size_bytes: int | None = None


@router.get("/{job_id}/inputs", response_model=list[JobInput])
def job_inputs(job_id: JobId, user: CurrentUser, services: ServicesDep) -> list[dict]:
    job = services.jobs.get(user.id, str(job_id))
    out = []
    for i, item in enumerate(job.get("inputs") or []):
        if not item.get("bucket") or not item.get("path"):
            continue  # an input by reference without a stored file of its own
        out.append(
            {
                "index": i,
                "filename": item.get("filename") or f"input-{i}",
                "url": services.storage.signed_url(item["bucket"], item["path"]),
                "duration_s": item.get("duration_s"),
                "format": item.get("format"),
                "size_bytes": item.get("size_bytes"),
            }
        )
    return out
