"""What a running job records as it goes: its stages, progress, costs and outputs, each written
with the event the job's stream shows (``stage_update``, ``progress``, ``message``,
``cost_update``). The job context (``shared.job_context``) decides when; this says how.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from shared.job_tables import JobTables

# Stages the kind does not list are recorded after the listed ones.
UNLISTED_STAGE_POSITION = 1000


def attempt_entry(
    attempt: int, status: str, duration_s: float, exc: BaseException | None
) -> dict[str, Any]:
    """One line of a stage's ``attempt_log``: which attempt, how it ended, and why."""
    entry: dict[str, Any] = {
        "attempt": attempt,
        "status": status,
        "duration_s": round(duration_s, 3),
    }
    if exc is not None:
        from shared.retries import classify

        failure = classify(exc)
        entry["code"] = failure.code
        entry["message"] = failure.message if failure.code == "INTERNAL_ERROR" else str(exc)[:300]
    return entry


class JobRecording(JobTables):
    """Writes of a job while a worker runs it. ``job`` is the claimed row (``id``, ``user_id``)."""

    def start_stage(
        self, job: dict, name: str, engine: str | None, progress_pct: float | None
    ) -> int:
        """Mark stage ``name`` running (again, on a retry) and the job's current stage; the
        job's progress moves up to ``progress_pct`` when given. Returns the stage's attempt."""
        with self.db.service() as conn, conn.transaction():
            attempt = conn.execute(
                "insert into job_stages (job_id, user_id, name, position, status, engine, attempts,"
                " started_at) values (%s, %s, %s, %s, 'running', %s, 1, now())"
                " on conflict (job_id, name) do update set status = 'running', engine = excluded.engine,"
                " attempts = job_stages.attempts + 1, started_at = now(), completed_at = null, error = null"
                " returning attempts",
                (job["id"], job["user_id"], name, UNLISTED_STAGE_POSITION, engine),
            ).fetchone()["attempts"]
            conn.execute(
                "update jobs set current_stage = %s, progress = greatest(progress, coalesce(%s, progress)),"
                " updated_at = now() where id = %s",
                (name, progress_pct, job["id"]),
            )
            self.add_event(
                conn,
                job,
                "stage_update",
                {
                    "stage": name,
                    "status": "running",
                    "engine": engine,
                    "progress": progress_pct,
                    "attempt": attempt,
                },
            )
        return attempt

    def finish_stage(
        self,
        job: dict,
        name: str,
        *,
        attempt: int,
        status: str,
        engine: str | None,
        duration_s: float,
        exc: BaseException | None = None,
    ) -> None:
        """End stage ``name``: ``completed``, or ``failed`` / ``skipped`` with ``exc``, the
        exception that ended it (its text on the row, its code in the attempt log and event)."""
        entry = attempt_entry(attempt, status, duration_s, exc)
        data: dict[str, Any] = {
            "stage": name,
            "status": status,
            "engine": engine,
            "duration_s": round(duration_s, 3),
            "attempt": attempt,
        }
        with self.db.service() as conn, conn.transaction():
            if exc is None:
                conn.execute(
                    "update job_stages set status = %s, completed_at = now(), duration_s = %s,"
                    " engine = %s, attempt_log = attempt_log || %s where job_id = %s and name = %s",
                    (status, duration_s, engine, Jsonb([entry]), job["id"], name),
                )
            else:
                conn.execute(
                    "update job_stages set status = %s, completed_at = now(), duration_s = %s,"
                    " engine = %s, error = %s, attempt_log = attempt_log || %s"
                    " where job_id = %s and name = %s",
                    (status, duration_s, engine, str(exc)[:500], Jsonb([entry]), job["id"], name),
                )
                data["error"] = entry.get("code")
            self.add_event(conn, job, "stage_update", data)

    def record_progress(
        self,
        job: dict,
        percent: float,
        *,
        stage: str | None,
        remaining_s: float | None,
        message: str | None = None,
    ) -> None:
        """Move the job's progress up to ``percent`` (it never goes back) with the time left."""
        with self.db.service() as conn, conn.transaction():
            conn.execute(
                "update jobs set progress = greatest(progress, %s),"
                " estimated_remaining_s = coalesce(%s, estimated_remaining_s), updated_at = now()"
                " where id = %s",
                (percent, remaining_s, job["id"]),
            )
            data: dict[str, Any] = {"progress": percent, "stage": stage}
            if message:
                data["message"] = message
            if remaining_s is not None:
                data["estimated_remaining_s"] = round(remaining_s, 1)
            self.add_event(conn, job, "progress", data)

    def record_cost(
        self,
        job: dict,
        *,
        stage: str | None,
        provider: str,
        units: float,
        unit: str,
        cost_usd: float,
        detail: str,
        total_cost_usd: float,
    ) -> None:
        """Add a cost row, to the job's total and to its stage's (``stage`` None: the job's
        alone); ``total_cost_usd`` is the job's spending so far, shown on the event."""
        with self.db.service() as conn, conn.transaction():
            conn.execute(
                "insert into job_costs (job_id, user_id, stage, provider, units, unit, cost_usd, detail)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s)",
                (job["id"], job["user_id"], stage, provider, units, unit, cost_usd, detail),
            )
            conn.execute(
                "update jobs set total_cost_usd = total_cost_usd + %s where id = %s",
                (cost_usd, job["id"]),
            )
            if stage:
                conn.execute(
                    "update job_stages set cost_usd = cost_usd + %s where job_id = %s and name = %s",
                    (cost_usd, job["id"], stage),
                )
            self.add_event(
                conn,
                job,
                "cost_update",
                {
                    "stage": stage,
                    "provider": provider,
                    "units": units,
                    "unit": unit,
                    "cost_usd": round(float(cost_usd), 6),
                    "total_cost_usd": round(total_cost_usd, 6),
                },
            )

    def record_output(self, job_id: str, record: dict[str, Any]) -> None:
        """Add an output to the job, replacing one of the same ``record["name"]``."""
        with self.db.service() as conn:
            conn.execute(
                "update jobs set outputs = (select coalesce(jsonb_agg(o), '[]'::jsonb) from"
                " jsonb_array_elements(outputs) o where o->>'name' <> %s) || jsonb_build_array(%s::jsonb)"
                " where id = %s",
                (record["name"], Jsonb(record), job_id),
            )

    def remove_outputs(self, job_id: str, names: list[str]) -> None:
        """Drop the job's outputs named ``names`` from its record (their files are the
        caller's to remove)."""
        with self.db.service() as conn:
            conn.execute(
                "update jobs set outputs = (select coalesce(jsonb_agg(o), '[]'::jsonb) from"
                " jsonb_array_elements(outputs) o where not (o->>'name' = any(%s))) where id = %s",
                (names, job_id),
            )
