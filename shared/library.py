"""The library: every upload and every job output is a file of its owner that outlives the job.

Content-addressed per user: a file is one ``(user, sha256)``; when the same bytes arrive again
(a second upload, a job writing what an earlier job wrote) the new copy is removed and the
existing file is used, so the bytes are stored once and the quota counts them once.

Offers:
- ``register(...)``: adopt a just-stored object as a library file (or fold it into the existing
  one with the same content); ``link_job(...)``: record that a job read or wrote a file.
- ``dedupe_uploads`` / ``record_job_inputs``: what job creation calls around ``jobs.create``.
- ``store_upload(...)``: a file uploaded straight to the library (or into a commit).

Reading, managing, deleting with a job and retention: ``shared.library_files``.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

from shared.audio_port import AudioTools
from shared.errors import InvalidInput, SoundstageError
from shared.services import Services
from shared.storage import StoredObject, copy_with_limit, safe_filename

log = logging.getLogger("soundstage.library")

FILE_KINDS = ("audio", "video", "image", "midi", "json", "text", "other")
# Intermediates a pipeline deletes itself once used (video clips) never enter the library.
NOT_IN_LIBRARY_BUCKETS = ("video-clips",)
LIBRARY_UPLOAD_BUCKET = "audio-uploads"


def content_kind(content_type: str | None, filename: str = "") -> str:
    """The kind of content a person would name: audio, video, image, midi, json, text, other."""
    ct = (content_type or "").lower()
    suffix = Path(filename).suffix.lower()
    if "midi" in ct or suffix in (".mid", ".midi"):
        return "midi"
    if ct == "application/json" or suffix == ".json":
        return "json"
    for prefix in ("audio", "video", "image", "text"):
        if ct.startswith(prefix + "/"):
            return prefix
    return "other"


def _audio_info(audio: AudioTools, local: Path | None, known: dict[str, Any]) -> dict[str, Any]:
    """Duration, rate, channels and format: from what the caller knows, else a quick probe."""
    keys = ("duration_s", "sample_rate", "channels", "format")
    info = {k: known.get(k) for k in keys}
    if local is not None and info["duration_s"] is None and Path(local).exists():
        try:
            got = audio.probe(local)
            info.update({k: got.get(k) for k in keys if info.get(k) is None})
        except Exception:  # noqa: BLE001 - metadata is a nicety; the file is kept regardless
            log.info("could not probe %s", local)
    return info


# -- registering files -------------------------------------------------------------------------


def register(
    services: Services,
    user_id: str,
    obj: StoredObject,
    *,
    name: str,
    source: str,
    job_id: str | None = None,
    output_name: str | None = None,
    local: Path | None = None,
    known: dict[str, Any] | None = None,
    keep_new: bool = False,
) -> dict:
    """Adopt a stored object as a library file; returns the file row.

    When the user already has a file with these bytes, the new object is removed (if it is a
    different object; unless ``keep_new``, for an object a job may already be reading) and the
    existing file is returned: the bytes stay stored once.
    """
    kind = content_kind(obj.content_type, name)
    info = _audio_info(services.audio, local, known or {}) if kind == "audio" else {}
    with services.db.service() as conn:
        row = conn.execute(
            "insert into files (user_id, name, kind, content_type, format, bucket, path,"
            " size_bytes, sha256, duration_s, sample_rate, channels, source, job_id, output_name)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (user_id, sha256) do nothing returning *",
            (
                user_id,
                safe_filename(name)[:200],
                kind,
                obj.content_type,
                info.get("format"),
                obj.bucket,
                obj.path,
                obj.size_bytes,
                obj.sha256,
                info.get("duration_s"),
                info.get("sample_rate"),
                info.get("channels"),
                source,
                job_id,
                output_name,
            ),
        ).fetchone()
        if row is not None:
            return row
        row = conn.execute(
            "select * from files where user_id = %s and sha256 = %s", (user_id, obj.sha256)
        ).fetchone()
    if row is None:  # deleted between the two statements: store it as new
        return register(
            services,
            user_id,
            obj,
            name=name,
            source=source,
            job_id=job_id,
            output_name=output_name,
            local=local,
            known=known,
            keep_new=keep_new,
        )
    if not keep_new and (row["bucket"], row["path"]) != (obj.bucket, obj.path):
        services.storage.remove(obj.bucket, [obj.path])
    return row


def file_at(services: Services, user_id: str, bucket: str, path: str) -> dict | None:
    """The user's library file stored at ``bucket``/``path``, or None."""
    with services.db.service() as conn:
        return conn.execute(
            "select * from files where user_id = %s and bucket = %s and path = %s",
            (user_id, bucket, path),
        ).fetchone()


def link_job(services: Services, job_id: str, user_id: str, file_id: str, role: str, name: str):
    with services.db.service() as conn:
        conn.execute(
            "insert into job_files (job_id, file_id, user_id, role, name) values (%s, %s, %s, %s, %s)"
            " on conflict do nothing",
            (job_id, file_id, user_id, role, name),
        )


def register_output(
    services: Services,
    user_id: str,
    job_id: str,
    name: str,
    obj: StoredObject,
    local: Path,
    filename: str,
    meta: dict[str, Any] | None = None,
) -> dict | None:
    """A job output as a library file (None for intermediates that never enter the library)."""
    if obj.bucket in NOT_IN_LIBRARY_BUCKETS:
        return None
    row = register(
        services,
        user_id,
        obj,
        name=filename,
        source="output",
        job_id=job_id,
        output_name=name,
        local=local,
        known=meta or {},
    )
    link_job(services, job_id, user_id, str(row["id"]), "output", name)
    return row


def dedupe_uploads(services: Services, user_id: str, specs: list[dict]) -> list[dict]:
    """Point uploads whose bytes the user already has at that file (and drop the new copy);
    also folds identical uploads within one request. Returns new input specs."""
    shas = [s["sha256"] for s in specs if not s.get("file_id")]
    if not shas:
        return specs
    with services.db.service() as conn:
        rows = conn.execute(
            "select * from files where user_id = %s and sha256 = any(%s)", (user_id, shas)
        ).fetchall()
    have = {r["sha256"]: r for r in rows}
    out: list[dict] = []
    drop: list[tuple[str, str]] = []
    first_in_batch: dict[str, dict] = {}
    for spec in specs:
        if spec.get("file_id"):
            out.append(spec)
            continue
        existing = have.get(spec["sha256"])
        if existing is not None:
            drop.append((spec["bucket"], spec["path"]))
            out.append(
                {
                    **spec,
                    "bucket": existing["bucket"],
                    "path": existing["path"],
                    "file_id": str(existing["id"]),
                }
            )
        elif spec["sha256"] in first_in_batch:
            earlier = first_in_batch[spec["sha256"]]
            drop.append((spec["bucket"], spec["path"]))
            out.append({**spec, "bucket": earlier["bucket"], "path": earlier["path"]})
        else:
            first_in_batch[spec["sha256"]] = spec
            out.append(spec)
    for bucket, path in drop:
        services.storage.remove(bucket, [path])
    return out


def record_job_inputs(services: Services, job: dict) -> None:
    """After a job is created: each input becomes (or already is) a library file, linked."""
    user_id, job_id = str(job["user_id"]), str(job["id"])
    for i, spec in enumerate(job.get("inputs") or []):
        file_id = spec.get("file_id")
        if not file_id:
            obj = StoredObject(
                spec["bucket"],
                spec["path"],
                int(spec.get("size_bytes") or 0),
                spec["sha256"],
                spec.get("content_type") or "application/octet-stream",
            )
            row = register(
                services,
                user_id,
                obj,
                name=spec.get("filename") or f"input-{i}",
                source="upload",
                job_id=job_id,
                known=spec,
                # The job is queued and may be running: its input object stays where it is (a
                # concurrent identical upload won the race; this copy goes with the job).
                keep_new=True,
            )
            file_id = str(row["id"])
        link_job(services, job_id, user_id, file_id, "input", str(i))


def store_upload(
    services: Services,
    user_id: str,
    filename: str,
    stream,
    content_type: str | None = None,
    *,
    audio_only: bool = True,
) -> tuple[dict, bool]:
    """Store an upload as a library file (checked like a job's audio input when
    ``audio_only``). Returns ``(file row, created)``; created is False when the user already
    had these bytes (nothing new was stored)."""
    s = services.settings
    name = safe_filename(filename, "upload")
    max_bytes = int(s.max_upload_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="library-") as tmp:
        local = Path(tmp) / "upload"
        with open(local, "wb") as fh:
            size, digest = copy_with_limit(stream, fh, max_bytes)
        with services.db.service() as conn:
            existing = conn.execute(
                "select * from files where user_id = %s and sha256 = %s", (user_id, digest)
            ).fetchone()
        if existing is not None:
            return existing, False
        known: dict[str, Any] = {}
        if audio_only:
            try:
                info = services.audio.inspect_audio(local)
            except SoundstageError as e:
                e.message = f"'{filename}': {e.message}"
                raise
            if info["duration_s"] > s.max_duration_s:
                raise InvalidInput(
                    f"'{filename}' is {info['duration_s'] / 60:.1f} minutes long; the limit is "
                    f"{s.max_duration_s / 60:.0f} minutes.",
                    code="TOO_LONG",
                )
            known = info
        if s.user_quota_bytes - services.storage.usage(user_id) < size:
            raise InvalidInput(
                f"Your storage quota of {s.user_quota_bytes / 1024**3:.0f} GB is full; "
                "delete files to make room.",
                code="QUOTA_EXCEEDED",
                status=413,
            )
        if audio_only and not content_type:
            content_type = services.audio.content_type(known.get("format") or "")
        path = f"{user_id}/library/{uuid.uuid4().hex[:12]}-{name}"
        obj = services.storage.put(
            LIBRARY_UPLOAD_BUCKET, path, local, owner=user_id, content_type=content_type
        )
        row = register(services, user_id, obj, name=filename or name, source="upload", known=known)
    return row, True


def forget_new_file(services: Services, row: dict) -> None:
    """Undo ``store_upload`` of a file that nothing refers to yet (a commit that failed)."""
    with services.db.service() as conn:
        gone = conn.execute(
            "delete from files f where id = %s and not exists"
            " (select 1 from job_files jf where jf.file_id = f.id)"
            " and not exists (select 1 from commit_files cf where cf.file_id = f.id)"
            " returning bucket, path",
            (row["id"],),
        ).fetchone()
    if gone:
        services.storage.remove(gone["bucket"], [gone["path"]])
