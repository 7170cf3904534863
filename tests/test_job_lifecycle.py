"""The worker's side of a job's life (shared.job_lifecycle), on real Postgres: claim, heartbeat,
recovery of a lost worker's jobs, fail, retry, complete, cancel, an operator's requeue, and the
rows retention asks for. Each transition is checked on the rows and events it writes."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from shared.errors import Conflict, NotFound
from tests.store_helpers import events, logged, new_job, new_user, row, set_, stages


def _aged(store, job, seconds: float) -> None:
    set_(store, job["id"], "created_at = now() - make_interval(secs => %s)", seconds)


def test_claim_takes_the_oldest_queued_job_and_records_the_attempt(store):
    user = new_user(store)
    newer, older = new_job(store, user), new_job(store, user)
    _aged(store, older, 60)
    _aged(store, newer, 30)
    job = store.claim("w-1")
    assert job["id"] == older["id"]
    stored = row(store, older["id"])
    assert (stored["status"], stored["attempts"], stored["worker_id"]) == ("processing", 1, "w-1")
    assert stored["heartbeat_at"] is not None and stored["started_at"] is not None
    assert events(store, older["id"]) == [
        ("message", {"message": "Started (attempt 1).", "worker": "w-1"})
    ]
    assert store.claim("w-2")["id"] == newer["id"]
    assert store.claim("w-3") is None


def test_claim_by_id_takes_that_job_only_while_it_is_queued(store):
    user = new_user(store)
    older, wanted = new_job(store, user), new_job(store, user)
    _aged(store, older, 60)
    assert store.claim("w", str(wanted["id"]))["id"] == wanted["id"]
    assert store.claim("w", str(wanted["id"])) is None  # running already
    assert row(store, older["id"])["status"] == "queued"
    assert store.claim("w", str(uuid.uuid4())) is None


def test_a_second_claim_keeps_the_first_start_and_counts_on(store):
    user = new_user(store)
    job = new_job(store, user)
    first = store.claim("w-1", str(job["id"]))
    set_(store, job["id"], "heartbeat_at = now() - interval '1 hour'")
    assert store.recover_stale(60, 3) == [(str(job["id"]), "requeued")]
    second = store.claim("w-2", str(job["id"]))
    assert second["attempts"] == 2 and second["started_at"] == first["started_at"]
    assert second["worker_id"] == "w-2"
    assert events(store, job["id"])[-1][1]["message"] == "Started (attempt 2)."


def test_heartbeat_is_the_owners_alone(store):
    user = new_user(store)
    job = new_job(store, user)
    store.claim("w", str(job["id"]))
    set_(store, job["id"], "heartbeat_at = now() - interval '1 hour'")
    assert store.heartbeat(str(job["id"]), "someone-else") is False
    assert row(store, job["id"])["heartbeat_at"] < row(store, job["id"])["started_at"]
    assert store.heartbeat(str(job["id"]), "w") is True
    assert row(store, job["id"])["heartbeat_at"] > row(store, job["id"])["started_at"]
    set_(store, job["id"], "status = 'completed'")
    assert store.heartbeat(str(job["id"]), "w") is False


def _ending(stored: dict) -> tuple:
    """How a job row says it ended: status, error code, message, retryable, its worker."""
    keys = ("status", "error_code", "error_message", "error_retryable", "worker_id")
    return tuple(stored[k] for k in keys)


def _running(store, user, stale_s: float | None = 3600, attempts: int | None = None) -> dict:
    """A claimed job whose first stage runs and whose second waits; its heartbeat
    ``stale_s`` seconds old."""
    job = store.claim("w", str(new_job(store, user, stages=("done", "first", "second"))["id"]))
    store.start_stage(job, "done", "e", 10.0)
    store.finish_stage(job, "done", attempt=1, status="completed", engine="e", duration_s=1.0)
    store.start_stage(job, "first", "e", 40.0)
    if stale_s is not None:
        set_(store, job["id"], "heartbeat_at = now() - make_interval(secs => %s)", stale_s)
    if attempts is not None:
        set_(store, job["id"], "attempts = %s", attempts)
    return job


def test_recovery_requeues_a_stale_job_with_attempts_left(store):
    user = new_user(store)
    job = _running(store, user, attempts=2)
    with logged() as records:
        assert store.recover_stale(60, 3) == [(str(job["id"]), "requeued")]
    assert [(r.getMessage(), r.levelname, r.job_id) for r in records] == [
        ("stale job requeued", "WARNING", str(job["id"]))
    ]
    stored = row(store, job["id"])
    assert (stored["status"], stored["worker_id"], stored["current_stage"], stored["progress"]) == (
        "queued",
        None,
        None,
        0,
    )
    assert stored["attempts"] == 2  # the next claim counts the next attempt
    rows = stages(store, job["id"])
    assert (rows["first"]["status"], rows["first"]["started_at"]) == ("pending", None)
    assert rows["done"]["status"] == "completed" and rows["done"]["completed_at"] is not None
    assert rows["second"]["status"] == "pending"
    assert events(store, job["id"])[-1] == (
        "message",
        {"message": "The worker running this job stopped responding; it was queued again."},
    )


def test_recovery_fails_a_stale_job_out_of_attempts_or_asked_to_stop(store):
    user = new_user(store)
    spent = _running(store, user, attempts=3)
    canceled = _running(store, user, attempts=1)
    set_(store, canceled["id"], "cancel_requested = true")
    with logged() as records:
        assert sorted(store.recover_stale(60, 3)) == sorted(
            [(str(spent["id"]), "failed"), (str(canceled["id"]), "failed")]
        )
    assert sorted((r.getMessage(), r.job_id) for r in records) == sorted(
        [("stale job failed", str(spent["id"])), ("stale job failed", str(canceled["id"]))]
    )
    for job in (spent, canceled):
        stored = row(store, job["id"])
        assert (stored["status"], stored["error_code"], stored["error_retryable"]) == (
            "failed",
            "WORKER_LOST",
            True,
        )
        assert stored["error_message"] == (
            "The worker running this job stopped responding; please retry."
        )
        assert stages(store, job["id"])["first"]["status"] == "failed"
        assert events(store, job["id"])[-1][0] == "error"


def test_recovery_leaves_a_job_with_a_fresh_heartbeat_alone(store):
    user = new_user(store)
    fresh = _running(store, user, stale_s=30)
    queued = new_job(store, user)
    assert store.recover_stale(60, 3) == []
    assert row(store, fresh["id"])["status"] == "processing"
    assert row(store, queued["id"])["status"] == "queued"


def test_fail_ends_the_job_and_its_running_stage(store):
    user = new_user(store)
    job = _running(store, user, stale_s=None)
    assert store.fail(job, "BROKE", "It broke.", False) is True  # the runner reads it
    stored = row(store, job["id"])
    assert _ending(stored) == ("failed", "BROKE", "It broke.", False, None)
    assert stored["completed_at"] is not None
    rows = stages(store, job["id"])
    assert [rows[n]["status"] for n in ("done", "first", "second")] == [
        "completed",
        "failed",
        "pending",
    ]
    assert rows["first"]["completed_at"] is not None
    assert events(store, job["id"])[-1] == (
        "error",
        {"code": "BROKE", "message": "It broke.", "retryable": False},
    )


def test_a_retry_counts_the_next_attempt_and_says_when(store):
    user = new_user(store)
    job = store.claim("w", str(new_job(store, user)["id"]))
    with logged() as records:
        next_attempt = store.record_retry(
            job,
            attempt=1,
            max_attempts=3,
            code="PROVIDER_TIMEOUT",
            message="Slow.",
            delay_s=1.23456,
        )
    assert next_attempt == 2
    assert [(r.getMessage(), r.levelname, r.job_id, r.code) for r in records] == [
        ("job attempt failed; retrying", "WARNING", str(job["id"]), "PROVIDER_TIMEOUT")
    ]
    assert row(store, job["id"])["attempts"] == 2
    assert events(store, job["id"])[-1] == (
        "message",
        {
            "message": "Attempt 1 of 3 failed (PROVIDER_TIMEOUT: Slow.); trying again in 1.2 s.",
            "retry": {
                "attempt": 1,
                "max_attempts": 3,
                "code": "PROVIDER_TIMEOUT",
                "delay_s": 1.235,
                "next_attempt": 2,
            },
        },
    )


def test_only_the_worker_that_owns_a_job_can_end_it(store):
    user = new_user(store)
    job_id = str(new_job(store, user)["id"])
    first = store.claim("w1", job_id)
    set_(store, job_id, "heartbeat_at = now() - interval '1 hour'")
    assert store.recover_stale(60, max_attempts=3) == [(job_id, "requeued")]
    second = store.claim("w2", job_id)
    # The first worker comes back from a long pause and ends the job its way: nothing is written.
    assert store.complete(first, {"late": True}) is False
    assert store.fail(first, "BROKE", "It broke.", False) is False
    now = row(store, job_id)
    assert (now["status"], now["worker_id"], now["result"]) == ("processing", "w2", None)
    assert not {t for t, _ in events(store, job_id)} & {"completed", "error"}
    assert store.complete(second, {"ok": True}) is True
    assert row(store, job_id)["result"] == {"ok": True}
    # Ended once: a second end (a retried delivery) writes nothing either.
    assert store.complete(second, {"again": True}) is False
    assert store.fail(second, "BROKE", "It broke.", False) is False
    assert [t for t, _ in events(store, job_id)].count("completed") == 1
    assert row(store, job_id)["status"] == "completed"


def test_complete_stores_the_result_and_announces_outputs_cost_and_links(store):
    user = new_user(store)
    job = store.claim("w", str(new_job(store, user)["id"]))
    store.record_progress(job, 40.0, stage="first", remaining_s=5.0)
    store.record_output(job["id"], {"name": "mix", "bucket": "b", "path": "p1"})
    store.record_output(job["id"], {"name": "stems", "bucket": "b", "path": "p2"})
    store.record_cost(
        job,
        stage=None,
        provider="cpu",
        units=1.0,
        unit="seconds",
        cost_usd=0.125,
        detail="",
        total_cost_usd=0.125,
    )
    store.complete(job, {"tempo": Decimal("120.5")}, links={"url": "https://x/mix"})
    stored = row(store, job["id"])
    assert (stored["status"], stored["result"], stored["progress"]) == (
        "completed",
        {"tempo": 120.5},
        100,
    )
    assert (stored["estimated_remaining_s"], stored["worker_id"]) == (0, None)
    assert stored["completed_at"] is not None
    assert events(store, job["id"])[-1] == (
        "completed",
        {"outputs": ["mix", "stems"], "total_cost_usd": 0.125, "url": "https://x/mix"},
    )
    other = store.claim("w", str(new_job(store, user)["id"]))
    store.complete(other, {})
    assert events(store, other["id"])[-1] == ("completed", {"outputs": [], "total_cost_usd": 0.0})


def test_mark_canceled_skips_the_unfinished_stages(store):
    user = new_user(store)
    job = _running(store, user, stale_s=None)
    assert store.mark_canceled(job) is True
    stored = row(store, job["id"])
    assert _ending(stored) == ("canceled", "CANCELED", "Canceled by the user.", False, None)
    assert stored["completed_at"] is not None
    rows = stages(store, job["id"])
    assert [rows[n]["status"] for n in ("done", "first", "second")] == [
        "completed",
        "skipped",
        "skipped",
    ]
    assert events(store, job["id"])[-1] == (
        "error",
        {"code": "CANCELED", "message": "Canceled by the user.", "retryable": False},
    )


def test_mark_canceled_only_if_queued_leaves_a_claimed_job_to_its_worker(store):
    user = new_user(store)
    job = _running(store, user, stale_s=None)
    before = events(store, job["id"])
    assert store.mark_canceled(job, "Stop.", only_if_queued=True) is False
    assert row(store, job["id"])["status"] == "processing"
    assert stages(store, job["id"])["first"]["status"] == "running"
    assert events(store, job["id"]) == before
    queued = new_job(store, user)
    assert store.mark_canceled(queued, "Stop.", only_if_queued=True) is True
    assert row(store, queued["id"])["error_message"] == "Stop."


def test_mark_canceled_for_an_owner_takes_only_while_that_worker_runs_the_job(store):
    user = new_user(store)
    job = _running(store, user, stale_s=None)
    worker = row(store, job["id"])["worker_id"]
    before = events(store, job["id"])
    assert store.mark_canceled(job, owner=f"not-{worker}") is False
    assert (row(store, job["id"])["status"], row(store, job["id"])["worker_id"]) == (
        "processing",
        worker,
    )
    assert events(store, job["id"]) == before
    assert store.mark_canceled(job, owner=worker) is True
    assert row(store, job["id"])["status"] == "canceled"
    queued = new_job(store, user)  # queued: no worker owns it, so no owner can cancel it
    assert store.mark_canceled(queued, owner=worker) is False
    assert row(store, queued["id"])["status"] == "queued"


def test_requeue_starts_a_failed_job_over(store):
    user = new_user(store)
    job = _running(store, user, stale_s=None)
    store.record_output(job["id"], {"name": "mix", "bucket": "b", "path": "p"})
    store.finish_stage(
        job,
        "first",
        attempt=1,
        status="failed",
        engine="e",
        duration_s=1.0,
        exc=RuntimeError("boom"),
    )
    store.fail(job, "BROKE", "It broke.", True)
    set_(store, job["id"], "cancel_requested = true")
    again = store.requeue(str(job["id"]), "ops@example.com")
    assert again["id"] == job["id"]
    stored = row(store, job["id"])
    expected = dict(
        status="queued",
        progress=0,
        current_stage=None,
        attempts=0,
        worker_id=None,
        heartbeat_at=None,
        cancel_requested=False,
        error_code=None,
        error_message=None,
        error_retryable=None,
        result=None,
        outputs=[],
        started_at=None,
        completed_at=None,
    )
    assert {k: stored[k] for k in expected} == expected
    assert again["status"] == "queued"
    for stage in stages(store, job["id"]).values():
        assert (stage["status"], stage["started_at"], stage["completed_at"], stage["error"]) == (
            "pending",
            None,
            None,
            None,
        )
    assert events(store, job["id"])[-1] == (
        "message",
        {
            "message": "Queued again by an operator (was failed: BROKE).",
            "requeued_by": "ops@example.com",
        },
    )


def test_requeue_of_a_canceled_job_without_a_code_says_so_plainly(store):
    user = new_user(store)
    job = new_job(store, user)
    store.mark_canceled(job)
    set_(store, job["id"], "error_code = null")
    store.requeue(str(job["id"]), "ops")
    assert events(store, job["id"])[-1][1]["message"] == (
        "Queued again by an operator (was canceled)."
    )


def test_requeue_refuses_unknown_live_and_swept_jobs(store):
    user = new_user(store)
    with pytest.raises(NotFound) as err:
        store.requeue(str(uuid.uuid4()), "ops")
    assert (err.value.code, err.value.message) == ("JOB_NOT_FOUND", "No job with this id.")
    queued = new_job(store, user)
    running = store.claim("w", str(new_job(store, user)["id"]))
    done = store.claim("w", str(new_job(store, user)["id"]))
    store.complete(done, {})
    for job, status in ((queued, "queued"), (running, "processing"), (done, "completed")):
        with pytest.raises(Conflict) as err:
            store.requeue(str(job["id"]), "ops")
        assert (err.value.code, err.value.message) == (
            "JOB_NOT_RETRYABLE",
            f"Only failed or canceled jobs can be retried; this one is {status}.",
        )
        assert row(store, job["id"])["status"] == status
    swept = store.claim("w", str(new_job(store, user)["id"]))
    store.fail(swept, "BROKE", "It broke.", True)
    store.mark_swept(swept["id"], "inputs")
    with pytest.raises(Conflict) as err:
        store.requeue(str(swept["id"]), "ops")
    assert (err.value.code, err.value.message) == (
        "INPUTS_GONE",
        "This job's uploads were already deleted by retention; it cannot run again.",
    )
    assert row(store, swept["id"])["status"] == "failed"


def test_clear_outputs_forgets_an_earlier_attempts_outputs(store):
    user = new_user(store)
    job = new_job(store, user)
    store.record_output(job["id"], {"name": "mix", "bucket": "b", "path": "p"})
    other = new_job(store, user)
    store.record_output(other["id"], {"name": "mix", "bucket": "b", "path": "q"})
    store.clear_outputs(str(job["id"]))
    assert row(store, job["id"])["outputs"] == []
    assert row(store, other["id"])["outputs"] == [{"name": "mix", "bucket": "b", "path": "q"}]


def _finished(store, user, days_ago: float, status: str = "completed") -> dict:
    job = store.claim("w", str(new_job(store, user)["id"]))
    if status == "completed":
        store.complete(job, {})
    else:
        store.fail(job, "BROKE", "It broke.", False)
    set_(store, job["id"], "completed_at = now() - make_interval(days => %s)", days_ago)
    return job


def test_finished_unswept_lists_ended_jobs_oldest_first_until_both_sides_are_swept(store):
    user = new_user(store)
    young = _finished(store, user, 1)
    old = _finished(store, user, 10, status="failed")
    middle = _finished(store, user, 5)
    new_job(store, user)
    store.claim("w", str(new_job(store, user)["id"]))
    listed = store.finished_unswept(10)
    assert [j["id"] for j in listed] == [old["id"], middle["id"], young["id"]]
    assert listed[0]["age_days"] == pytest.approx(10, abs=0.01)
    assert {k for k in listed[0]} >= {"user_id", "kind", "status", "inputs", "outputs"}
    assert [j["id"] for j in store.finished_unswept(2)] == [old["id"], middle["id"]]
    store.mark_swept(old["id"], "inputs")
    stored = row(store, old["id"])
    assert stored["inputs_swept_at"] is not None and stored["outputs_swept_at"] is None
    assert store.finished_unswept(1)[0]["id"] == old["id"]
    store.mark_swept(old["id"], "outputs")
    assert row(store, old["id"])["outputs_swept_at"] is not None
    assert [j["id"] for j in store.finished_unswept(10)] == [middle["id"], young["id"]]


def test_expired_jobs_are_the_finished_ones_past_their_date(store):
    user = new_user(store)
    done = _finished(store, user, 1)
    failed = _finished(store, user, 1, status="failed")
    canceled = new_job(store, user)
    store.mark_canceled(canceled)
    running = store.claim("w", str(new_job(store, user)["id"]))
    queued = new_job(store, user)
    fresh = _finished(store, user, 1)
    for job, hours in ((done, 3), (failed, 1), (canceled, 2), (running, 5), (queued, 5)):
        set_(store, job["id"], "expires_at = now() - make_interval(hours => %s)", hours)
    listed = store.expired_finished(10)
    assert [j["id"] for j in listed] == [done["id"], canceled["id"], failed["id"]]
    assert set(listed[0]) == {"id", "user_id", "inputs", "outputs"}
    assert [j["id"] for j in store.expired_finished(1)] == [done["id"]]
    assert store.delete_expired(done["id"]) is True and row(store, done["id"]) is None
    assert store.delete_expired(running["id"]) is False and row(store, running["id"])
    assert store.delete_expired(queued["id"]) is False and row(store, queued["id"])
    assert store.delete_expired(fresh["id"]) is False and row(store, fresh["id"])
