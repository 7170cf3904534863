"""The job store as its users see it (shared.jobs), on real Postgres: creating a job with its
stages, idempotency keys, a job's view (stages, costs, queue position), listing, the event log's
reads, cancel and delete. Rows are checked with plain SQL (tests.store_helpers)."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest

from shared.errors import Conflict, NotFound
from tests.store_helpers import events, new_job, new_user, row, set_, stages


def test_create_stores_the_job_with_its_estimates_and_stages_in_order(store):
    user = new_user(store)
    job = new_job(
        store,
        user,
        kind="test_sleep",
        stages=("b", "a", "c"),
        params={"seconds": 2},
        inputs=[{"bucket": "audio-uploads", "path": "x"}],
        estimated_duration_s=12.5,
        estimated_cost_usd=0.25,
        budget_usd=3.0,
        retention_days=2,
        params_hash="h-1",
    )
    stored = row(store, job["id"])
    assert job["id"] == stored["id"] and stored["status"] == "queued"
    assert (stored["user_id"], stored["kind"], stored["params"], stored["inputs"]) == (
        uuid.UUID(user),
        "test_sleep",
        {"seconds": 2},
        [{"bucket": "audio-uploads", "path": "x"}],
    )
    assert (stored["estimated_duration_s"], stored["estimated_remaining_s"]) == (12.5, 12.5)
    assert (float(stored["estimated_cost_usd"]), float(stored["budget_usd"])) == (0.25, 3.0)
    assert stored["request_hash"] == "h-1" and stored["idempotency_key"] is None
    lives = stored["expires_at"] - stored["created_at"]
    assert abs(lives - dt.timedelta(days=2)) < dt.timedelta(seconds=5)
    rows = stages(store, job["id"])
    assert [(n, r["position"], r["status"]) for n, r in rows.items()] == [
        ("b", 0, "pending"),
        ("a", 1, "pending"),
        ("c", 2, "pending"),
    ]
    assert all(str(r["user_id"]) == user for r in rows.values())


def test_a_job_lives_14_days_unless_told_otherwise(store):
    stored = row(store, new_job(store, new_user(store))["id"])
    lives = stored["expires_at"] - stored["created_at"]
    assert abs(lives - dt.timedelta(days=14)) < dt.timedelta(seconds=5)


def test_an_idempotency_key_finds_its_users_job_and_a_second_create_conflicts(store):
    alice, bob = new_user(store), new_user(store)
    job = new_job(store, alice, key="k-1")
    assert store.find_idempotent(alice, "k-1")["id"] == job["id"]
    assert store.find_idempotent(bob, "k-1") is None
    assert store.find_idempotent(alice, "k-2") is None
    second = str(uuid.uuid4())
    with pytest.raises(Conflict) as err:
        new_job(store, alice, key="k-1", job_id=second)
    assert err.value.code == "IDEMPOTENCY_CONFLICT"
    assert err.value.message == "A job with this Idempotency-Key already exists."
    assert row(store, second) is None and stages(store, second) == {}
    # The same key is another user's own.
    assert new_job(store, bob, key="k-1")["user_id"] == uuid.UUID(bob)


def test_get_shows_stages_in_order_and_costs_in_the_order_they_came(store):
    user = new_user(store)
    job = store.claim("w", str(new_job(store, user, stages=("first", "second"))["id"]))
    store.start_stage(job, "first", "eng-1", 10.0)
    cost = dict(units=2.0, unit="seconds", cost_usd=0.25, detail="d1", total_cost_usd=0.25)
    store.record_cost(job, stage="first", provider="cpu", **cost)
    store.finish_stage(job, "first", attempt=1, status="completed", engine="eng-1", duration_s=1.5)
    cost = dict(units=1.0, unit="calls", cost_usd=0.5, detail="d2", total_cost_usd=0.75)
    store.record_cost(job, stage=None, provider="api", **cost)
    view = store.get(user, str(job["id"]))
    assert [s["name"] for s in view["stages"]] == ["first", "second"]
    first = view["stages"][0]
    assert (first["status"], first["engine"], first["attempts"], first["duration_s"]) == (
        "completed",
        "eng-1",
        1,
        1.5,
    )
    assert first["cost_usd"] == 0.25 and first["error"] is None
    assert first["started_at"] and first["completed_at"]
    fields = ("stage", "provider", "units", "unit", "cost_usd", "detail")
    assert [tuple(c[f] for f in fields) for c in view["cost_items"]] == [
        ("first", "cpu", 2.0, "seconds", 0.25, "d1"),
        (None, "api", 1.0, "calls", 0.5, "d2"),
    ]
    assert view["total_cost_usd"] == 0.75 and isinstance(view["total_cost_usd"], float)
    assert view["queue_position"] == 0
    # A job with no stage and no cost shows empty lists, not nulls.
    bare = store.get(user, str(new_job(store, user, stages=())["id"]))
    assert (bare["stages"], bare["cost_items"]) == ([], [])


def test_the_queue_position_counts_everyones_older_queued_jobs(store):
    alice, bob = new_user(store), new_user(store)
    a1 = new_job(store, alice)
    new_job(store, bob)
    a2 = new_job(store, alice)
    assert store.get(alice, str(a1["id"]))["queue_position"] == 1
    assert store.get(alice, str(a2["id"]))["queue_position"] == 3
    store.claim("w", str(a1["id"]))
    assert store.get(alice, str(a1["id"]))["queue_position"] == 0
    assert store.get(alice, str(a2["id"]))["queue_position"] == 2


def test_someone_elses_or_an_unknown_job_is_not_found(store):
    alice, bob = new_user(store), new_user(store)
    job_id = str(new_job(store, alice)["id"])
    for user, jid in ((bob, job_id), (alice, str(uuid.uuid4()))):
        with pytest.raises(NotFound) as err:
            store.get(user, jid)
        assert (err.value.code, err.value.message) == ("JOB_NOT_FOUND", "No job with this id.")
    with pytest.raises(NotFound) as err:
        store.load(str(uuid.uuid4()))
    assert (err.value.code, err.value.message) == ("JOB_NOT_FOUND", "No job with this id.")
    assert store.load(job_id)["id"] == uuid.UUID(job_id)


def test_list_is_the_users_own_newest_first_filtered_and_paged(store):
    alice, bob = new_user(store), new_user(store)
    ids = []
    for i in range(5):
        job = new_job(store, alice, kind="test_sleep" if i % 2 == 0 else "analyze")
        set_(store, job["id"], "created_at = now() - make_interval(secs => %s)", 100 - i)
        ids.append(str(job["id"]))
    new_job(store, bob)
    store.claim("w", ids[4])
    items, total = store.list(alice)
    assert total == 5 and [str(j["id"]) for j in items] == ids[::-1]
    assert isinstance(items[0]["created_at"], str)  # JSON-safe
    items, total = store.list(alice, limit=2, offset=1)
    assert total == 5 and [str(j["id"]) for j in items] == [ids[3], ids[2]]
    items, total = store.list(alice, kind="analyze")
    assert total == 2 and [str(j["id"]) for j in items] == [ids[3], ids[1]]
    items, total = store.list(alice, status="processing")
    assert total == 1 and [str(j["id"]) for j in items] == [ids[4]]
    items, total = store.list(alice, kind="test_sleep", status="queued")
    assert total == 2 and [str(j["id"]) for j in items] == [ids[2], ids[0]]


def test_list_shows_20_jobs_a_page_by_default(store):
    user = new_user(store)
    for _ in range(21):
        new_job(store, user, stages=())
    items, total = store.list(user)
    assert (len(items), total) == (20, 21)


def test_events_after_an_id_in_order_and_limited(store):
    user = new_user(store)
    job = new_job(store, user)
    other = new_job(store, user)
    ids = [store.event(job, "message", {"message": f"m{i}"}) for i in range(4)]
    store.event(other, "message", {"message": "elsewhere"})
    got = store.events_after(user, str(job["id"]), ids[0])
    assert [e["id"] for e in got] == ids[1:]
    assert [e["data"]["message"] for e in got] == ["m1", "m2", "m3"]
    assert got[0]["type"] == "message" and isinstance(got[0]["created_at"], str)
    assert [e["id"] for e in store.events_after(user, str(job["id"]), 0, limit=2)] == ids[:2]
    assert store.events_after(new_user(store), str(job["id"]), 0) == []  # RLS


def test_events_after_reads_500_events_a_call_by_default(store):
    user = new_user(store)
    job = new_job(store, user)
    with store.db.service() as conn:
        conn.execute(
            "insert into job_events (job_id, user_id, type, data)"
            " select %s, %s, 'progress', '{}'::jsonb from generate_series(1, 501)",
            (job["id"], user),
        )
    assert len(store.events_after(user, str(job["id"]), 0)) == 500


def test_events_by_ids_returns_those_events_oldest_first(store):
    user = new_user(store)
    job = new_job(store, user)
    ids = [store.event(job, "progress", {"progress": p}) for p in (1, 2, 3)]
    got = store.events_by_ids([ids[2], ids[0]])
    assert [(e["id"], e["job_id"], e["type"], e["data"]) for e in got] == [
        (ids[0], str(job["id"]), "progress", {"progress": 1}),
        (ids[2], str(job["id"]), "progress", {"progress": 3}),
    ]
    assert isinstance(got[0]["created_at"], str)


def test_the_last_terminal_event_is_there_only_once_the_job_ended(store):
    user = new_user(store)
    job = new_job(store, user)
    job_id = str(job["id"])
    assert store.last_terminal_event(user, job_id) is None
    claimed = store.claim("w", job_id)
    store.event(claimed, "error", {"code": "EARLY"})  # an error event while still running
    assert store.last_terminal_event(user, job_id) is None
    store.fail(claimed, "BROKE", "It broke.", False)
    last = store.last_terminal_event(user, job_id)
    assert (last["type"], last["data"]["code"]) == ("error", "BROKE")
    assert isinstance(last["created_at"], str) and last["id"] > 0
    store.requeue(job_id, "ops")
    again = store.claim("w2", job_id)
    store.complete(again, {"ok": True})
    assert store.last_terminal_event(user, job_id)["type"] == "completed"
    assert store.last_terminal_event(new_user(store), job_id) is None  # RLS


def test_status_of_reads_the_few_fields_a_worker_checks(store):
    user = new_user(store)
    job = new_job(store, user)
    assert store.status_of(str(job["id"])) == {
        "id": job["id"],
        "user_id": uuid.UUID(user),
        "kind": "test_sleep",
        "status": "queued",
        "cancel_requested": False,
        "worker_id": None,
    }
    store.claim("w", str(job["id"]))
    assert store.status_of(str(job["id"]))["worker_id"] == "w"
    assert store.status_of(str(uuid.uuid4())) is None


def test_the_listeners_reads_of_event_ids(store):
    user = new_user(store)
    a, b, c = (new_job(store, user) for _ in range(3))
    ids = [store.event(j, "message", {}) for j in (a, b, c, a)]
    with psycopg.connect(store.db.url, autocommit=True) as conn:
        assert store.newest_event_id(conn) == ids[-1]
        assert store.event_ids_after(conn, ids[0], [str(a["id"]), str(b["id"])]) == [
            ids[1],
            ids[3],
        ]
        assert store.event_ids_after(conn, 0, [str(c["id"])]) == [ids[2]]


def test_cancel_ends_a_queued_job_at_once(store):
    user = new_user(store)
    job_id = str(new_job(store, user)["id"])
    view = store.cancel(user, job_id)
    assert (view["status"], view["cancel_requested"], view["error_code"]) == (
        "canceled",
        True,
        "CANCELED",
    )
    assert [s["status"] for s in view["stages"]] == ["skipped", "skipped"]
    assert [t for t, _ in events(store, job_id)] == ["error"]
    with pytest.raises(Conflict) as err:
        store.cancel(user, job_id)
    assert (err.value.code, err.value.message) == ("JOB_FINISHED", "The job is already canceled.")


def test_cancel_of_a_running_job_asks_its_worker_to_stop(store):
    user = new_user(store)
    job_id = str(new_job(store, user)["id"])
    store.claim("w", job_id)
    view = store.cancel(user, job_id)
    assert (view["status"], view["cancel_requested"]) == ("processing", True)
    assert row(store, job_id)["worker_id"] == "w" and events(store, job_id)[-1][0] == "message"
    with pytest.raises(NotFound):
        store.cancel(new_user(store), job_id)


def test_delete_refuses_a_running_job_and_removes_a_finished_one(store):
    user = new_user(store)
    job_id = str(new_job(store, user)["id"])
    claimed = store.claim("w", job_id)
    with pytest.raises(Conflict) as err:
        store.delete(user, job_id)
    assert (err.value.code, err.value.message) == (
        "JOB_RUNNING",
        "The job is still running; cancel it first.",
    )
    assert row(store, job_id) is not None
    with pytest.raises(NotFound):
        store.delete(new_user(store), job_id)
    store.complete(claimed, {})
    gone = store.delete(user, job_id)
    assert str(gone["id"]) == job_id and gone["status"] == "completed"
    assert row(store, job_id) is None and stages(store, job_id) == {}
    queued = str(new_job(store, user)["id"])
    store.delete(user, queued)
    assert row(store, queued) is None


def test_delete_refuses_a_job_a_worker_claimed_after_delete_read_it_as_queued(store, monkeypatch):
    # delete() reads the job, then deletes the row: a worker that claimed it in between keeps
    # it (deleting it would remove the inputs it is reading and orphan what it writes).
    user = new_user(store)
    job_id = str(new_job(store, user)["id"])
    read = store.get

    def read_then_claimed(*args, **kw):
        view = read(*args, **kw)
        assert store.claim("quick-worker", job_id) is not None
        return view

    monkeypatch.setattr(store, "get", read_then_claimed)
    with pytest.raises(Conflict) as err:
        store.delete(user, job_id)
    assert err.value.code == "JOB_RUNNING"
    kept = row(store, job_id)
    assert (kept["status"], kept["worker_id"]) == ("processing", "quick-worker")
    assert stages(store, job_id) != {}


def test_two_deletes_of_one_finished_job_at_once_both_succeed(store, monkeypatch):
    # The other delete removes the row between this one's read and its own delete: the job is
    # gone, as asked, and nothing says it is running.
    user = new_user(store)
    job = store.claim("w", str(new_job(store, user)["id"]))
    store.complete(job, {})
    job_id = str(job["id"])
    read = store.get

    def read_then_deleted_by_the_other(*args, **kw):
        view = read(*args, **kw)
        with store.db.service() as conn:
            conn.execute("delete from jobs where id = %s", (job_id,))
        return view

    monkeypatch.setattr(store, "get", read_then_deleted_by_the_other)
    assert store.delete(user, job_id)["status"] == "completed"
    assert store.status_of(job_id) is None


def test_a_worker_claiming_between_the_cancels_two_steps_keeps_the_job(store, monkeypatch):
    # cancel() marks the request, then ends the job only if it is still queued: a worker that
    # claimed it in between keeps it (and stops at its next check of cancel_requested).
    user = new_user(store)
    job_id = str(new_job(store, user)["id"])
    end_if_queued = store.mark_canceled

    def claim_first(job, *args, **kw):
        assert store.claim("quick-worker", job_id) is not None
        return end_if_queued(job, *args, **kw)

    monkeypatch.setattr(store, "mark_canceled", claim_first)
    view = store.cancel(user, job_id)
    assert (view["status"], view["worker_id"], view["cancel_requested"]) == (
        "processing",
        "quick-worker",
        True,
    )
    assert [s["status"] for s in view["stages"]] == ["pending", "pending"]
