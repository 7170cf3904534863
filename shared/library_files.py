"""My library's files: reading and managing them (as the user, RLS applies), what deleting a
job removes, and their retention.

- ``FileStore``: list (kind, name search, job, pinned; paged) / get / rename / pin / delete.
- ``file_view``: the public file object, with a signed download URL.
- ``release_job_files``: delete a job and the files that no other job, commit or pin needs.
- ``sweep_library``: a pinned file, or one a commit holds, is kept; a file that only jobs used
  expires with the last of those jobs; a file no job used expires with its bucket.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from shared.errors import Conflict, InvalidInput, NotFound
from shared.library import FILE_KINDS
from shared.services import Services
from shared.storage import BUCKETS

# -- reading and managing (the user's own library) ---------------------------------------------


# What a file is, as every view of one shows it (the library, a commit's files).
CONTENT_FIELDS = (
    "name",
    "kind",
    "content_type",
    "format",
    "size_bytes",
    "sha256",
    "duration_s",
    "sample_rate",
    "channels",
    "loudness_lufs",
)


def file_view(services: Services, row: dict) -> dict:
    fields = (*CONTENT_FIELDS, "source", "output_name", "pinned", "created_at", "updated_at")
    out = {k: row.get(k) for k in fields}
    out["id"] = str(row["id"])
    out["job_id"] = str(row["job_id"]) if row.get("job_id") else None
    for k in ("created_at", "updated_at"):
        if isinstance(out[k], dt.datetime):
            out[k] = out[k].isoformat()
    out["url"] = services.storage.signed_url(row["bucket"], row["path"], download_name=row["name"])
    return out


def parse_file_id(file_id: str) -> str:
    try:
        return str(uuid.UUID(str(file_id)))
    except ValueError:
        raise NotFound("No file with this id.", code="FILE_NOT_FOUND") from None


class FileStore:
    """A user's library; reads run as the user (RLS), writes check ownership first."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.db = services.db

    def list(
        self,
        user_id: str,
        *,
        kind: str | None = None,
        q: str | None = None,
        job_id: str | None = None,
        pinned: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict], int]:
        where, args = ["user_id = %s"], [user_id]
        if kind:
            if kind not in FILE_KINDS:
                raise InvalidInput(
                    f"Unknown kind '{kind}'; use one of {', '.join(FILE_KINDS)}.",
                    code="BAD_KIND",
                    status=400,
                )
            where.append("kind = %s")
            args.append(kind)
        if q:
            where.append("name ilike %s")
            args.append("%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%")
        if job_id:
            try:
                job_uuid = str(uuid.UUID(job_id))
            except ValueError:
                raise InvalidInput(
                    "'job_id' must be a job's id.", code="BAD_JOB_ID", status=400
                ) from None
            where.append("id in (select file_id from job_files where job_id = %s)")
            args.append(job_uuid)
        if pinned is not None:
            where.append("pinned = %s")
            args.append(pinned)
        cond = " and ".join(where)
        with self.db.as_user(user_id) as conn:
            total = conn.execute(f"select count(*) as n from files where {cond}", args).fetchone()
            rows = conn.execute(
                f"select * from files where {cond} order by created_at desc, id limit %s offset %s",
                [*args, limit, offset],
            ).fetchall()
        return rows, int(total["n"])

    def get(self, user_id: str, file_id: str) -> dict:
        with self.db.as_user(user_id) as conn:
            row = conn.execute(
                "select * from files where id = %s and user_id = %s",
                (parse_file_id(file_id), user_id),
            ).fetchone()
        if row is None:
            raise NotFound("No file with this id.", code="FILE_NOT_FOUND")
        return row

    def update(
        self, user_id: str, file_id: str, *, name: str | None = None, pinned: bool | None = None
    ) -> dict:
        row = self.get(user_id, file_id)
        if name is not None:
            name = name.strip()
            if not 1 <= len(name) <= 200 or "/" in name:
                raise InvalidInput(
                    "A file name is 1-200 characters without '/'.", code="BAD_NAME", status=400
                )
        with self.db.service() as conn:
            return conn.execute(
                "update files set name = coalesce(%s, name), pinned = coalesce(%s, pinned),"
                " updated_at = now() where id = %s and user_id = %s returning *",
                (name, pinned, row["id"], user_id),
            ).fetchone()

    def delete(self, user_id: str, file_id: str) -> dict:
        row = self.get(user_id, file_id)
        with self.db.service() as conn, conn.transaction():
            held = conn.execute(
                "select count(*) as n from commit_files where file_id = %s", (row["id"],)
            ).fetchone()["n"]
            if held:
                raise Conflict(
                    f"This file is part of {held} commit(s) in a project; it is kept while a "
                    "commit holds it.",
                    code="FILE_IN_COMMIT",
                )
            busy = conn.execute(
                "select count(*) as n from job_files jf join jobs j on j.id = jf.job_id"
                " where jf.file_id = %s and j.status in ('queued', 'processing')",
                (row["id"],),
            ).fetchone()["n"]
            if busy:
                raise Conflict(
                    "A job that is still running uses this file; wait for it or cancel it.",
                    code="FILE_IN_USE",
                )
            conn.execute("delete from files where id = %s", (row["id"],))
        self.services.storage.remove(row["bucket"], [row["path"]])
        return row


# -- deleting a job, retention -----------------------------------------------------------------

_STILL_NEEDED = (
    "f.pinned or exists (select 1 from commit_files cf where cf.file_id = f.id)"
    " or exists (select 1 from job_files jf where jf.file_id = f.id)"
)


def release_job_files(services: Services, user_id: str, job_id: str) -> int:
    """Delete a job and what only it used: its files that no other job, no commit and no pin
    still needs, and any other object under the job's folder. Returns objects removed.
    Raises like ``JobStore.delete`` (404 for someone else's job, 409 while running)."""
    with services.db.service() as conn:
        linked = [
            r["file_id"]
            for r in conn.execute(
                "select distinct file_id from job_files where job_id = %s and user_id = %s",
                (job_id, user_id),
            )
        ]
    services.jobs.delete(user_id, job_id)  # links go with the job (on delete cascade)
    with services.db.service() as conn, conn.transaction():
        gone = conn.execute(
            f"delete from files f where f.id = any(%s) and not ({_STILL_NEEDED})"
            " returning bucket, path",
            (linked,),
        ).fetchall()
        kept = {
            (r["bucket"], r["path"])
            for r in conn.execute(
                "select bucket, path from files where user_id = %s and path like %s",
                (user_id, f"{user_id}/{job_id}/%"),
            )
        }
        rest = conn.execute(
            "select bucket_id as bucket, name as path from storage.objects"
            " where owner = %s and name like %s",
            (user_id, f"{user_id}/{job_id}/%"),
        ).fetchall()
    by_bucket: dict[str, list[str]] = {}
    for r in [*gone, *rest]:
        if (r["bucket"], r["path"]) not in kept:
            by_bucket.setdefault(r["bucket"], []).append(r["path"])
    return sum(services.storage.remove(b, sorted(set(p))) for b, p in by_bucket.items())


def release_swept_paths(
    services: Services, job_id: Any, bucket: str, paths: list[str]
) -> list[str]:
    """Of the objects a job's retention rule lets go, those nothing else holds: not pinned, not
    in a commit, not used by another job still within its retention. Their library rows go with
    them (in this transaction); the caller removes the returned objects from storage."""
    if not paths:
        return []
    with services.db.service() as conn, conn.transaction():
        held = {
            r["path"]
            for r in conn.execute(
                "select f.path from files f where f.bucket = %s and f.path = any(%s) and ("
                " f.pinned or exists (select 1 from commit_files cf where cf.file_id = f.id)"
                " or exists (select 1 from job_files jf join jobs j on j.id = jf.job_id"
                "   where jf.file_id = f.id and jf.job_id <> %s"
                "   and (j.expires_at is null or j.expires_at > now())))",
                (bucket, paths, job_id),
            )
        }
        free = [p for p in paths if p not in held]
        if free:
            conn.execute("delete from files where bucket = %s and path = any(%s)", (bucket, free))
    return free


def sweep_library(services: Services, limit: int = 500) -> int:
    """Remove library files past their retention; never a pinned one or one a commit holds."""
    removed = 0
    for bucket in BUCKETS.values():
        if bucket.retention_days is None:
            continue
        with services.db.service() as conn, conn.transaction():
            gone = conn.execute(
                "delete from files f where f.id in (select f2.id from files f2 where"
                " f2.bucket = %s and not f2.pinned"
                " and not exists (select 1 from commit_files cf where cf.file_id = f2.id)"
                " and coalesce((select max(j.expires_at) from job_files jf join jobs j"
                "   on j.id = jf.job_id where jf.file_id = f2.id),"
                "   f2.created_at + make_interval(secs => %s)) < now()"
                " limit %s for update skip locked)"
                " returning bucket, path",
                (bucket.name, bucket.retention_days * 86400.0, limit),
            ).fetchall()
        if gone:
            removed += services.storage.remove(bucket.name, [r["path"] for r in gone])
    return removed
