"""One event listener per API process, waking the SSE streams of a job.

A thread holds one Postgres connection that ``LISTEN``s on ``job_events`` (a trigger NOTIFYs
``"<job_id>:<event_id>"`` for every inserted event). For each batch of notifications about jobs
someone here watches, it reads those event rows once (one query, as the service) and hands them
to the event loop, which puts them on the queues of that job's streams. Streams never poll the
database one by one: a thousand streams on six jobs cost six row reads per event, not a thousand.

If ``LISTEN`` is not possible (e.g. a transaction-mode pooler), the same thread falls back to one
poller for the whole process. On Modal every API container runs its own listener: an event
reaches every container's streams, each container reads it once (see the README).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import threading
from collections.abc import Iterator

import psycopg

from shared.jobs import JobStore

log = logging.getLogger("soundstage.events")

CHANNEL = "job_events"
POLL_FALLBACK_S = 0.25


def sse_frame(ev: dict) -> bytes:
    """One event in the SSE wire format (``text/event-stream``)."""
    data = {**ev["data"], "job_id": str(ev["job_id"]), "created_at": ev["created_at"]}
    body = json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=str)
    return f"id: {ev['id']}\nevent: {ev['type']}\ndata: {body}\n\n".encode()


class Subscription:
    """One stream's inbox. Waiting costs one future and one timer (no task per wait, as
    ``asyncio.wait_for`` would make): with a thousand streams, that is most of a delivery."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.items: collections.deque[tuple[dict, bytes]] = collections.deque()
        self._waiter: asyncio.Future | None = None

    def put(self, item: tuple[dict, bytes]) -> None:
        self.items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def drain(self) -> list[tuple[dict, bytes]]:
        out = list(self.items)
        self.items.clear()
        return out

    async def wait(self, timeout_s: float) -> list[tuple[dict, bytes]]:
        """Every item that arrived, waiting up to ``timeout_s`` for the first; [] on timeout."""
        if not self.items:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout_s, lambda: waiter.done() or waiter.set_result(None))
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self.drain()


class EventHub:
    def __init__(self, db_url: str, jobs: JobStore, loop: asyncio.AbstractEventLoop) -> None:
        self.db_url = db_url
        self.jobs = jobs
        self.loop = loop
        self._subs: dict[str, set[Subscription]] = {}
        self._watched: frozenset[str] = frozenset()  # read by the thread without a lock
        self._stop = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._thread = threading.Thread(target=self._run, name="job-events", daemon=True)
        self._thread.start()

    # -- streams (event loop) -------------------------------------------------------------------

    @contextlib.contextmanager
    def subscribe(self, job_id: str) -> Iterator[Subscription]:
        sub = Subscription(job_id)
        self._subs.setdefault(job_id, set()).add(sub)
        self._watched = frozenset(self._subs)
        try:
            yield sub
        finally:
            subs = self._subs.get(job_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[job_id]  # nothing kept once a job's last stream closes
            self._watched = frozenset(self._subs)

    def streams(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def _dispatch(self, rows: list[dict]) -> None:
        for row in rows:
            subs = self._subs.get(row["job_id"])
            if not subs:
                continue
            frame = sse_frame(row)  # encoded once, sent to every stream of the job
            for sub in subs:
                sub.put((row, frame))

    # -- the listener thread --------------------------------------------------------------------

    def _deliver(self, ids: list[int]) -> None:
        rows = self.jobs.events_by_ids(ids)
        if rows and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._dispatch, rows)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as e:  # noqa: BLE001 - reconnect; streams re-read on their own timer
                if self._stop.is_set():
                    return
                log.warning("event listener lost its connection (%s); reconnecting", e)
                self._stop.wait(1.0)

    def _listen(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            self._conn = conn
            try:
                conn.execute(f"listen {CHANNEL}")
            except psycopg.Error:
                log.warning("LISTEN is not available; one poller serves this process")
                self._poll(conn)
                return
            while not self._stop.is_set():
                ids: list[int] = []
                for note in conn.notifies(timeout=1.0, stop_after=1):
                    ids.extend(self._wanted([note.payload]))
                # Drain whatever else arrived meanwhile: one read for the whole burst.
                for note in conn.notifies(timeout=0.0):
                    ids.extend(self._wanted([note.payload]))
                if ids:
                    self._deliver(ids)

    def _wanted(self, payloads: list[str]) -> list[int]:
        watched = self._watched
        out = []
        for p in payloads:
            job_id, _, event_id = p.partition(":")
            if job_id in watched and event_id.isdigit():
                out.append(int(event_id))
        return out

    def _poll(self, conn: psycopg.Connection) -> None:
        last = self.jobs.newest_event_id(conn)
        while not self._stop.wait(POLL_FALLBACK_S):
            watched = list(self._watched)
            if not watched:
                continue
            if ids := self.jobs.event_ids_after(conn, last, watched):
                last = ids[-1]
                self._deliver(ids)

    def close(self) -> None:
        self._stop.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.cancel_safe()
        self._thread.join(timeout=3.0)


def event_hub(app, services) -> EventHub:
    """The hub of the serving event loop, started on first use (a server has one loop; tests
    may drive one app from several)."""
    loop = asyncio.get_running_loop()
    hubs: dict | None = getattr(app.state, "event_hubs", None)
    if hubs is None:
        hubs = app.state.event_hubs = {}
    hub = hubs.get(loop)
    if hub is None:
        for old_loop in [x for x in hubs if x.is_closed()]:
            hubs.pop(old_loop).close()
        hub = hubs[loop] = EventHub(services.db.url, services.jobs, loop)
    return hub


def close_hubs(app) -> None:
    hubs: dict = getattr(app.state, "event_hubs", None) or {}
    while hubs:
        hubs.popitem()[1].close()
