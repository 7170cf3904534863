"""Aggregates over the job tables for people watching the service: a user's or everyone's queue
and per-kind durations (``GET /api/v1/stats``), the operators' list of every user's jobs and
failures by code, and the figures ``GET /metrics`` exposes at scrape time. Reads only.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.job_tables import JobTables, json_safe

# What each metric histogram measures: a query yielding label columns k0, k1, ... and x.
HISTOGRAM_SOURCES = {
    "queue_wait_s": (
        "select kind as k0, extract(epoch from started_at - created_at) as x from jobs"
        " where started_at is not null",
        1,
    ),
    "job_duration_s": (
        "select kind as k0, extract(epoch from completed_at - started_at) as x from jobs"
        " where status = 'completed' and started_at is not null",
        1,
    ),
    "stage_duration_s": (
        "select j.kind as k0, s.name as k1, s.duration_s as x from job_stages s"
        " join jobs j on j.id = s.job_id where s.status = 'completed'"
        " and s.duration_s is not null",
        2,
    ),
    "job_cost_usd": (
        "select kind as k0, total_cost_usd::float8 as x from jobs where status = 'completed'",
        1,
    ),
}


class JobStats(JobTables):
    """Read-only aggregates (service role: the callers check who may see them)."""

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

    # -- operators (admin role; the API checks the role) ------------------------------------

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
        return [json_safe(r) for r in rows], int(total["n"])

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
        return [json_safe(r) for r in rows]

    # -- metrics (read at scrape time) ----------------------------------------------------------

    def jobs_by_kind_and_status(self) -> list[dict]:
        """Rows of ``kind``, ``status``, ``n``: how many jobs are in each status now."""
        with self.db.service() as conn:
            return conn.execute(
                "select kind, status, count(*) as n from jobs group by 1, 2 order by 1, 2"
            ).fetchall()

    def oldest_queued_wait_s(self) -> float:
        """How long the oldest queued job has waited (0 when none waits)."""
        with self.db.service() as conn:
            row = conn.execute(
                "select coalesce(extract(epoch from now() - min(created_at)), 0) as s from jobs"
                " where status = 'queued'"
            ).fetchone()
        return float(row["s"])

    def failures_by_kind_and_code(self) -> list[dict]:
        """Rows of ``kind``, ``code``, ``n`` over every failed job kept."""
        with self.db.service() as conn:
            return conn.execute(
                "select kind, coalesce(error_code, 'UNKNOWN') as code, count(*) as n from jobs"
                " where status = 'failed' group by 1, 2 order by 1, 2"
            ).fetchall()

    def gpu_seconds_by_stage(self) -> list[dict]:
        """Rows of ``kind``, ``stage``, ``provider``, ``s``: GPU-seconds recorded as costs."""
        with self.db.service() as conn:
            return conn.execute(
                "select j.kind, coalesce(c.stage, '') as stage, c.provider, sum(c.units) as s"
                " from job_costs c join jobs j on j.id = c.job_id where c.unit = 'gpu_seconds'"
                " group by 1, 2, 3 order by 1, 2, 3"
            ).fetchall()

    def histogram(self, measure: str, buckets: Sequence[float]) -> list[dict]:
        """A histogram of ``measure`` (a key of ``HISTOGRAM_SOURCES``) computed in SQL: per
        label set, ``labels``, cumulative ``counts`` per bucket bound, ``count`` and ``sum``."""
        source_sql, n_labels = HISTOGRAM_SOURCES[measure]
        keys = ", ".join(f"k{i}" for i in range(n_labels))
        counts = ", ".join(
            f"count(*) filter (where x <= {float(b)!r}) as b{i}" for i, b in enumerate(buckets)
        )
        with self.db.service() as conn:
            rows = conn.execute(
                f"select {keys}, {counts}, count(*) as n, coalesce(sum(x), 0) as s"
                f" from ({source_sql}) src group by {keys} order by {keys}"
            ).fetchall()
        return [
            {
                "labels": [str(r[f"k{i}"]) for i in range(n_labels)],
                "counts": [float(r[f"b{i}"]) for i in range(len(buckets))],
                "count": float(r["n"]),
                "sum": float(r["s"]),
            }
            for r in rows
        ]
