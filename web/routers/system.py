"""Health, queue statistics and the local signed-file endpoint."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from shared.auth import is_admin
from shared.errors import NotFound, SoundstageError
from shared.storage import LocalStorage
from web.deps import CurrentUser, ServicesDep

router = APIRouter(tags=["system"])


@router.get("/health")
def health(services: ServicesDep) -> dict:
    with services.db.service() as conn:
        conn.execute("select 1")
    return {
        "status": "ok",
        "database": "ok",
        "runner": services.settings.runner,
        "storage": services.settings.storage_backend,
    }


@router.get("/api/v1/stats")
def stats(user: CurrentUser, services: ServicesDep) -> dict:
    """Your jobs' queue and durations; an admin (``app_metadata.role``) sees everyone's."""
    return services.jobs.stats(None if is_admin(user.claims) else user.id)


@router.get("/files/{bucket}/{path:path}", include_in_schema=False)
def signed_file(
    bucket: str,
    path: str,
    services: ServicesDep,
    expires: int = Query(0),
    sig: str = Query(""),
    download: str = Query(""),
):
    storage = services.storage
    if not isinstance(storage, LocalStorage):
        raise NotFound("Files are served by Supabase Storage in this deployment.")
    if not storage.verify(bucket, path, expires, sig, download):
        raise SoundstageError(
            "This link is invalid or has expired.", code="LINK_EXPIRED", status=403
        )
    file = storage.file_path(bucket, path)
    if not file.exists():
        raise SoundstageError(
            "This file no longer exists (it expired or was deleted).", code="GONE", status=410
        )
    media = mimetypes.guess_type(download or path)[0] or "application/octet-stream"
    return FileResponse(
        file,
        media_type=media,
        filename=download or None,
        content_disposition_type="attachment" if download else "inline",
    )
