"""The job store: every read and write of ``jobs``, ``job_stages``, ``job_events``, ``job_costs``.

The API, the workers (local threads or Modal containers) and the CLI all go through it, so the
lifecycle ``queued -> processing -> completed | failed | canceled`` is enforced in one place.
Reads on behalf of a user run as Supabase's ``authenticated`` role (RLS), writes as the service.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from shared.db import Database
from shared.errors import Conflict, NotFound

log = logging.getLogger("soundstage.jobs")

TERMINAL = ("completed", "failed", "canceled")
EVENT_TYPES = ("stage_update", "progress", "message", "cost_update", "completed", "error")


def _json_safe(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- creation -----------------------------------------------------------------------------

    def find_idempotent(self, user_id: str, key: str) -> dict | None:
        with self.db.service() as conn:
            return conn.execute(
                "select * from jobs where user_id = %s and idempotency_key = %s", (user_id, key)
            ).fetchone()

    def create(
        self,
        *,
        job_id: str,
        user_id: str,
        kind: str,
        params: dict,
        inputs: list[dict],
        stages: list[str],
        idempotency_key: str | None,
        estimated_duration_s: float,
        estimated_cost_usd: float,
        budget_usd: float | None,
        retention_days: float = 14,
        params_hash: str | None = None,
    ) -> dict:
        with self.db.service() as conn, conn.transaction():
            row = conn.execute(
                "insert into jobs (id, user_id, kind, params, inputs, idempotency_key,"
                " estimated_duration_s, estimated_remaining_s, estimated_cost_usd, budget_usd, expires_at,"
                " request_hash)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s), %s)"
                " on conflict (user_id, idempotency_key) where idempotency_key is not null do nothing"
                " returning *",
                (
                    job_id,
                    user_id,
                    kind,
                    Jsonb(params),
                    Jsonb(inputs),
                    idempotency_key,
                    estimated_duration_s,
                    estimated_duration_s,
                    estimated_cost_usd,
                    budget_usd,
                    retention_days * 86400.0,
                    params_hash,
                ),
            ).fetchone()
            if row is None:  # a concurrent request with the same Idempotency-Key won
                raise Conflict(
                    "A job with this Idempotency-Key already exists.", code="IDEMPOTENCY_CONFLICT"
                )
            for i, name in enumerate(stages):
                conn.execute(
                    "insert into job_stages (job_id, user_id, name, position) values (%s, %s, %s, %s)",
                    (job_id, user_id, name, i),
                )
        return row

    # -- reading (as the user: RLS applies) ---------------------------------------------------

    def get(self, user_id: str, job_id: str) -> dict:
        # One statement for the job, its stages and its costs: status polls are the API's
        # most frequent request, and each round trip to Postgres is most of their cost.
        with self.db.as_user(user_id) as conn:
            job = conn.execute(
                "select j.*, coalesce((select json_agg(json_build_object('name', s.name,"
                " 'status', s.status, 'engine', s.engine, 'attempts', s.attempts, 'attempt_log', s.attempt_log,"
                " 'started_at', s.started_at, 'completed_at', s.completed_at,"
                " 'duration_s', s.duration_s, 'cost_usd', s.cost_usd, 'error', s.error)"
                " order by s.position) from job_stages s where s.job_id = j.id), '[]') as stages,"
                " coalesce((select json_agg(json_build_object('stage', c.stage,"
                " 'provider', c.provider, 'units', c.units, 'unit', c.unit,"
                " 'cost_usd', c.cost_usd, 'detail', c.detail, 'created_at', c.created_at)"
                " order by c.id) from job_costs c where c.job_id = j.id), '[]') as cost_items"
                " from jobs j where j.id = %s",
                (job_id,),
            ).fetchone()
            if job is None:
                raise NotFound("No job with this id.", code="JOB_NOT_FOUND")
        if job["status"] == "queued":
            # RLS hides other users' jobs; the queue position counts everyone's, so ask as service.
            with self.db.service() as conn:
                # At least 1: a worker may claim the job between the two reads, and a view
                # saying "queued" at position 0 contradicts itself.
                job["queue_position"] = max(
                    1,
                    conn.execute(
                        "select count(*) as n from jobs where status = 'queued'"
                        " and created_at <= %s",
                        (job["created_at"],),
                    ).fetchone()["n"],
                )
        else:
            job["queue_position"] = 0
        return _json_safe(job)

    def list(
        self,
        user_id: str,
        limit: int = 20,
        offset: int = 0,
        kind: str | None = None,
        status: str | None = None,
    ) -> tuple[list[dict], int]:
        where, args = ["true"], []
        if kind:
            where.append("kind = %s")
            args.append(kind)
        if status:
            where.append("status = %s")
            args.append(status)
        cond = " and ".join(where)
        with self.db.as_user(user_id) as conn:
            total = conn.execute(f"select count(*) as n from jobs where {cond}", args).fetchone()[
                "n"
            ]
            rows = conn.execute(
                f"select * from jobs where {cond} order by created_at desc, id limit %s offset %s",
                [*args, limit, offset],
            ).fetchall()
        return [_json_safe(r) for r in rows], int(total)

    def events_after(
        self, user_id: str, job_id: str, after_id: int, limit: int = 500
    ) -> list[dict]:
        with self.db.as_user(user_id) as conn:
            rows = conn.execute(
                "select id, type, data, created_at from job_events where job_id = %s and id > %s"
                " order by id limit %s",
                (job_id, after_id, limit),
            ).fetchall()
        return [_json_safe(r) for r in rows]

    def events_by_ids(self, ids: list[int]) -> list[dict]:
        """Event rows by id, for the process's event listener (it serves streams already
        authorised for their job)."""
        with self.db.service() as conn:
            rows = conn.execute(
                "select id, job_id::text as job_id, type, data, created_at from job_events"
                " where id = any(%s) order by id",
                (ids,),
            ).fetchall()
        return [_json_safe(r) for r in rows]

    def last_terminal_event(self, user_id: str, job_id: str) -> dict | None:
        """The job's last ``completed``/``error`` event when the job has ended, else None."""
        with self.db.as_user(user_id) as conn:
            row = conn.execute(
                "select e.id, e.type, e.data, e.created_at from job_events e join jobs j"
                " on j.id = e.job_id where e.job_id = %s and e.type in ('completed', 'error')"
                " and j.status in ('completed', 'failed', 'canceled') order by e.id desc limit 1",
                (job_id,),
            ).fetchone()
        return _json_safe(row) if row else None

    def status_of(self, job_id: str) -> dict | None:
        with self.db.service() as conn:
            return conn.execute(
                "select id, user_id, kind, status, cancel_requested from jobs where id = %s",
                (job_id,),
            ).fetchone()

    def load(self, job_id: str) -> dict:
        with self.db.service() as conn:
            row = conn.execute("select * from jobs where id = %s", (job_id,)).fetchone()
        if row is None:
            raise NotFound("No job with this id.", code="JOB_NOT_FOUND")
        return row

    # -- lifecycle ------------------------------------------------------------------------------

    def add_event(self, conn, job: dict, type_: str, data: dict) -> int:
        assert type_ in EVENT_TYPES, type_
        row = conn.execute(
            "insert into job_events (job_id, user_id, type, data) values (%s, %s, %s, %s) returning id",
            (job["id"], job["user_id"], type_, Jsonb(_json_safe(data))),
        ).fetchone()
        return row["id"]

    def event(self, job: dict, type_: str, data: dict) -> int:
        with self.db.service() as conn:
            return self.add_event(conn, job, type_, data)

    def claim(self, worker_id: str, job_id: str | None = None) -> dict | None:
        """Atomically take the oldest queued job (or ``job_id``); None when there is none."""
        pick = "id = %s and status = 'queued'" if job_id else "status = 'queued'"
        args: list[Any] = [job_id] if job_id else []
        with self.db.service() as conn, conn.transaction():
            row = conn.execute(
                "update jobs set status = 'processing', attempts = attempts + 1, worker_id = %s,"
                " heartbeat_at = now(), started_at = coalesce(started_at, now()), updated_at = now()"
                f" where id = (select id from jobs where {pick} order by created_at"
                " for update skip locked limit 1) returning *",
                [worker_id, *args],
            ).fetchone()
            if row is not None:
                self.add_event(
                    conn,
                    row,
                    "message",
                    {
                        "message": f"Started (attempt {row['attempts']}).",
                        "worker": worker_id,
                    },
                )
        return row

    def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Refresh the heartbeat; False if this worker no longer owns the job."""
        with self.db.service() as conn:
            row = conn.execute(
                "update jobs set heartbeat_at = now() where id = %s and worker_id = %s"
                " and status = 'processing' returning id",
                (job_id, worker_id),
            ).fetchone()
        return row is not None

    def recover_stale(self, stale_after_s: float, max_attempts: int) -> list[tuple[str, str]]:
        """Requeue (or fail, once out of attempts) jobs whose worker stopped heartbeating."""
        out: list[tuple[str, str]] = []
        with self.db.service() as conn, conn.transaction():
            rows = conn.execute(
                "select * from jobs where status = 'processing'"
                " and heartbeat_at < now() - make_interval(secs => %s) for update skip locked",
                (stale_after_s,),
            ).fetchall()
            for job in rows:
                if job["attempts"] < max_attempts and not job["cancel_requested"]:
                    conn.execute(
                        "update jobs set status = 'queued', worker_id = null, current_stage = null,"
                        " progress = 0, updated_at = now() where id = %s",
                        (job["id"],),
                    )
                    conn.execute(
                        "update job_stages set status = 'pending', started_at = null,"
                        " completed_at = null where job_id = %s and status = 'running'",
                        (job["id"],),
                    )
                    self.add_event(
                        conn,
                        job,
                        "message",
                        {
                            "message": "The worker running this job stopped responding; it was queued again.",
                        },
                    )
                    out.append((str(job["id"]), "requeued"))
                else:
                    self._fail(
                        conn,
                        job,
                        "WORKER_LOST",
                        "The worker running this job stopped responding; please retry.",
                        True,
                    )
                    out.append((str(job["id"]), "failed"))
        for job_id, what in out:
            log.warning("stale job %s", what, extra={"job_id": job_id})
        return out

    def _fail(self, conn, job: dict, code: str, message: str, retryable: bool) -> None:
        conn.execute(
            "update jobs set status = 'failed', error_code = %s, error_message = %s,"
            " error_retryable = %s, completed_at = now(), updated_at = now(), worker_id = null"
            " where id = %s",
            (code, message, retryable, job["id"]),
        )
        conn.execute(
            "update job_stages set status = 'failed', completed_at = now() where job_id = %s"
            " and status = 'running'",
            (job["id"],),
        )
        self.add_event(
            conn, job, "error", {"code": code, "message": message, "retryable": retryable}
        )

    def fail(self, job: dict, code: str, message: str, retryable: bool) -> None:
        with self.db.service() as conn, conn.transaction():
            self._fail(conn, job, code, message, retryable)

    def record_retry(
        self,
        job: dict,
        *,
        attempt: int,
        max_attempts: int,
        code: str,
        message: str,
        delay_s: float,
    ) -> int:
        """Note a failed attempt that will run again after ``delay_s``; returns the next
        attempt's number (``jobs.attempts`` counts every attempt, claims and retries)."""
        with self.db.service() as conn, conn.transaction():
            row = conn.execute(
                "update jobs set attempts = attempts + 1, updated_at = now() where id = %s"
                " returning attempts",
                (job["id"],),
            ).fetchone()
            self.add_event(
                conn,
                job,
                "message",
                {
                    "message": f"Attempt {attempt} of {max_attempts} failed ({code}: {message}); "
                    f"trying again in {delay_s:.1f} s.",
                    "retry": {
                        "attempt": attempt,
                        "max_attempts": max_attempts,
                        "code": code,
                        "delay_s": round(delay_s, 3),
                        "next_attempt": row["attempts"],
                    },
                },
            )
        log.warning("job attempt failed; retrying", extra={"job_id": str(job["id"]), "code": code})
        return int(row["attempts"])

    def complete(self, job: dict, result: dict, links: dict | None = None) -> None:
        """Mark the job completed; ``links`` (download URLs of its main output) ride on the
        ``completed`` event."""
        with self.db.service() as conn, conn.transaction():
            conn.execute(
                "update jobs set status = 'completed', result = %s, progress = 100,"
                " estimated_remaining_s = 0, completed_at = now(), updated_at = now(),"
                " worker_id = null where id = %s",
                (Jsonb(_json_safe(result)), job["id"]),
            )
            row = conn.execute(
                "select outputs, total_cost_usd from jobs where id = %s", (job["id"],)
            ).fetchone()
            self.add_event(
                conn,
                job,
                "completed",
                {
                    "outputs": [o["name"] for o in row["outputs"]],
                    "total_cost_usd": float(row["total_cost_usd"]),
                    **(links or {}),
                },
            )

    def mark_canceled(
        self, job: dict, message: str = "Canceled by the user.", *, only_if_queued: bool = False
    ) -> bool:
        """Record the cancellation; with ``only_if_queued``, only while no worker has the job
        (one atomic update, so it races cleanly with a worker's claim). True if it took."""
        guard = " and status = 'queued'" if only_if_queued else ""
        with self.db.service() as conn, conn.transaction():
            row = conn.execute(
                "update jobs set status = 'canceled', completed_at = now(), updated_at = now(),"
                " worker_id = null, error_code = 'CANCELED', error_message = %s,"
                f" error_retryable = false where id = %s{guard} returning id",
                (message, job["id"]),
            ).fetchone()
            if row is None:
                return False
            conn.execute(
                "update job_stages set status = 'skipped' where job_id = %s"
                " and status in ('pending', 'running')",
                (job["id"],),
            )
            self.add_event(
                conn, job, "error", {"code": "CANCELED", "message": message, "retryable": False}
            )
        return True

    def cancel(self, user_id: str, job_id: str) -> dict:
        job = self.get(user_id, job_id)  # 404 for someone else's job
        if job["status"] in TERMINAL:
            raise Conflict(f"The job is already {job['status']}.", code="JOB_FINISHED")
        with self.db.service() as conn, conn.transaction():
            row = conn.execute(
                "update jobs set cancel_requested = true, updated_at = now() where id = %s"
                " returning *",
                (job_id,),
            ).fetchone()
        if row["status"] == "queued":
            # Nobody runs it yet: cancel it outright. If a worker claims it first, the worker
            # sees cancel_requested and stops at its next check.
            self.mark_canceled(row, only_if_queued=True)
        return self.get(user_id, job_id)

    def delete(self, user_id: str, job_id: str) -> dict:
        job = self.get(user_id, job_id)
        if job["status"] == "processing":
            raise Conflict("The job is still running; cancel it first.", code="JOB_RUNNING")
        with self.db.service() as conn:
            conn.execute("delete from jobs where id = %s and user_id = %s", (job_id, user_id))
        return job

    # -- stats ----------------------------------------------------------------------------------

    def stats(self, user_id: str | None = None) -> dict:
        """Queue counts and per-kind durations: of one user's jobs, or of everyone's (None)."""
        mine = "user_id = %(u)s" if user_id is not None else "true"
        args = {"u": user_id}
        with self.db.service() as conn:
            counts = conn.execute(
                f"select status, count(*) as n from jobs where {mine} group by status", args
            ).fetchall()
            per_kind = conn.execute(
                "select kind, count(*) filter (where status = 'completed') as completed,"
                " count(*) filter (where status = 'failed') as failed,"
                " percentile_cont(0.5) within group (order by extract(epoch from completed_at - started_at))"
                "   filter (where status = 'completed') as p50,"
                " percentile_cont(0.95) within group (order by extract(epoch from completed_at - started_at))"
                "   filter (where status = 'completed') as p95,"
                " percentile_cont(0.99) within group (order by extract(epoch from completed_at - started_at))"
                "   filter (where status = 'completed') as p99"
                f" from jobs where {mine} and created_at > now() - interval '7 days'"
                " group by kind order by kind",
                args,
            ).fetchall()
        queue = {s: 0 for s in ("queued", "processing", "completed", "failed", "canceled")}
        queue.update({r["status"]: r["n"] for r in counts})
        kinds = {}
        for r in per_kind:
            done = r["completed"] + r["failed"]
            kinds[r["kind"]] = {
                "completed": r["completed"],
                "failed": r["failed"],
                "success_rate": round(r["completed"] / done, 4) if done else None,
                "duration_p50_s": None if r["p50"] is None else round(float(r["p50"]), 3),
                "duration_p95_s": None if r["p95"] is None else round(float(r["p95"]), 3),
                "duration_p99_s": None if r["p99"] is None else round(float(r["p99"]), 3),
            }
        total_done = sum(k["completed"] + k["failed"] for k in kinds.values())
        total_ok = sum(k["completed"] for k in kinds.values())
        return {
            "queue": queue,
            "kinds": kinds,
            "success_rate": round(total_ok / total_done, 4) if total_done else None,
            "window": "7d",
            "scope": "user" if user_id is not None else "all",
        }

    # -- operators (admin role; the API checks the role) ----------------------------------------

    def admin_list(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        kind: str | None = None,
        status: str | None = None,
        user_id: str | None = None,
        error_code: str | None = None,
        job_id: str | None = None,
    ) -> tuple[list[dict], int]:
        """Every user's jobs, newest first, with the owner's email (service role: no RLS)."""
        where, args = ["true"], []
        for column, value in (
            ("j.id", job_id),
            ("j.kind", kind),
            ("j.status", status),
            ("j.user_id", user_id),
            ("j.error_code", error_code),
        ):
            if value:
                where.append(f"{column} = %s")
                args.append(value)
        cond = " and ".join(where)
        with self.db.service() as conn:
            total = conn.execute(f"select count(*) as n from jobs j where {cond}", args).fetchone()
            rows = conn.execute(
                "select j.id, j.user_id, u.email as user_email, j.kind, j.status, j.progress,"
                " j.current_stage, j.attempts, j.error_code, j.error_message, j.error_retryable,"
                " j.total_cost_usd, j.created_at, j.started_at, j.completed_at, j.worker_id"
                f" from jobs j left join auth.users u on u.id = j.user_id where {cond}"
                " order by j.created_at desc, j.id limit %s offset %s",
                [*args, limit, offset],
            ).fetchall()
        return [_json_safe(r) for r in rows], int(total["n"])

    def failure_summary(self, days: float = 7.0) -> list[dict]:
        """Failed jobs of the last ``days`` grouped by kind and error code, most frequent first."""
        with self.db.service() as conn:
            rows = conn.execute(
                "select kind, error_code as code, count(*) as count,"
                " bool_or(error_retryable) as retryable, max(completed_at) as last_at,"
                " (array_agg(error_message order by completed_at desc))[1] as last_message,"
                " (array_agg(id order by completed_at desc))[1] as last_job_id"
                " from jobs where status = 'failed'"
                " and completed_at > now() - make_interval(secs => %s)"
                " group by kind, error_code order by count desc, kind, code",
                (days * 86400.0,),
            ).fetchall()
        return [_json_safe(r) for r in rows]

    def requeue(self, job_id: str, who: str) -> dict:
        """Queue a failed or canceled job again from the start (an operator's retry)."""
        with self.db.service() as conn, conn.transaction():
            job = conn.execute("select * from jobs where id = %s for update", (job_id,)).fetchone()
            if job is None:
                raise NotFound("No job with this id.", code="JOB_NOT_FOUND")
            if job["status"] not in ("failed", "canceled"):
                raise Conflict(
                    f"Only failed or canceled jobs can be retried; this one is {job['status']}.",
                    code="JOB_NOT_RETRYABLE",
                )
            if job.get("inputs_swept_at") is not None:
                raise Conflict(
                    "This job's uploads were already deleted by retention; it cannot run again.",
                    code="INPUTS_GONE",
                )
            row = conn.execute(
                "update jobs set status = 'queued', progress = 0, current_stage = null,"
                " attempts = 0, worker_id = null, heartbeat_at = null, cancel_requested = false,"
                " error_code = null, error_message = null, error_retryable = null, result = null,"
                " outputs = '[]'::jsonb, started_at = null, completed_at = null,"
                " updated_at = now() where id = %s returning *",
                (job_id,),
            ).fetchone()
            conn.execute(
                "update job_stages set status = 'pending', started_at = null, completed_at = null,"
                " error = null where job_id = %s",
                (job_id,),
            )
            self.add_event(
                conn,
                row,
                "message",
                {
                    "message": f"Queued again by an operator (was {job['status']}"
                    f"{': ' + job['error_code'] if job['error_code'] else ''}).",
                    "requeued_by": who,
                },
            )
        return row
