"""The operator's view of the queue (admin role only): every user's jobs, failures by code,
retry and cancel. A user is an operator when their token's ``app_metadata.role`` is "admin"
(``soundstage admin grant EMAIL``; the role arrives with the next login or token refresh)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.errors import NotFound
from web.deps import AdminUser, Runner, ServicesDep
from web.routers.jobs import JobId

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.get("/jobs")
def all_jobs(
    admin: AdminUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    kind: str | None = None,
    status_: Annotated[str | None, Query(alias="status")] = None,
    user_id: str | None = None,
    error_code: str | None = None,
) -> dict:
    """Every user's jobs, newest first; filter by kind, status, user or error code."""
    rows, total = services.jobs.admin_list(
        limit=limit,
        offset=offset,
        kind=kind,
        status=status_,
        user_id=_user_id(user_id) if user_id else None,
        error_code=error_code,
    )
    return {
        "items": [_view(r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }


@router.get("/failures")
def failures(
    admin: AdminUser,
    services: ServicesDep,
    days: Annotated[float, Query(gt=0, le=90)] = 7.0,
) -> dict:
    """Failed jobs of the last ``days`` by kind and error code, with the latest message."""
    return {"days": days, "groups": services.jobs.failure_summary(days)}


@router.post("/jobs/{job_id}/retry")
def retry(job_id: JobId, admin: AdminUser, services: ServicesDep, runner: Runner) -> dict:
    """Queue a failed or canceled job (any user's) again from the start."""
    row = services.jobs.requeue(str(job_id), admin.email or admin.id)
    runner.submit(str(row["id"]))
    return _one(services, str(row["id"]))


@router.post("/jobs/{job_id}/cancel")
def cancel(job_id: JobId, admin: AdminUser, services: ServicesDep) -> dict:
    """Cancel any user's queued or running job."""
    jid = str(job_id)
    status = services.jobs.status_of(jid)
    if status is None:
        raise NotFound("No job with this id.", code="JOB_NOT_FOUND")
    services.jobs.cancel(str(status["user_id"]), jid)
    return _one(services, jid)


def _user_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:  # no job has an owner like that
        raise NotFound("No job with this id.", code="JOB_NOT_FOUND") from None


def _one(services, job_id: str) -> dict:
    rows, _ = services.jobs.admin_list(job_id=job_id, limit=1)
    if not rows:
        raise NotFound("No job with this id.", code="JOB_NOT_FOUND")
    return _view(rows[0])


def _view(r: dict) -> dict:
    return {
        "id": str(r["id"]),
        "user_id": str(r["user_id"]),
        "user_email": r.get("user_email"),
        "kind": r["kind"],
        "status": r["status"],
        "progress": round(float(r.get("progress") or 0), 1),
        "current_stage": r.get("current_stage"),
        "attempts": r.get("attempts", 0),
        "error": None
        if not r.get("error_code")
        else {
            "code": r["error_code"],
            "message": r.get("error_message"),
            "retryable": bool(r.get("error_retryable")),
        },
        "total_cost_usd": float(r.get("total_cost_usd") or 0),
        "worker_id": r.get("worker_id"),
        "created_at": r.get("created_at"),
        "started_at": r.get("started_at"),
        "completed_at": r.get("completed_at"),
    }
