"""The per-user storage quota, enforced atomically and counting job outputs.

Stored bytes are the rows of ``storage.objects``; bytes not yet stored are reservations in
``public.storage_reservations`` (one per job: its uploads while they are stored, then the
estimate of its outputs). ``reserve`` takes a per-user advisory lock, so parallel submissions
see each other's reservations. A job's reservation stops counting once it is finished (or its
row is gone), and ``enforce_after`` checks the real sizes when the job has written them.
"""

from __future__ import annotations

from typing import Any

from shared.db import Database
from shared.errors import FileTooLarge

WAV_BYTES_PER_S = 44_100 * 2 * 2  # 16-bit stereo at 44.1 kHz
VIDEO_BYTES_PER_S = 1_000_000  # 1080p30 H.264 at ~8 Mb/s
# Outputs per second of input audio, in 16-bit stereo WAV seconds (what the kinds write).
OUTPUT_WAV_FACTOR = {
    "analyze": 0.0,
    "convert": 1.5,
    "mix": 1.0,
    "master": 1.0,
    "stems": 6.0,
    "mashup": 7.0,
    "beat": 5.0,
    "hum": 5.0,
    "blend": 1.0,
}
UNFINISHED_UPLOAD_S = 3600  # a reservation whose job row never appeared stops counting after this


def _quota_error(quota_bytes: int) -> FileTooLarge:
    return FileTooLarge(
        f"Your storage quota of {quota_bytes / 1024**3:.3g} GB is full; delete old jobs to make room.",
        code="QUOTA_EXCEEDED",
        details={"quota_bytes": quota_bytes},
    )


def estimate_output_bytes(kind: str, params: dict[str, Any], inputs: list[dict]) -> int:
    """A generous estimate of what a job of ``kind`` will store."""
    in_s = sum(float(i.get("duration_s") or 0.0) for i in inputs)
    duration_s = in_s or float(params.get("duration_s") or params.get("duration") or 30.0)
    if kind == "video":
        return int(duration_s * VIDEO_BYTES_PER_S * 3)  # clips + references + the final mp4
    return int(duration_s * WAV_BYTES_PER_S * OUTPUT_WAV_FACTOR.get(kind, 2.0))


def _used(conn, user_id: str) -> int:
    row = conn.execute(
        "select coalesce((select sum((metadata->>'size')::bigint) from storage.objects"
        "   where owner = %(u)s), 0)"
        " + coalesce((select sum(r.bytes) from public.storage_reservations r"
        "   left join public.jobs j on j.id = r.job_id"
        "   where r.user_id = %(u)s and (j.status in ('queued', 'processing')"
        "     or (j.id is null and r.created_at > now() - make_interval(secs => %(s)s)))), 0)"
        " as n",
        {"u": user_id, "s": UNFINISHED_UPLOAD_S},
    ).fetchone()
    return int(row["n"])


def reserve(db: Database, user_id: str, job_id: str, n_bytes: int, quota_bytes: int) -> None:
    """Reserve ``n_bytes`` for ``job_id`` or raise QUOTA_EXCEEDED (413)."""
    with db.service() as conn, conn.transaction():
        conn.execute(
            "select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"quota\n{user_id}",)
        )
        if _used(conn, user_id) + n_bytes > quota_bytes:
            raise _quota_error(quota_bytes)
        conn.execute(
            "insert into public.storage_reservations (job_id, user_id, bytes) values (%s, %s, %s)"
            " on conflict (job_id) do update set bytes = excluded.bytes",
            (job_id, user_id, int(n_bytes)),
        )


def set_reserved(db: Database, job_id: str, n_bytes: int) -> None:
    with db.service() as conn:
        conn.execute(
            "update public.storage_reservations set bytes = %s where job_id = %s",
            (int(n_bytes), job_id),
        )


def release(db: Database, job_id: str) -> None:
    with db.service() as conn:
        conn.execute("delete from public.storage_reservations where job_id = %s", (job_id,))


def enforce_after(services, job: dict) -> None:
    """After a job wrote its outputs: past the quota, its outputs go and QUOTA_EXCEEDED fails it."""
    quota = services.settings.user_quota_bytes
    user_id = str(job["user_id"])
    release(services.db, str(job["id"]))
    with services.db.service() as conn:
        used = _used(conn, user_id)
    if used <= quota:
        return
    by_bucket: dict[str, list[str]] = {}
    for o in services.jobs.load(str(job["id"])).get("outputs") or []:
        by_bucket.setdefault(o["bucket"], []).append(o["path"])
    for bucket, paths in by_bucket.items():
        services.storage.remove(bucket, paths)
    raise _quota_error(quota)
