"""Jobs: create (multipart upload), read, list, cancel, delete, download, live events (SSE)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import fastapi.routing
from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Header,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.responses import RedirectResponse, StreamingResponse

from shared.errors import InvalidInput, NotFound
from shared.library_files import release_job_files
from shared.links import input_audio_url
from shared.submit import Upload, job_view, submit_job
from web.deps import CurrentUser, Runner, ServicesDep
from web.events import event_hub, sse_frame
from web.job_schemas import ErrorPublic, JobDeleted, JobPublic, JobsPublic, JobStatus

router = APIRouter(
    prefix="/api/v1/jobs",
    tags=["jobs"],
    responses={
        404: {"model": ErrorPublic, "description": "No such job of yours"},
        422: {"model": ErrorPublic, "description": "Invalid input (code VALIDATION_ERROR, ...)"},
    },
)

# Modal cuts web requests at 150 s: streams end before that and clients resume with
# Last-Event-ID (EventSource does it by itself after `retry` ms).
STREAM_MAX_S = 120.0
RECHECK_S = 15.0  # a stream re-reads the database after this long without a wake-up
TERMINAL_EVENTS = ("completed", "error")
MAX_OFFSET = 1_000_000  # beyond any real listing, and far inside Postgres' bigint
# A malformed id answers 404 JOB_NOT_FOUND too (web.app's validation handler).
JobId = Annotated[uuid.UUID, Path(description="The job's id (a UUID)")]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    response_model_exclude_unset=True,
    responses={200: {"model": JobPublic, "description": "The job this Idempotency-Key made"}},
)
def create_job(
    user: CurrentUser,
    services: ServicesDep,
    runner: Runner,
    response: Response,
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
) -> dict:
    # Size caps are enforced while the body arrives (web.hardening.UploadGuard).
    uploads = [
        Upload(f.filename or f"file-{i}", f.file, f.content_type)
        for i, f in enumerate(files or [])
        if f is not None
    ]
    job, created = submit_job(
        services, user, kind, params, uploads, idempotency_key=idempotency_key, inputs=inputs
    )
    if created:
        runner.submit(str(job["id"]))
    else:
        response.status_code = status.HTTP_200_OK
    view = job_view(services, services.jobs.get(user.id, str(job["id"])))
    view.update(input_audio_url(services, job))  # the uploaded song, signed for 24 h
    response.headers["Location"] = f"/api/v1/jobs/{view['id']}"
    return view


@router.get("", response_model=JobsPublic, response_model_exclude_unset=True)
def list_jobs(
    user: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    kind: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] = None,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
) -> dict:
    rows, total = services.jobs.list(user.id, limit, offset, kind, status_)
    return {
        "items": [job_view(services, r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }


@router.get("/{job_id}", response_model=JobPublic, response_model_exclude_unset=True)
def get_job(job_id: JobId, user: CurrentUser, services: ServicesDep) -> dict:
    return job_view(services, services.jobs.get(user.id, str(job_id)))


@router.post("/{job_id}/cancel", response_model=JobPublic, response_model_exclude_unset=True)
def cancel_job(job_id: JobId, user: CurrentUser, services: ServicesDep) -> dict:
    return job_view(services, services.jobs.cancel(user.id, str(job_id)))


@router.delete("/{job_id}", status_code=status.HTTP_200_OK, response_model=JobDeleted)
def delete_job(job_id: JobId, user: CurrentUser, services: ServicesDep) -> dict:
    jid = str(job_id)
    # Its files go too, unless another job, a commit or a pin still needs them (the library).
    removed = release_job_files(services, user.id, jid)
    return {"id": jid, "deleted": True, "files_removed": removed}


@router.get("/{job_id}/download", response_class=RedirectResponse, status_code=302)
@router.get("/{job_id}/download/{output}", response_class=RedirectResponse, status_code=302)
def download(
    job_id: JobId, user: CurrentUser, services: ServicesDep, output: str | None = None
) -> RedirectResponse:
    job = services.jobs.get(user.id, str(job_id))
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


def owned_job_id(job_id: JobId, user: CurrentUser, services: ServicesDep) -> str:
    """Resolve before a stream starts, so someone else's job is a plain 404."""
    jid = str(job_id)
    services.jobs.get(user.id, jid)
    return jid


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def job_events(
    jid: Annotated[str, Depends(owned_job_id)],
    user: CurrentUser,
    services: ServicesDep,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[
        int | None, Query(ge=0, le=2**62, description="Resume after this event id")
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events for one job; resume with ``Last-Event-ID`` (or ``?after=``).

    New events arrive through the process's one listener (web.events), already encoded once for
    all the job's streams; the database is read here only for the backlog and, as a safety net,
    after ``RECHECK_S`` without a wake-up.
    """
    cursor = after or 0
    if last_event_id and last_event_id.strip().isdigit() and len(last_event_id.strip()) < 19:
        cursor = int(last_event_id.strip())
    hub = event_hub(request.app, services)
    stream = _event_stream(hub, services, user.id, jid, cursor)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _event_stream(hub, services, user_id: str, jid: str, cursor: int) -> AsyncIterator[bytes]:
    started = time.monotonic()
    with hub.subscribe(jid) as sub:
        yield b": stream open\nretry: 1000\n\n"
        backlog = await anyio.to_thread.run_sync(services.jobs.events_after, user_id, jid, cursor)
        if not backlog and cursor:
            # Resumed after the end: say how it ended and close, rather than hold the line.
            last = await anyio.to_thread.run_sync(services.jobs.last_terminal_event, user_id, jid)
            if last is not None and last["id"] <= cursor:
                yield sse_frame({**last, "job_id": jid})
                return
        pending = [(ev, None) for ev in backlog]
        last_sent = last_read = time.monotonic()
        while True:
            for ev, frame in pending:
                if ev["id"] <= cursor:
                    continue  # already sent (the backlog and the listener overlap)
                cursor = ev["id"]
                yield frame or sse_frame({**ev, "job_id": jid})
                last_sent = time.monotonic()
                if ev["type"] in TERMINAL_EVENTS:
                    job = await anyio.to_thread.run_sync(services.jobs.status_of, jid)
                    if job is None or job["status"] in ("completed", "failed", "canceled"):
                        return
            now = time.monotonic()
            left_s = STREAM_MAX_S - (now - started)
            if left_s <= 0:
                return  # the client reconnects with Last-Event-ID and misses nothing
            ping_s = fastapi.routing._PING_INTERVAL  # the framework's keep-alive period
            wait_s = max(
                0.01,
                min(left_s, RECHECK_S - (now - last_read), ping_s - (now - last_sent)),
            )
            pending = await sub.wait(wait_s)
            if pending:
                last_read = time.monotonic()  # the listener works: no need to re-read
                continue
            if time.monotonic() - last_sent >= ping_s:
                yield b": ping\n\n"  # keeps proxies from closing a quiet stream
                last_sent = time.monotonic()
            # The safety net runs on its own clock: were it the ping's alternative, a ping
            # period equal to RECHECK_S (both 15 s) would starve it, and a missed notification
            # would hold the stream open until STREAM_MAX_S.
            if time.monotonic() - last_read >= RECHECK_S:
                last_read = time.monotonic()
                pending = [
                    (ev, None)
                    for ev in await anyio.to_thread.run_sync(
                        services.jobs.events_after, user_id, jid, cursor
                    )
                ]
