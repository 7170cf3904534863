"""Projects: version control for audio -- projects, commits, log, tree, diff, branches, merge,
revert, fork and a commit's export as a streamed zip (see shared.projects for the model)."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from shared.auth import User
from shared.errors import NotFound
from shared.library_files import CONTENT_FIELDS
from shared.project_export import stream_commit_zip
from shared.project_merge import ProjectHistory
from shared.project_sources import (
    CommitMetadata,
    parse_metadata,
    parse_snapshot,
    resolve_snapshot,
)
from shared.projects import MIX
from shared.services import Services
from shared.submit import Upload
from web.deps import CurrentUser, ServicesDep
from web.project_schemas import (
    Branch,
    BranchCreate,
    Commit,
    Deleted,
    Diff,
    ForkRequest,
    LogPage,
    MergeRequest,
    MergeResult,
    Project,
    ProjectCreate,
    ProjectPage,
    ProjectUpdate,
    RevertRequest,
    Tree,
)

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


def _store(services: Services) -> ProjectHistory:
    return ProjectHistory(services)


def project_view(row: dict, user_id: str) -> dict:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "is_public": row["is_public"],
        "owner_id": str(row["user_id"]),
        "is_owner": str(row["user_id"]) == str(user_id),
        "default_branch": row["default_branch"],
        "forked_from": str(row["forked_from"]) if row.get("forked_from") else None,
        "commit_count": int(row.get("commit_count") or 0),
        "branch_count": int(row.get("branch_count") or 0),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def summary_view(row: dict) -> dict:
    return {
        "id": str(row["id"]),
        "parents": [str(p) for p in row["parent_ids"]],
        "message": row["message"],
        "author_email": row.get("author_email"),
        "created_at": row["created_at"],
        "metadata": row["metadata"],
    }


def _file_view(services: Services, r: dict) -> dict:
    return {
        "slot": r["slot"],
        "role": r["role"],
        "file_id": str(r["id"]),
        **{k: r.get(k) for k in CONTENT_FIELDS},
        "url": services.storage.signed_url(r["bucket"], r["path"], download_name=r["name"]),
    }


def commit_view(services: Services, project: dict, commit: dict, files: list[dict]) -> dict:
    views = [_file_view(services, r) for r in files]
    return {
        **summary_view(commit),
        "project_id": str(project["id"]),
        "author_id": str(commit["author_id"]) if commit.get("author_id") else None,
        "mix": next((v for v in views if v["slot"] == MIX), None),
        "stems": [v for v in views if v["slot"] != MIX],
    }


def _commit_out(services: Services, user: User, pid: str, commit_id: str) -> dict:
    project, commit, files = _store(services).get_commit(user.id, pid, commit_id)
    return commit_view(services, project, commit, files)


def _valid_facts(facts: dict) -> dict:
    """Facts read from files and job results, kept only where they pass the metadata rules."""
    out = {}
    for k, v in facts.items():
        try:
            CommitMetadata.model_validate({k: v})
        except ValidationError:
            continue
        out[k] = v
    return out


# -- projects -----------------------------------------------------------------------------------


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Project)
def create_project(body: ProjectCreate, user: CurrentUser, services: ServicesDep) -> dict:
    row = _store(services).create(user, body.name, body.description, body.is_public)
    return project_view(_store(services).get(user.id, str(row["id"])), user.id)


@router.get("", response_model=ProjectPage)
def list_projects(
    user: CurrentUser,
    services: ServicesDep,
    scope: Literal["all", "mine", "public"] = "all",
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    rows, total = _store(services).list(user.id, scope, q, limit, offset)
    return {
        "items": [project_view(r, user.id) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }


@router.get("/{pid}", response_model=Project)
def get_project(pid: str, user: CurrentUser, services: ServicesDep) -> dict:
    return project_view(_store(services).get(user.id, pid), user.id)


@router.patch("/{pid}", response_model=Project)
def update_project(pid: str, body: ProjectUpdate, user: CurrentUser, services: ServicesDep) -> dict:
    row = _store(services).update(user.id, pid, **body.model_dump())
    return project_view(row, user.id)


@router.delete("/{pid}", response_model=Deleted)
def delete_project(pid: str, user: CurrentUser, services: ServicesDep) -> dict:
    row = _store(services).delete(user.id, pid)
    return {"id": str(row["id"]), "deleted": True}


@router.post("/{pid}/fork", status_code=status.HTTP_201_CREATED, response_model=Project)
def fork_project(pid: str, body: ForkRequest, user: CurrentUser, services: ServicesDep) -> dict:
    row = _store(services).fork(user, pid, body.name)
    return project_view(row, user.id)


# -- commits ------------------------------------------------------------------------------------


@router.post("/{pid}/commits", status_code=status.HTTP_201_CREATED, response_model=Commit)
def create_commit(
    pid: str,
    user: CurrentUser,
    services: ServicesDep,
    message: Annotated[str, Form(min_length=1, max_length=2000)],
    snapshot: Annotated[
        str | None,
        Form(
            description='JSON: {"from_job": id, "mix": {"file"|"job"+"output"|"upload": ...},'
            ' "stems": {"drums": {...}}, "remove": ["vocals"], "replace": false}'
        ),
    ] = None,
    metadata: Annotated[
        str | None,
        Form(description="JSON: bpm, key, time_signature, duration_s, loudness_lufs, tags"),
    ] = None,
    branch: Annotated[str | None, Form()] = None,
    expected_head: Annotated[
        str | None, Form(description="commit only if the branch is still at this commit")
    ] = None,
    files: Annotated[list[UploadFile] | None, File(description="uploads named by index")] = None,
) -> dict:
    req, meta = parse_snapshot(snapshot), parse_metadata(metadata)
    store = _store(services)
    store.require_owner(user.id, pid)  # before any upload is stored
    uploads = [
        Upload(f.filename or f"file-{i}", f.file, f.content_type) for i, f in enumerate(files or [])
    ]
    resolved = resolve_snapshot(services, user, req, uploads)
    try:
        row = store.commit(
            user,
            pid,
            message=message,
            changes=resolved.changes,
            metadata={**_valid_facts(resolved.facts), **meta.model_dump(exclude_none=True)},
            branch=branch,
            expected_head=expected_head,
            replace=resolved.replace,
        )
    except BaseException:
        resolved.forget_created(services)  # the commit did not land: neither do its uploads
        raise
    return _commit_out(services, user, pid, str(row["id"]))


@router.get("/{pid}/commits/{ref}", response_model=Commit)
def get_commit(pid: str, ref: str, user: CurrentUser, services: ServicesDep) -> dict:
    project, commit, files = _store(services).get_commit(user.id, pid, ref)
    return commit_view(services, project, commit, files)


@router.get("/{pid}/commits/{ref}/files/{slot}", response_class=RedirectResponse, status_code=302)
def download_commit_file(
    pid: str, ref: str, slot: str, user: CurrentUser, services: ServicesDep
) -> RedirectResponse:
    _, _, files = _store(services).get_commit(user.id, pid, ref)
    row = next((r for r in files if r["slot"] == slot), None)
    if row is None:
        names = ", ".join(r["slot"] for r in files)
        raise NotFound(f"This commit has no '{slot}'. It has: {names}.", code="SLOT_NOT_FOUND")
    url = services.storage.signed_url(row["bucket"], row["path"], download_name=row["name"])
    return RedirectResponse(url, status_code=302)


@router.get(
    "/{pid}/commits/{ref}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def export_commit(pid: str, ref: str, user: CurrentUser, services: ServicesDep):
    """The commit as a zip (mix, stems/, manifest.json), streamed as it is built."""
    project, commit, files = _store(services).get_commit(user.id, pid, ref)
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in project["name"])[:60]
    return StreamingResponse(
        stream_commit_zip(services, project, commit, files),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{safe}-{str(commit["id"])[:8]}.zip"'
        },
    )


@router.get("/{pid}/log", response_model=LogPage)
def log(
    pid: str,
    user: CurrentUser,
    services: ServicesDep,
    ref: Annotated[str | None, Query(description="branch, branch~N or commit")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    project, rows, total = _store(services).log(user.id, pid, ref, limit, offset)
    return {
        "project_id": str(project["id"]),
        "ref": ref or project["default_branch"],
        "items": [summary_view(r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }


@router.get("/{pid}/tree", response_model=Tree)
def tree(pid: str, user: CurrentUser, services: ServicesDep) -> Response:
    project, commits, branches = _store(services).tree(user.id, pid)
    body = {
        "project_id": str(project["id"]),
        "default_branch": project["default_branch"],
        "commits": [summary_view(c) for c in commits],
        "branches": [_branch_view(b, project) for b in branches],
    }
    # A history of thousands of commits: the rows are already in the Tree shape (the model
    # documents it), so they go out as JSON (orjson: datetimes and UUIDs natively) without a
    # second validation pass per commit.
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/{pid}/diff", response_model=Diff)
def diff(
    pid: str,
    user: CurrentUser,
    services: ServicesDep,
    to: Annotated[str, Query(description="ref to compare to (newer)")],
    from_: Annotated[
        str | None, Query(alias="from", description="ref to compare from; default: to~1")
    ] = None,
) -> dict:
    return _store(services).diff(user.id, pid, from_, to)


# -- branches, merge, revert --------------------------------------------------------------------


def _branch_view(b: dict, project: dict) -> dict:
    return {
        "name": b["name"],
        "head": str(b["head_id"]),
        "is_default": b["name"] == project["default_branch"],
        "created_at": b["created_at"],
        "updated_at": b["updated_at"],
    }


@router.get("/{pid}/branches", response_model=list[Branch])
def list_branches(pid: str, user: CurrentUser, services: ServicesDep) -> list[dict]:
    project, rows = _store(services).branches(user.id, pid)
    return [_branch_view(b, project) for b in rows]


@router.post("/{pid}/branches", status_code=status.HTTP_201_CREATED, response_model=Branch)
def create_branch(pid: str, body: BranchCreate, user: CurrentUser, services: ServicesDep) -> dict:
    store = _store(services)
    row = store.create_branch(user.id, pid, body.name, body.start)
    return _branch_view(row, store.get(user.id, pid))


@router.delete("/{pid}/branches/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_branch(pid: str, name: str, user: CurrentUser, services: ServicesDep) -> None:
    _store(services).delete_branch(user.id, pid, name)


@router.post("/{pid}/merge", status_code=status.HTTP_201_CREATED, response_model=MergeResult)
def merge(pid: str, body: MergeRequest, user: CurrentUser, services: ServicesDep) -> dict:
    row, report = _store(services).merge(
        user, pid, body.source, body.target, body.on_conflict, body.message
    )
    return {"commit": _commit_out(services, user, pid, str(row["id"])), "report": report}


@router.post("/{pid}/revert", status_code=status.HTTP_201_CREATED, response_model=MergeResult)
def revert(pid: str, body: RevertRequest, user: CurrentUser, services: ServicesDep) -> dict:
    row, report = _store(services).revert(
        user, pid, body.commit, body.branch, body.on_conflict, body.message
    )
    return {"commit": _commit_out(services, user, pid, str(row["id"])), "report": report}
