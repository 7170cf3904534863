"""The worker's side of a job's life: claim, heartbeat, recovery of a lost worker's jobs,
retries, and the end (completed, failed, canceled); an operator's requeue; and the bookkeeping
retention needs (which finished jobs' files are due, which rows have expired).

``queued -> processing -> completed | failed | canceled``: every transition is one statement
(or one transaction) here, so two workers, or a worker and a user's cancel, never both win.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg.types.json import Jsonb

from shared.errors import Conflict, NotFound
from shared.job_tables import JobTables, json_safe

log = logging.getLogger("soundstage.jobs")


class JobLifecycle(JobTables):
    """Transitions of the ``jobs`` row (and the stage rows they end), each with its event."""

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

    def _fail(self, conn, job: dict, code: str, message: str, retryable: bool) -> bool:
        """Fail ``job`` if the worker that claimed it (``job["worker_id"]``) still runs it;
        False when it does not (another worker took the job over, or it already ended)."""
        row = conn.execute(
            "update jobs set status = 'failed', error_code = %s, error_message = %s,"
            " error_retryable = %s, completed_at = now(), updated_at = now(), worker_id = null"
            " where id = %s and status = 'processing' and worker_id = %s returning id",
            (code, message, retryable, job["id"], job["worker_id"]),
        ).fetchone()
        if row is None:
            return False
        conn.execute(
            "update job_stages set status = 'failed', completed_at = now() where job_id = %s"
            " and status = 'running'",
            (job["id"],),
        )
        self.add_event(
            conn, job, "error", {"code": code, "message": message, "retryable": retryable}
        )
        return True

    def fail(self, job: dict, code: str, message: str, retryable: bool) -> bool:
        """Record a claimed job's failure; False (nothing written) when its worker no longer
        owns it: a worker that lost its job never ends the new owner's run."""
        with self.db.service() as conn, conn.transaction():
            return self._fail(conn, job, code, message, retryable)

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

    def complete(self, job: dict, result: dict, links: dict | None = None) -> bool:
        """Mark a claimed job completed; ``links`` (download URLs of its main output) ride on
        the ``completed`` event. False (nothing written) when the worker that claimed ``job``
        no longer owns it: a zombie worker's late result never overwrites the new owner's run."""
        with self.db.service() as conn, conn.transaction():
            row = conn.execute(
                "update jobs set status = 'completed', result = %s, progress = 100,"
                " estimated_remaining_s = 0, completed_at = now(), updated_at = now(),"
                " worker_id = null where id = %s and status = 'processing' and worker_id = %s"
                " returning outputs, total_cost_usd",
                (Jsonb(json_safe(result)), job["id"], job["worker_id"]),
            ).fetchone()
            if row is None:
                return False
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
        return True

    def mark_canceled(
        self,
        job: dict,
        message: str = "Canceled by the user.",
        *,
        only_if_queued: bool = False,
        owner: str | None = None,
    ) -> bool:
        """Record the cancellation; with ``only_if_queued``, only while no worker has the job
        (one atomic update, so it races cleanly with a worker's claim); else with ``owner``, only
        while that worker still runs it (a worker that lost the job writes nothing over the
        new owner's run). True if it took."""
        args = [message, job["id"]]
        if only_if_queued:
            guard = " and status = 'queued'"
        elif owner is not None:
            guard = " and status = 'processing' and worker_id = %s"
            args.append(owner)
        else:
            guard = ""
        with self.db.service() as conn, conn.transaction():
            row = conn.execute(
                "update jobs set status = 'canceled', completed_at = now(), updated_at = now(),"
                " worker_id = null, error_code = 'CANCELED', error_message = %s,"
                f" error_retryable = false where id = %s{guard} returning id",
                args,
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

    def clear_outputs(self, job_id: str) -> None:
        """Forget the outputs an earlier attempt recorded: a retried attempt starts clean."""
        with self.db.service() as conn:
            conn.execute(
                "update jobs set outputs = '[]'::jsonb where id = %s and outputs <> '[]'::jsonb",
                (job_id,),
            )

    # -- the end of a row's life (retention) ----------------------------------------------------

    def finished_unswept(self, limit: int) -> list[dict]:
        """Finished jobs whose uploads or outputs retention has not removed yet, oldest end
        first, with their age in days since they ended (``age_days``)."""
        with self.db.service() as conn:
            return conn.execute(
                "select id, user_id, kind, status, inputs, outputs, inputs_swept_at,"
                " outputs_swept_at, extract(epoch from now() - completed_at) / 86400.0 as age_days"
                " from jobs where completed_at is not null"
                " and (inputs_swept_at is null or outputs_swept_at is null)"
                " order by completed_at limit %s",
                (limit,),
            ).fetchall()

    def mark_swept(self, job_id: Any, what: str) -> None:
        """Note that retention removed the job's ``"inputs"`` or ``"outputs"``."""
        column = {"inputs": "inputs_swept_at", "outputs": "outputs_swept_at"}[what]
        with self.db.service() as conn:
            conn.execute(f"update jobs set {column} = now() where id = %s", (job_id,))

    def expired_finished(self, limit: int) -> list[dict]:
        """Finished jobs past their ``expires_at`` (a queued or running job never expires)."""
        with self.db.service() as conn:
            return conn.execute(
                "select id, user_id, inputs, outputs from jobs where expires_at < now()"
                " and status in ('completed', 'failed', 'canceled')"
                " order by expires_at limit %s",
                (limit,),
            ).fetchall()

    def delete_expired(self, job_id: Any) -> bool:
        """Delete an expired finished job's row (its stages, costs and events go by cascade);
        False when it is live again (retried since it was listed)."""
        with self.db.service() as conn:
            cur = conn.execute(
                "delete from jobs where id = %s and expires_at < now()"
                " and status in ('completed', 'failed', 'canceled')",
                (job_id,),
            )
            return cur.rowcount > 0
