"""The job store: the one owner of every read and write of ``jobs``, ``job_stages``,
``job_events`` and ``job_costs``.

The API, the workers (local threads or Modal containers), the CLI, retention and the metrics all
go through it, so the lifecycle ``queued -> processing -> completed | failed | canceled`` is
enforced in one place. It is assembled from one module per side of the tables:

- here: creating a job, and a user's reads (as Supabase's ``authenticated`` role: RLS applies),
  cancel and delete;
- ``shared.job_lifecycle``: the worker's transitions (claim, heartbeat, recovery, retry,
  complete, fail, cancel), an operator's requeue, and retention's bookkeeping;
- ``shared.job_recording``: what a running job records (stages, progress, costs, outputs);
- ``shared.job_stats``: aggregates for the stats page, operators and ``/metrics``.

Writes run as the service; every change a user can watch appends its event (``job_events``).
"""

from __future__ import annotations

from psycopg.types.json import Jsonb

from shared.errors import Conflict, NotFound
from shared.job_lifecycle import JobLifecycle
from shared.job_recording import JobRecording
from shared.job_stats import JobStats
from shared.job_tables import EVENT_TYPES, TERMINAL, json_safe

__all__ = ["EVENT_TYPES", "TERMINAL", "JobStore"]


class JobStore(JobLifecycle, JobRecording, JobStats):
    """Jobs as their users see them, plus (inherited) the worker's, the recorder's and the
    operators' sides of the same tables."""

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
        return json_safe(job)

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
        return [json_safe(r) for r in rows], int(total)

    def events_after(
        self, user_id: str, job_id: str, after_id: int, limit: int = 500
    ) -> list[dict]:
        with self.db.as_user(user_id) as conn:
            rows = conn.execute(
                "select id, type, data, created_at from job_events where job_id = %s and id > %s"
                " order by id limit %s",
                (job_id, after_id, limit),
            ).fetchall()
        return [json_safe(r) for r in rows]

    def events_by_ids(self, ids: list[int]) -> list[dict]:
        """Event rows by id, for the process's event listener (it serves streams already
        authorised for their job)."""
        with self.db.service() as conn:
            rows = conn.execute(
                "select id, job_id::text as job_id, type, data, created_at from job_events"
                " where id = any(%s) order by id",
                (ids,),
            ).fetchall()
        return [json_safe(r) for r in rows]

    def last_terminal_event(self, user_id: str, job_id: str) -> dict | None:
        """The job's last ``completed``/``error`` event when the job has ended, else None."""
        with self.db.as_user(user_id) as conn:
            row = conn.execute(
                "select e.id, e.type, e.data, e.created_at from job_events e join jobs j"
                " on j.id = e.job_id where e.job_id = %s and e.type in ('completed', 'error')"
                " and j.status in ('completed', 'failed', 'canceled') order by e.id desc limit 1",
                (job_id,),
            ).fetchone()
        return json_safe(row) if row else None

    def status_of(self, job_id: str) -> dict | None:
        with self.db.service() as conn:
            return conn.execute(
                "select id, user_id, kind, status, cancel_requested, worker_id from jobs where id = %s",
                (job_id,),
            ).fetchone()

    def load(self, job_id: str) -> dict:
        with self.db.service() as conn:
            row = conn.execute("select * from jobs where id = %s", (job_id,)).fetchone()
        if row is None:
            raise NotFound("No job with this id.", code="JOB_NOT_FOUND")
        return row

    # -- the event listener's own connection (web.events) ---------------------------------------

    @staticmethod
    def newest_event_id(conn) -> int:
        """The id of the newest event (0 when none), on the listener's connection."""
        return conn.execute("select coalesce(max(id), 0) as m from job_events").fetchone()[0]

    @staticmethod
    def event_ids_after(conn, after_id: int, job_ids: list[str]) -> list[int]:
        """Ids of the events of ``job_ids`` newer than ``after_id``, oldest first, on the
        listener's connection (it polls when LISTEN is unavailable)."""
        rows = conn.execute(
            "select id from job_events where id > %s and job_id = any(%s::uuid[]) order by id",
            (after_id, job_ids),
        ).fetchall()
        return [r[0] for r in rows]

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
        job = self.get(user_id, job_id)  # 404 for someone else's job
        with self.db.service() as conn:
            gone = conn.execute(
                "delete from jobs where id = %s and user_id = %s and status <> 'processing'"
                " returning id",
                (job_id, user_id),
            ).fetchone()
        if gone is None and self.status_of(job_id) is not None:
            # Running, perhaps claimed since the read above: its worker reads the inputs and
            # writes outputs that deleting it now would remove or orphan.
            raise Conflict("The job is still running; cancel it first.", code="JOB_RUNNING")
        return job
