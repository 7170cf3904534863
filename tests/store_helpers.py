"""Helpers for the job store's own tests: users and jobs made directly through the store, and
the rows and events read back with plain SQL (not with the store function under test)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from shared.jobs import JobStore


def new_user(store: JobStore) -> str:
    with store.db.service() as conn:
        row = conn.execute(
            "insert into auth.users (email, encrypted_password) values (%s, null) returning id",
            (f"store-{uuid.uuid4().hex[:12]}@example.com",),
        ).fetchone()
    return str(row["id"])


def new_job(
    store: JobStore,
    user_id: str,
    *,
    kind: str = "test_sleep",
    stages: tuple[str, ...] = ("first", "second"),
    key: str | None = None,
    **over,
) -> dict:
    """A queued job made with ``JobStore.create``."""
    args = dict(
        job_id=str(uuid.uuid4()),
        user_id=user_id,
        kind=kind,
        params={"seconds": 1},
        inputs=[],
        stages=list(stages),
        idempotency_key=key,
        estimated_duration_s=10.0,
        estimated_cost_usd=0.5,
        budget_usd=None,
    )
    args.update(over)
    return store.create(**args)


def row(store: JobStore, job_id) -> dict:
    with store.db.service() as conn:
        return conn.execute("select * from jobs where id = %s", (job_id,)).fetchone()


def stages(store: JobStore, job_id) -> dict[str, dict]:
    """The job's stage rows by name."""
    with store.db.service() as conn:
        rows = conn.execute(
            "select * from job_stages where job_id = %s order by position, name", (job_id,)
        ).fetchall()
    return {r["name"]: r for r in rows}


def events(store: JobStore, job_id) -> list[tuple[str, dict]]:
    with store.db.service() as conn:
        rows = conn.execute(
            "select type, data from job_events where job_id = %s order by id", (job_id,)
        ).fetchall()
    return [(r["type"], r["data"]) for r in rows]


def set_(store: JobStore, job_id, sql: str, *args) -> None:
    """``update jobs set <sql> where id = job_id``: a test's setup (a stale heartbeat, an age)."""
    with store.db.service() as conn:
        conn.execute(f"update jobs set {sql} where id = %s", (*args, job_id))


@contextmanager
def logged(name: str = "soundstage.jobs") -> Iterator[list[logging.LogRecord]]:
    """The records logger ``name`` emits inside the block (INFO and up), caught on the logger
    itself: the app's logging setup stops them at ``soundstage``."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
