"""The job lifecycle's edges, on the real database, storage and worker code: first-in-first-out
claims, exact queue positions, a worker that lost its job writing nothing (through the runner
and through a context marked lost), cancel racing a claim, per-user idempotency keys, delete of
a running job, the SSE stream of a failed or canceled job, the stats' percentiles against numpy,
the rate-limit window and its Retry-After, and the sweeper deleting expired jobs with their rows
and files."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from pydantic import BaseModel

from functions.audio_tools import AUDIO_TOOLS
from shared.errors import JobCanceled
from shared.executors import LocalExecutor
from shared.job_context import DbJobContext
from shared.registry import JobKind
from shared.retention import sweep
from shared.runner import execute_job
from shared.services import open_services
from shared.submit import submit_job
from tests.conftest import Api, make_settings, new_database
from tests.kinds import TEST_KINDS
from tests.retry_kinds import make_error
from tests.test_platform_jobs import _sse


@pytest.fixture(scope="module")
def quiet(pg_url, tmp_path_factory):
    """Services on a database of their own with no worker running: these tests claim by hand."""
    url = new_database(pg_url, "edges")
    svc = open_services(
        make_settings(tmp_path_factory.mktemp("edges"), database_url=url, heartbeat_s=0.2),
        kinds=TEST_KINDS.plus(LOST_KIND),
        audio=AUDIO_TOOLS,
    )
    yield svc
    svc.close()


def _drain(svc) -> None:
    """Leave no queued job behind for the next test's claims."""
    with svc.db.service() as conn:
        conn.execute(
            "update jobs set status = 'canceled', completed_at = now() where status = 'queued'"
        )


def _submit(svc, user, seconds: float = 0.0) -> str:
    job, _ = submit_job(svc, user, "test_sleep", {"seconds": seconds}, [])
    return str(job["id"])


def test_claims_are_first_in_first_out_and_positions_exact(quiet):
    _drain(quiet)
    user = quiet.auth.ensure_local_user()
    ids = [_submit(quiet, user) for _ in range(3)]
    assert [quiet.jobs.get(user.id, i)["queue_position"] for i in ids] == [1, 2, 3]
    first = quiet.jobs.claim("w1")
    assert str(first["id"]) == ids[0]
    # The rest move up; a running job has no position.
    assert [quiet.jobs.get(user.id, i)["queue_position"] for i in ids] == [0, 1, 2]
    assert [str(quiet.jobs.claim("w1")["id"]) for _ in range(2)] == ids[1:]
    assert quiet.jobs.claim("w1") is None


def test_a_worker_that_lost_its_job_writes_nothing_over_the_new_owner(quiet):
    _drain(quiet)
    user = quiet.auth.ensure_local_user()
    job_id = _submit(quiet, user, seconds=6.0)
    job = quiet.jobs.claim("worker-a", job_id)
    executor = LocalExecutor(max_workers=1)
    result: dict = {}
    worker = threading.Thread(
        target=lambda: result.setdefault("status", execute_job(quiet, job, "worker-a", executor))
    )
    worker.start()
    time.sleep(0.5)
    # Recovery gave the job to worker B (as recover_stale + claim would).
    with quiet.db.service() as conn:
        conn.execute(
            "update jobs set worker_id = 'worker-b', attempts = attempts + 1 where id = %s",
            (job_id,),
        )
    worker.join(20)
    assert not worker.is_alive()
    assert result["status"] == "lost"
    row = quiet.jobs.load(job_id)
    assert (row["status"], row["worker_id"], row["error_code"]) == ("processing", "worker-b", None)
    types = [e["type"] for e in quiet.jobs.events_after(user.id, job_id, 0)]
    assert "error" not in types and "completed" not in types


def _worker_a_context(quiet):
    """A fresh job claimed by worker A, and A's job context for it: ``(user, job_id, job, ctx)``."""
    _drain(quiet)
    user = quiet.auth.ensure_local_user()
    job_id = _submit(quiet, user)
    job = quiet.jobs.claim("worker-a", job_id)
    ctx = DbJobContext(quiet, job, quiet.kinds.get("test_sleep"), "worker-a", LocalExecutor(1))
    return user, job_id, job, ctx


def _worker_b_stage(quiet, user, job_id) -> tuple:
    """(status, engine, error) of the stage worker B runs."""
    row = quiet.jobs.get(user.id, job_id)
    first = next(s for s in row["stages"] if s["name"] == "first")
    return first["status"], first["engine"], first["error"]


def test_a_context_marked_lost_leaves_the_stage_and_progress_to_the_new_owner(quiet, tmp_path):
    user, job_id, job, ctx = _worker_a_context(quiet)
    try:
        with pytest.raises(JobCanceled) as lost, ctx.stage("first") as st:
            # Worker B took the job over and runs the same stage from the start.
            quiet.jobs.start_stage({**job, "worker_id": "worker-b"}, "first", "b-engine", 0.0)
            before = quiet.jobs.events_after(user.id, job_id, 0)
            ctx.mark_lost()
            assert ctx.lost
            st.progress(0.9, "A's progress")
        assert lost.value.code == "WORKER_LOST"
        # Whatever the pipeline tries next is refused the same way, and nothing was written.
        (tmp_path / "a.txt").write_text("A's output")
        for attempt in (
            lambda: ctx.check_canceled(),
            lambda: ctx.message("A speaking"),
            lambda: ctx.progress(50.0),
            lambda: ctx.output("a", tmp_path / "a.txt"),
        ):
            with pytest.raises(JobCanceled, match="lost the job"):
                attempt()
        assert quiet.jobs.events_after(user.id, job_id, 0) == before
        assert _worker_b_stage(quiet, user, job_id) == ("running", "b-engine", None)
        row = quiet.jobs.get(user.id, job_id)
        assert (row["progress"], row["outputs"]) == (0.0, [])
    finally:
        ctx.cleanup()
        quiet.jobs.mark_canceled(job)


def test_a_context_whose_job_was_taken_over_and_then_canceled_stops_as_lost_and_writes_nothing(
    quiet,
):
    # The cancel is the new owner's to write: stopping as "canceled" here would end the stage
    # row worker B is running as skipped.
    user, job_id, job, ctx = _worker_a_context(quiet)
    try:
        with pytest.raises(JobCanceled) as stopped, ctx.stage("first"):
            quiet.jobs.start_stage({**job, "worker_id": "worker-b"}, "first", "b-engine", 0.0)
            with quiet.db.service() as conn:
                conn.execute(
                    "update jobs set worker_id = 'worker-b', cancel_requested = true where id = %s",
                    (job_id,),
                )
            before = quiet.jobs.events_after(user.id, job_id, 0)
            ctx.check_canceled(force=True)
        assert stopped.value.code == "WORKER_LOST" and ctx.lost
        assert quiet.jobs.events_after(user.id, job_id, 0) == before
        assert _worker_b_stage(quiet, user, job_id) == ("running", "b-engine", None)
        row = quiet.jobs.get(user.id, job_id)
        assert (row["status"], row["worker_id"]) == ("processing", "worker-b")
    finally:
        ctx.cleanup()
        quiet.jobs.mark_canceled(job)


class _LostParams(BaseModel):
    error: str = "bug"  # as tests.retry_kinds names them: bug, timeout, user, ...


def _run_lost_then_fail(ctx) -> dict:
    ctx.mark_lost()  # what the heartbeat does once another worker holds the job
    raise make_error(ctx.params.error)


LOST_KIND = JobKind(
    name="test_lost_then_fails",
    params=_LostParams,
    stages=[("work", 1.0)],
    run=_run_lost_then_fail,
    description="lifecycle test kind",
)


@pytest.mark.parametrize("error", ["bug", "timeout", "user"])
def test_a_lost_worker_whose_pipeline_then_fails_writes_nothing(quiet, error):
    # A crash, a transient error (which would be retried) and a user's error alike: the job's
    # end and its attempts are the new owner's to write.
    _drain(quiet)
    user = quiet.auth.ensure_local_user()
    job, _ = submit_job(quiet, user, "test_lost_then_fails", {"error": error}, [])
    job_id = str(job["id"])
    job = quiet.jobs.claim("worker-a", job_id)
    with quiet.db.service() as conn:
        conn.execute("update jobs set worker_id = 'worker-b' where id = %s", (job_id,))
    before = quiet.jobs.events_after(user.id, job_id, 0)
    assert execute_job(quiet, job, "worker-a", LocalExecutor(1)) == "lost"
    row = quiet.jobs.load(job_id)
    assert (row["status"], row["worker_id"], row["error_code"], row["attempts"]) == (
        "processing",
        "worker-b",
        None,
        job["attempts"],
    )
    assert quiet.jobs.events_after(user.id, job_id, 0) == before
    quiet.jobs.mark_canceled(row)


def test_cancel_racing_a_claim_has_one_winner(quiet):
    _drain(quiet)
    user = quiet.auth.ensure_local_user()
    for _ in range(8):
        job_id = _submit(quiet, user)
        with ThreadPoolExecutor(2) as pool:
            claimed = pool.submit(quiet.jobs.claim, "racer", job_id)
            pool.submit(quiet.jobs.cancel, user.id, job_id).result()
            claimed = claimed.result()
        row = quiet.jobs.load(job_id)
        assert row["cancel_requested"]
        if claimed is None:
            assert row["status"] == "canceled" and row["attempts"] == 0
        else:
            # The worker has it and will stop at its next check; never both.
            assert row["status"] == "processing" and row["worker_id"] == "racer"
            quiet.jobs.mark_canceled(row)


def test_an_idempotency_key_belongs_to_its_user(client, new_user):
    a, b = Api(client, new_user()["headers"]), Api(client, new_user()["headers"])
    key = {"Idempotency-Key": f"shared-{uuid.uuid4().hex[:6]}"}
    ra = a.create_job("test_sleep", [], {"seconds": 0}, headers=key)
    rb = b.create_job("test_sleep", [], {"seconds": 0}, headers=key)
    assert ra.status_code == rb.status_code == 202, (ra.text, rb.text)
    assert ra.json()["id"] != rb.json()["id"]
    assert b.get(f"/api/v1/jobs/{rb.json()['id']}").status_code == 200
    again = b.create_job("test_sleep", [], {"seconds": 0}, headers=key)
    assert again.status_code == 200 and again.json()["id"] == rb.json()["id"]


def _wait_status(api: Api, job_id: str, status: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while api.get(f"/api/v1/jobs/{job_id}").json()["status"] != status:
        assert time.monotonic() < deadline, f"never {status}"
        time.sleep(0.1)


def test_a_running_job_cannot_be_deleted(api):
    job_id = api.create_job("test_sleep", [], {"seconds": 20}).json()["id"]
    _wait_status(api, job_id, "processing")
    r = api.delete(f"/api/v1/jobs/{job_id}")
    assert r.status_code == 409 and r.json()["code"] == "JOB_RUNNING"
    assert api.get(f"/api/v1/jobs/{job_id}").json()["status"] == "processing"
    api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert api.wait(job_id, 15)["status"] == "canceled"
    assert api.delete(f"/api/v1/jobs/{job_id}").status_code == 200


@pytest.mark.timeout(60)  # a stream that never closes would hang here
def test_the_event_stream_of_a_failed_job_ends_with_its_error(api):
    job_id = api.create_job("test_sleep", [], {"seconds": 0.3, "fail_code": "BROKE"}).json()["id"]
    events = _sse(api.get(f"/api/v1/jobs/{job_id}/events").text)  # returns only once closed
    assert events[-1]["event"] == "error"
    assert events[-1]["data"]["code"] == "BROKE"


@pytest.mark.timeout(60)
def test_a_missed_notification_still_ends_the_stream(api, monkeypatch):
    """The listener can miss a NOTIFY (a reconnect): the stream's own re-read must still see
    the end, also when the keep-alive period equals the re-read period (15 s each as served)."""
    import fastapi.routing

    from web import events
    from web.routers import jobs as jobs_router

    monkeypatch.setattr(events.EventHub, "_deliver", lambda self, ids: None)
    monkeypatch.setattr(jobs_router, "RECHECK_S", 0.5)
    monkeypatch.setattr(fastapi.routing, "_PING_INTERVAL", 0.5)
    monkeypatch.setattr(jobs_router, "STREAM_MAX_S", 20.0)
    job_id = api.create_job("test_sleep", [], {"seconds": 0.3, "fail_code": "BROKE"}).json()["id"]
    started = time.monotonic()
    events_ = _sse(api.get(f"/api/v1/jobs/{job_id}/events").text)
    assert events_[-1]["event"] == "error" and events_[-1]["data"]["code"] == "BROKE"
    assert time.monotonic() - started < 15.0  # not held to STREAM_MAX_S


@pytest.mark.timeout(60)
def test_the_event_stream_of_a_job_canceled_while_watched_ends_with_canceled(api):
    job_id = api.create_job("test_sleep", [], {"seconds": 20}).json()["id"]
    _wait_status(api, job_id, "processing")
    with ThreadPoolExecutor(1) as pool:
        stream = pool.submit(lambda: api.get(f"/api/v1/jobs/{job_id}/events").text)
        time.sleep(0.5)  # the stream is open and waiting for the listener
        started = time.monotonic()
        assert api.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
        events_ = _sse(stream.result(timeout=50))
    assert events_[-1]["event"] == "error" and events_[-1]["data"]["code"] == "CANCELED"
    assert time.monotonic() - started < 15.0  # not held to STREAM_MAX_S
    assert api.get(f"/api/v1/jobs/{job_id}").json()["status"] == "canceled"


def test_percentiles_match_numpy_on_known_durations(client, new_user, services):
    user = Api(client, new_user()["headers"])
    ids = [user.create_job("test_sleep", [], {"seconds": 0}).json()["id"] for _ in range(10)]
    for i in ids:
        assert user.wait(i)["status"] == "completed"
    durations_s = [1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0]
    with services.db.service() as conn:
        for job_id, d in zip(ids, durations_s, strict=True):
            conn.execute(
                "update jobs set completed_at = started_at + make_interval(secs => %s)"
                " where id = %s",
                (d, job_id),
            )
    k = user.get("/api/v1/stats").json()["kinds"]["test_sleep"]
    p50, p95, p99 = np.percentile(durations_s, [50, 95, 99])  # linear, as percentile_cont
    assert k["duration_p50_s"] == pytest.approx(p50, abs=0.01)
    assert k["duration_p95_s"] == pytest.approx(p95, abs=0.01)
    assert k["duration_p99_s"] == pytest.approx(p99, abs=0.01)
    assert (k["completed"], k["success_rate"]) == (10, 1.0)


def test_rate_limit_window_is_an_hour_and_retry_after_counts_from_the_oldest(
    client, new_user, services, monkeypatch
):
    monkeypatch.setattr(services.settings, "rate_limit_per_hour", 2)
    user = Api(client, new_user()["headers"])
    assert user.create_job("test_sleep", [], {"seconds": 0}).status_code == 202
    user_id = user.get("/api/v1/auth/me").json()["id"]
    with services.db.service() as conn:
        # The first attempt was 50 minutes ago: it leaves the window in 10.
        conn.execute(
            "update public.rate_attempts set created_at = now() - interval '50 minutes'"
            " where key = %s",
            (user_id,),
        )
    assert user.create_job("test_sleep", [], {"seconds": 0}).status_code == 202
    r = user.create_job("test_sleep", [], {"seconds": 0})
    assert r.status_code == 429 and r.json()["code"] == "RATE_LIMITED"
    assert 590 <= int(r.headers["Retry-After"]) <= 610
    with services.db.service() as conn:
        # Once the oldest is 61 minutes old, it no longer counts.
        conn.execute(
            "update public.rate_attempts set created_at = now() - interval '61 minutes'"
            " where key = %s and created_at < now() - interval '40 minutes'",
            (user_id,),
        )
    assert user.create_job("test_sleep", [], {"seconds": 0}).status_code == 202


def test_sweeper_deletes_expired_jobs_with_their_rows_and_files(api, services, song_wav, tmp_path):
    import soundfile as sf

    # Other bytes than `kept`'s input: the library stores identical bytes once and keeps a file
    # while another live job uses it, which would (rightly) keep the expired job's files.
    data, rate = sf.read(song_wav, dtype="int16")
    sf.write(tmp_path / "other.wav", data[:-1], rate, subtype="PCM_16")
    old = api.run("test_sleep", [tmp_path / "other.wav"], {"seconds": 0.05})
    kept = api.run("test_sleep", [song_wav], {"seconds": 0.05})
    running = api.create_job("test_sleep", [], {"seconds": 20}).json()["id"]
    _wait_status(api, running, "processing")
    files = {
        j["id"]: [(i["bucket"], i["path"]) for i in services.jobs.load(j["id"])["inputs"]]
        + [(o["bucket"], o["path"]) for o in services.jobs.load(j["id"])["outputs"]]
        for j in (old, kept)
    }
    assert all(services.storage.file_path(b, p).exists() for f in files.values() for b, p in f)
    with services.db.service() as conn:
        conn.execute(
            "update jobs set expires_at = now() - interval '1 second' where id = any(%s)",
            ([old["id"], running],),
        )
    removed = sweep(services)
    assert removed["expired_jobs"] >= 1 and removed["expired_job_files"] >= 2
    assert api.get(f"/api/v1/jobs/{old['id']}").status_code == 404
    with services.db.service() as conn:
        for table in ("jobs", "job_stages", "job_events", "job_costs"):
            column = "id" if table == "jobs" else "job_id"
            n = conn.execute(
                f"select count(*) as n from {table} where {column} = %s", (old["id"],)
            ).fetchone()["n"]
            assert n == 0, table
    assert not any(services.storage.file_path(b, p).exists() for b, p in files[old["id"]])
    # A job not yet expired, and a running one however old, stay whole.
    assert all(services.storage.file_path(b, p).exists() for b, p in files[kept["id"]])
    assert api.get(f"/api/v1/jobs/{kept['id']}").json()["status"] == "completed"
    assert api.get(f"/api/v1/jobs/{running}").json()["status"] == "processing"
    api.post(f"/api/v1/jobs/{running}/cancel")
    api.wait(running, 15)
