"""What every part of the job store shares: the database, the event log's one writer, and the
conversion of rows to JSON-safe values.

The job store (``shared.jobs.JobStore``) is assembled from parts that each own one side of the
job tables (``jobs``, ``job_stages``, ``job_events``, ``job_costs``): the worker's lifecycle
(``shared.job_lifecycle``), what a running job records (``shared.job_recording``) and the
operators' aggregates (``shared.job_stats``). All of them append events through ``add_event``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from shared.db import Database

TERMINAL = ("completed", "failed", "canceled")
EVENT_TYPES = ("stage_update", "progress", "message", "cost_update", "completed", "error")


def json_safe(v: Any) -> Any:
    """``v`` with Decimals as floats and datetimes as ISO strings, recursively."""
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_safe(x) for x in v]
    return v


class JobTables:
    """The database the job tables live in, and the event log's writer."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_event(self, conn: Connection, job: dict, type_: str, data: dict) -> int:
        """Append an event inside the caller's transaction; returns its id."""
        assert type_ in EVENT_TYPES, type_
        row = conn.execute(
            "insert into job_events (job_id, user_id, type, data) values (%s, %s, %s, %s) returning id",
            (job["id"], job["user_id"], type_, Jsonb(json_safe(data))),
        ).fetchone()
        return row["id"]

    def event(self, job: dict, type_: str, data: dict) -> int:
        """Append an event on its own; returns its id."""
        with self.db.service() as conn:
            return self.add_event(conn, job, type_, data)
