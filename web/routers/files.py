"""The library: my files (every upload and job output), list / get / rename / pin / delete /
download, and uploads straight into the library."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, UploadFile, status
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from shared.library import store_upload
from shared.library_files import FileStore, file_view
from web.deps import CurrentUser, ServicesDep

router = APIRouter(prefix="/api/v1/files", tags=["files"])

FileKind = Literal["audio", "video", "image", "midi", "json", "text", "other"]


class LibraryFile(BaseModel):
    """A file of my library: an upload or a job output, stored once per content."""

    id: str
    name: str
    kind: FileKind
    content_type: str
    format: str | None = None
    size_bytes: int
    sha256: str = Field(description="content hash; the same bytes are one file per user")
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    loudness_lufs: float | None = None
    source: Literal["upload", "output"]
    job_id: str | None = Field(None, description="the job that made it (or first uploaded it)")
    output_name: str | None = None
    pinned: bool = Field(description="pinned files are never removed by retention")
    created_at: str
    updated_at: str
    url: str = Field(description="signed, expiring download URL")


class FilePage(BaseModel):
    items: list[LibraryFile]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class FileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    pinned: bool | None = None


class FileDeleted(BaseModel):
    id: str
    deleted: bool


@router.get("", response_model=FilePage)
def list_files(
    user: CurrentUser,
    services: ServicesDep,
    kind: FileKind | None = None,
    q: Annotated[str | None, Query(max_length=200, description="part of the name")] = None,
    job_id: Annotated[str | None, Query(description="files a job read or wrote")] = None,
    pinned: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    rows, total = FileStore(services).list(
        user.id, kind=kind, q=q, job_id=job_id, pinned=pinned, limit=limit, offset=offset
    )
    return {
        "items": [file_view(services, r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }


@router.post("", status_code=status.HTTP_201_CREATED, response_model=LibraryFile)
def upload_file(
    user: CurrentUser,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="an audio file for the library")],
) -> JSONResponse:
    row, created = store_upload(
        services, user.id, file.filename or "upload", file.file, file.content_type
    )
    # 200 when these bytes were already in the library: the existing file is returned.
    return JSONResponse(file_view(services, row), status_code=201 if created else 200)


@router.get("/{file_id}", response_model=LibraryFile)
def get_file(file_id: str, user: CurrentUser, services: ServicesDep) -> dict:
    return file_view(services, FileStore(services).get(user.id, file_id))


@router.patch("/{file_id}", response_model=LibraryFile)
def update_file(file_id: str, body: FileUpdate, user: CurrentUser, services: ServicesDep) -> dict:
    row = FileStore(services).update(user.id, file_id, name=body.name, pinned=body.pinned)
    return file_view(services, row)


@router.delete("/{file_id}", response_model=FileDeleted)
def delete_file(file_id: str, user: CurrentUser, services: ServicesDep) -> dict:
    row = FileStore(services).delete(user.id, file_id)
    return {"id": str(row["id"]), "deleted": True}


@router.get("/{file_id}/download", response_class=RedirectResponse, status_code=302)
def download_file(file_id: str, user: CurrentUser, services: ServicesDep) -> RedirectResponse:
    row = FileStore(services).get(user.id, file_id)
    url = services.storage.signed_url(row["bucket"], row["path"], download_name=row["name"])
    return RedirectResponse(url, status_code=302)
