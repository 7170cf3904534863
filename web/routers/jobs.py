"""Jobs: create (multipart upload), read, list, cancel, delete, download, live events (SSE)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile, status
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from shared.errors import FileTooLarge, InvalidInput, NotFound
from shared.library_files import release_job_files
from shared.submit import Upload, job_view, submit_job
from web.deps import CurrentUser, ServicesDep

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

# Modal cuts web requests at 150 s: streams end before that and clients resume with
# Last-Event-ID (EventSource does it by itself after `retry` ms).
STREAM_MAX_S = 120.0
POLL_S = 0.4
TERMINAL_EVENTS = ("completed", "error")


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def create_job(
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    kind: Annotated[str, Form(description="Job kind, e.g. 'analyze'")],
    params: Annotated[str | None, Form(description="JSON object of the kind's parameters")] = None,
    files: Annotated[list[UploadFile] | None, File(description="Input files")] = None,
    inputs: Annotated[
        str | None,
        Form(
            description='Inputs by reference, JSON: [{"file": id}, {"job": id, "output": "drums"}]'
        ),
    ] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    s = services.settings
    length = request.headers.get("content-length")
    limit = s.max_files * s.max_upload_mb * 1024 * 1024 + 1024 * 1024
    if length and length.isdigit() and int(length) > limit:
        raise FileTooLarge(f"The upload is larger than {limit / 1024 / 1024:.0f} MB in total.")
    uploads = [
        Upload(f.filename or f"file-{i}", f.file, f.content_type)
        for i, f in enumerate(files or [])
        if f is not None
    ]
    job, created = submit_job(
        services, user, kind, params, uploads, idempotency_key=idempotency_key, inputs=inputs
    )
    request.app.state.runner.submit(str(job["id"])) if created else None
    view = job_view(services, services.jobs.get(user.id, str(job["id"])))
    return JSONResponse(
        view,
        status_code=202 if created else 200,
        headers={"Location": f"/api/v1/jobs/{view['id']}"},
    )


@router.get("")
def list_jobs(
    user: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    kind: str | None = None,
    status_: Annotated[str | None, Query(alias="status")] = None,
) -> dict:
    rows, total = services.jobs.list(user.id, limit, offset, kind, status_)
    return {
        "items": [job_view(services, r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }


def _uuid(job_id: str) -> str:
    import uuid

    try:
        return str(uuid.UUID(job_id))
    except ValueError:
        raise NotFound("No job with this id.", code="JOB_NOT_FOUND") from None


@router.get("/{job_id}")
def get_job(job_id: str, user: CurrentUser, services: ServicesDep) -> dict:
    return job_view(services, services.jobs.get(user.id, _uuid(job_id)))


@router.post("/{job_id}/cancel")
def cancel_job(job_id: str, user: CurrentUser, services: ServicesDep) -> dict:
    return job_view(services, services.jobs.cancel(user.id, _uuid(job_id)))


@router.delete("/{job_id}", status_code=status.HTTP_200_OK)
def delete_job(job_id: str, user: CurrentUser, services: ServicesDep) -> dict:
    jid = _uuid(job_id)
    # Its files go too, unless another job, a commit or a pin still needs them (the library).
    removed = release_job_files(services, user.id, jid)
    return {"id": jid, "deleted": True, "files_removed": removed}


@router.get("/{job_id}/download", response_class=RedirectResponse, status_code=302)
@router.get("/{job_id}/download/{output}", response_class=RedirectResponse, status_code=302)
def download(
    job_id: str, user: CurrentUser, services: ServicesDep, output: str | None = None
) -> RedirectResponse:
    job = services.jobs.get(user.id, _uuid(job_id))
    if job["status"] != "completed":
        raise InvalidInput(
            f"The job is {job['status']}; outputs exist once it has completed.",
            code="JOB_NOT_COMPLETED",
            status=409,
        )
    outputs = job.get("outputs") or []
    if not outputs:
        raise NotFound("This job has no output files.", code="NO_OUTPUTS")
    chosen = (
        outputs[0] if output is None else next((o for o in outputs if o["name"] == output), None)
    )
    if chosen is None:
        names = ", ".join(o["name"] for o in outputs)
        raise NotFound(f"No output named '{output}'. Outputs: {names}.", code="OUTPUT_NOT_FOUND")
    url = services.storage.signed_url(
        chosen["bucket"], chosen["path"], download_name=chosen.get("filename")
    )
    return RedirectResponse(url, status_code=302)


def owned_job_id(job_id: str, user: CurrentUser, services: ServicesDep) -> str:
    """Resolve before a stream starts, so someone else's job is a plain 404."""
    jid = _uuid(job_id)
    services.jobs.get(user.id, jid)
    return jid


@router.get("/{job_id}/events", response_class=EventSourceResponse)
async def job_events(
    jid: Annotated[str, Depends(owned_job_id)],
    user: CurrentUser,
    services: ServicesDep,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0, description="Resume after this event id")] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events for one job; resume with ``Last-Event-ID`` (or ``?after=``)."""
    cursor = after or 0
    if last_event_id and last_event_id.strip().isdigit():
        cursor = int(last_event_id.strip())
    started = time.monotonic()
    yield ServerSentEvent(comment="stream open", retry=1000)
    while True:
        events = await anyio.to_thread.run_sync(services.jobs.events_after, user.id, jid, cursor)
        for ev in events:
            cursor = ev["id"]
            data = {**ev["data"], "job_id": jid, "created_at": ev["created_at"]}
            yield ServerSentEvent(event=ev["type"], id=str(ev["id"]), data=data)
            if ev["type"] in TERMINAL_EVENTS:
                job = await anyio.to_thread.run_sync(services.jobs.get, user.id, jid)
                if job["status"] in ("completed", "failed", "canceled"):
                    return
        if not events:
            if await request.is_disconnected():
                return
            if time.monotonic() - started > STREAM_MAX_S:
                return  # the client reconnects with Last-Event-ID and misses nothing
            await anyio.sleep(POLL_S)
