"""The process's one event listener: an inserted job event reaches every stream of that job
through LISTEN/NOTIFY (no stream reads the database), encoded once; streams of other jobs hear
nothing; a closed stream leaves nothing behind in the hub."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

from web.events import EventHub


def _make_job(services, user_id: str) -> dict:
    """A job held 'processing' by this test (so the session's workers leave it alone)."""
    for _ in range(5):
        job = _queued(services, user_id)
        held = services.jobs.claim("test-holder", job)
        if held is not None:
            return held
    raise AssertionError("the session's workers took every job made for this test")


def _queued(services, user_id: str) -> str:
    job_id = str(uuid.uuid4())
    services.jobs.create(
        job_id=job_id,
        user_id=user_id,
        kind="test_sleep",
        params={},
        inputs=[],
        stages=["first"],
        idempotency_key=None,
        estimated_duration_s=1.0,
        estimated_cost_usd=0.0,
        budget_usd=None,
    )
    return job_id


def test_one_listener_wakes_the_streams_of_a_job(services, new_user, client):
    me = client.get("/api/v1/auth/me", headers=new_user()["headers"]).json()
    watched, other = _make_job(services, me["id"]), _make_job(services, me["id"])
    reads: list[list[int]] = []
    original = services.jobs.events_by_ids

    def counting(ids: list[int]) -> list[dict]:
        reads.append(list(ids))
        return original(ids)

    async def scenario() -> tuple[list, list, int, int]:
        hub = EventHub(services.db.url, services.jobs, asyncio.get_running_loop())
        hub.jobs = type("Spy", (), {"events_by_ids": staticmethod(counting)})()
        try:
            with hub.subscribe(str(watched["id"])) as a, hub.subscribe(str(watched["id"])) as b:
                with hub.subscribe(str(other["id"])) as c:
                    await asyncio.sleep(1.5)  # the listener is connected and LISTENing
                    await asyncio.to_thread(
                        services.jobs.event, watched, "progress", {"progress": 42}
                    )
                    got_a = await a.wait(15)
                    got_b = await b.wait(0.5)
                    got_c = await c.wait(0.5)
                    assert got_c == []
                during = hub.streams()
            after = hub.streams()
        finally:
            hub.close()
        return got_a, got_b, during, after

    # Its own thread: the browser tests' session-wide Playwright (sync API) keeps an event loop
    # running in the main thread, where asyncio.run() refuses to start another.
    with ThreadPoolExecutor(1) as pool:
        got_a, got_b, during, after = pool.submit(asyncio.run, scenario()).result()
    assert [row["data"]["progress"] for row, _ in got_a] == [42]
    assert got_a[0][1] is got_b[0][1]  # one encoded frame shared by both streams
    assert got_a[0][1].startswith(b"id: ") and b"event: progress" in got_a[0][1]
    assert len(reads) == 1  # one row read for the event, not one per stream
    assert during == 2 and after == 0  # closed streams leave nothing behind
