"""The runner (shared.runner) on the real job store, storage and test kinds, with no worker
polling the database: ``execute_job``'s outcomes (completed, failed, canceled, retried, out of
attempts), what it releases, and the runners' small contracts (claiming one job, worker ids,
which runner a deployment gets)."""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid

import pytest
from pydantic import BaseModel

from shared import runner as runner_module
from shared.executors import LocalExecutor
from shared.registry import JobKind
from shared.runner import (
    LocalRunner,
    ModalRunner,
    execute_job,
    new_worker_id,
    open_runner,
    run_job_by_id,
)
from tests.conftest import make_settings, new_database
from tests.store_helpers import logged


class _NoParams(BaseModel):
    pass


def _run_costly_then_flaky(ctx) -> dict:
    """Spends $0.25 an attempt; the first attempt then times out (retried)."""
    with ctx.stage("work", engine="test"):
        ctx.cost("test-provider", 1.0, 0.25, unit="calls")
        if ctx.attempt == 1:
            raise TimeoutError("the provider took too long")
    return {"attempt": ctx.attempt}


def _run_canceled_at_the_end(ctx) -> dict:
    """The user's cancel arrives just after the pipeline's last own check."""
    with ctx.stage("work", engine="test"):
        pass
    with ctx.store.db.service() as conn:
        conn.execute("update jobs set cancel_requested = true where id = %s", (ctx.job_id,))
    return {"done": True}


def _taken_over_unnoticed(ctx) -> None:
    """The sweeper gave the job to another worker between two heartbeats: this worker's
    context has not been told (no heartbeat ran since)."""
    with ctx.store.db.service() as conn:
        conn.execute("update jobs set worker_id = 'new-owner' where id = %s", (ctx.job_id,))


def _run_taken_over_then_done(ctx) -> dict:
    with ctx.stage("work", engine="test"):
        pass
    _taken_over_unnoticed(ctx)
    return {"late": True}


def _run_taken_over_then_failing(ctx) -> dict:
    _taken_over_unnoticed(ctx)
    raise ValueError("a bug after the takeover")


def _run_taken_over_then_canceled(ctx) -> dict:
    """Taken over unnoticed, then the user cancels: the new owner will see the cancel too."""
    _taken_over_unnoticed(ctx)
    with ctx.store.db.service() as conn:
        conn.execute("update jobs set cancel_requested = true where id = %s", (ctx.job_id,))
    return {"late": True}


def _run_lost_then_crashing(ctx) -> dict:
    ctx.mark_lost()  # what the heartbeat does once another worker holds the job
    raise KeyError("a bug")


EXTRA_KINDS = [
    JobKind(
        name=name,
        params=_NoParams,
        stages=[("work", 1.0)],
        run=run,
        description="runner test kind",
    )
    for name, run in (
        ("test_lost_then_crashes", _run_lost_then_crashing),
        ("test_costly_flaky", _run_costly_then_flaky),
        ("test_canceled_at_end", _run_canceled_at_the_end),
        ("test_taken_over_then_done", _run_taken_over_then_done),
        ("test_taken_over_then_failing", _run_taken_over_then_failing),
        ("test_taken_over_then_canceled", _run_taken_over_then_canceled),
    )
]


# A runner that never ends a wait or a job must fail here, not hang the session.
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def runs(pg_url, tmp_path_factory):
    """Services on a database of their own: these tests claim and run jobs by hand."""
    from functions.audio_tools import AUDIO_TOOLS
    from shared.services import open_services
    from tests.kinds import TEST_KINDS

    settings = make_settings(
        tmp_path_factory.mktemp("runner"),
        database_url=new_database(pg_url, "runner"),
        max_attempts=3,
        retry_backoff_s=0.01,
        retry_backoff_max_s=0.05,
    )
    svc = open_services(settings, kinds=TEST_KINDS.plus(*EXTRA_KINDS), audio=AUDIO_TOOLS)
    yield svc
    svc.close()


def _user(svc) -> str:
    with svc.db.service() as conn:
        row = conn.execute(
            "insert into auth.users (email, encrypted_password) values (%s, null) returning id",
            (f"runner-{uuid.uuid4().hex[:12]}@example.com",),
        ).fetchone()
    return str(row["id"])


def _queued(svc, kind: str, params: dict, *, budget_usd: float | None = None) -> str:
    k = svc.kinds.get(kind)
    job_id = str(uuid.uuid4())
    svc.jobs.create(
        job_id=job_id,
        user_id=_user(svc),
        kind=kind,
        params=k.params(**params).model_dump(mode="json"),
        inputs=[],
        stages=k.stage_names(),
        idempotency_key=None,
        estimated_duration_s=1.0,
        estimated_cost_usd=0.0,
        budget_usd=budget_usd,
    )
    with svc.db.service() as conn:  # what submit_job reserves for the outputs
        conn.execute(
            "insert into public.storage_reservations (job_id, user_id, bytes)"
            " select id, user_id, 1000 from jobs where id = %s",
            (job_id,),
        )
    return job_id


def _run(svc, job_id: str, worker: str = "w") -> str:
    job = svc.jobs.claim(worker, job_id)
    assert job is not None
    return execute_job(svc, job, worker, LocalExecutor(1))


def _reserved(svc, job_id: str) -> bool:
    with svc.db.service() as conn:
        return (
            conn.execute(
                "select 1 from public.storage_reservations where job_id = %s", (job_id,)
            ).fetchone()
            is not None
        )


def _events(svc, job_id: str) -> list[tuple[str, dict]]:
    with svc.db.service() as conn:
        rows = conn.execute(
            "select type, data from job_events where job_id = %s order by id", (job_id,)
        ).fetchall()
    return [(r["type"], r["data"]) for r in rows]


def _left_to_the_new_owner(svc, job_id: str, owner: str = "new-owner") -> None:
    """The lost worker wrote nothing over ``owner``'s run: still processing and ``owner``'s, no
    result, error, outputs or ending event, and its storage reservation kept. Then the test's
    job is ended, so it does not linger for later tests."""
    row = svc.jobs.load(job_id)
    assert (row["status"], row["worker_id"], row["result"], row["error_code"], row["outputs"]) == (
        "processing",
        owner,
        None,
        None,
        [],
    )
    assert not {t for t, _ in _events(svc, job_id)} & {"completed", "error"}
    assert _reserved(svc, job_id)  # the new owner's job still holds its reservation
    svc.jobs.mark_canceled(row)


def test_a_job_that_succeeds_is_completed_with_its_download_links(runs):
    job_id = _queued(runs, "test_sleep", {"seconds": 0})
    assert _run(runs, job_id) == "completed"
    row = runs.jobs.load(job_id)
    assert (row["status"], row["result"], row["worker_id"]) == (
        "completed",
        {"inputs": 0, "sizes": []},
        None,
    )
    assert [o["name"] for o in row["outputs"]] == ["note"]
    kind, data = _events(runs, job_id)[-1]
    assert kind == "completed" and data["outputs"] == ["note"]
    assert data["download_url"].endswith(f"/jobs/{job_id}/download/note")
    assert not _reserved(runs, job_id)


def test_the_runner_logs_each_jobs_end_and_counts_only_this_jobs_spending(runs):
    job_id = _queued(runs, "test_sleep", {"seconds": 0})
    with logged("soundstage.runner") as records:
        began = time.monotonic()
        assert _run(runs, job_id) == "completed"
        took = time.monotonic() - began
    done = [r for r in records if r.getMessage() == "job finished"]
    assert [(r.levelname, r.job_id, r.kind, r.status, r.attempts) for r in done] == [
        ("INFO", job_id, "test_sleep", "completed", 1)
    ]
    assert 0 <= done[0].duration_s <= took  # the run's own time, within the test's
    costs = [d for t, d in _events(runs, job_id) if t == "cost_update"]
    assert [d["total_cost_usd"] for d in costs] == [0.001]  # the job's first spending


def test_every_attempts_spending_counts_toward_the_job(runs):
    job_id = _queued(runs, "test_costly_flaky", {})
    assert _run(runs, job_id) == "completed"
    totals = [d["total_cost_usd"] for t, d in _events(runs, job_id) if t == "cost_update"]
    assert totals == [0.25, 0.5]
    assert float(runs.jobs.load(job_id)["total_cost_usd"]) == 0.5


def test_a_recovered_job_starts_from_what_it_spent_before(runs):
    job_id = _queued(runs, "test_sleep", {"seconds": 0})
    with runs.db.service() as conn:  # an earlier, lost attempt spent $0.5
        conn.execute("update jobs set total_cost_usd = 0.5 where id = %s", (job_id,))
    assert _run(runs, job_id) == "completed"
    totals = [d["total_cost_usd"] for t, d in _events(runs, job_id) if t == "cost_update"]
    assert totals == [0.501]


def test_a_cancel_that_comes_as_the_pipeline_returns_still_cancels(runs):
    job_id = _queued(runs, "test_canceled_at_end", {})
    assert _run(runs, job_id) == "canceled"
    assert runs.jobs.load(job_id)["result"] is None


def test_a_failed_heartbeat_is_logged_and_the_job_goes_on(runs, monkeypatch):
    beats: list = []

    def unreachable(job_id, worker_id):
        beats.append((threading.current_thread().name, threading.current_thread().daemon))
        raise ConnectionError("the database restarts")

    monkeypatch.setattr(runs.jobs, "heartbeat", unreachable)
    job_id = _queued(runs, "test_sleep", {"seconds": 1.5})  # three heartbeat periods
    with logged("soundstage.runner") as records:
        assert _run(runs, job_id) == "completed"
    missed = [r for r in records if r.getMessage() == "heartbeat failed"]
    assert missed and {(r.levelname, r.job_id) for r in missed} == {("WARNING", job_id)}
    # The heartbeat runs in a daemon thread named for the job.
    assert set(beats) == {(f"heartbeat-{job_id[:8]}", True)}


def test_a_job_stays_completed_when_its_retention_step_fails(runs, monkeypatch):
    def broken(services, job):
        raise OSError("the storage is away")

    monkeypatch.setattr(runner_module, "after_success", broken)
    job_id = _queued(runs, "test_sleep", {"seconds": 0})
    with logged("soundstage.runner") as records:
        assert _run(runs, job_id) == "completed"
    assert runs.jobs.load(job_id)["status"] == "completed"
    failed = [r for r in records if r.getMessage() == "retention after success failed"]
    assert [(r.levelname, r.job_id, r.exc_info[0]) for r in failed] == [("ERROR", job_id, OSError)]


def test_a_lost_job_that_then_crashes_is_only_logged(runs):
    job_id = _queued(runs, "test_lost_then_crashes", {})
    with logged("soundstage.runner") as records:
        assert _run(runs, job_id) == "lost"
    assert runs.jobs.load(job_id)["status"] == "processing"
    lost = [r for r in records if r.getMessage() == "lost job failed here"]
    assert [(r.levelname, r.job_id, r.code) for r in lost] == [
        ("WARNING", job_id, "INTERNAL_ERROR")
    ]
    assert not [r for r in records if r.getMessage() == "job crashed"]
    runs.jobs.mark_canceled(runs.jobs.load(job_id))


@pytest.mark.parametrize(
    "kind",
    ["test_taken_over_then_done", "test_taken_over_then_failing", "test_taken_over_then_canceled"],
)
def test_a_zombie_workers_late_end_is_not_written_over_the_new_owners_run(runs, kind):
    # No heartbeat told this worker: only the store's ownership check stands between its late
    # result (or failure) and the job the new owner is running.
    job_id = _queued(runs, kind, {})
    assert _run(runs, job_id) == "lost"
    _left_to_the_new_owner(runs, job_id)


def test_a_job_taken_over_just_after_its_cancel_was_read_is_left_to_the_new_owner(
    runs, monkeypatch
):
    # The sweeper gives the job away between this worker's read of the cancel flag and its
    # write of the cancel: only the store's ownership check keeps the new owner's run.
    job_id = _queued(runs, "test_canceled_at_end", {})
    read = runs.jobs.status_of

    def read_then_taken_over(jid: str) -> dict | None:
        row = read(jid)
        if row is not None and row["cancel_requested"]:
            with runs.db.service() as conn:
                conn.execute("update jobs set worker_id = 'new-owner' where id = %s", (jid,))
        return row

    monkeypatch.setattr(runs.jobs, "status_of", read_then_taken_over)
    assert _run(runs, job_id) == "lost"
    _left_to_the_new_owner(runs, job_id)


def test_every_attempts_work_folder_is_removed(runs):
    import glob
    import tempfile

    job_id = _queued(runs, "test_flaky", {"fail_times": 2, "error": "timeout"})
    assert _run(runs, job_id) == "completed"
    assert glob.glob(f"{tempfile.gettempdir()}/soundstage-{job_id[:8]}-*") == []


def test_a_crash_is_logged_with_its_traceback(runs):
    job_id = _queued(runs, "test_flaky", {"fail_times": 1, "error": "bug"})
    with logged("soundstage.runner") as records:
        assert _run(runs, job_id) == "failed"
    crashed = [r for r in records if r.getMessage() == "job crashed"]
    assert [(r.levelname, r.job_id, r.kind) for r in crashed] == [("ERROR", job_id, "test_flaky")]
    assert crashed[0].exc_info[0] is KeyError


def test_a_users_error_fails_the_job_at_once_with_its_code(runs):
    job_id = _queued(runs, "test_flaky", {"fail_times": 3, "error": "user"})
    assert _run(runs, job_id) == "failed"
    row = runs.jobs.load(job_id)
    assert (row["error_code"], row["error_message"], row["error_retryable"]) == (
        "BAD_INPUT_FOR_TEST",
        "This input cannot work.",
        False,
    )
    assert row["attempts"] == 1 and not _reserved(runs, job_id)
    assert not [d for t, d in _events(runs, job_id) if "retry" in d]


def test_a_bug_fails_the_job_as_retryable_without_running_it_again(runs):
    job_id = _queued(runs, "test_flaky", {"fail_times": 3, "error": "bug"})
    assert _run(runs, job_id) == "failed"
    row = runs.jobs.load(job_id)
    assert (row["status"], row["error_code"], row["error_retryable"]) == (
        "failed",
        "INTERNAL_ERROR",
        True,
    )
    assert row["attempts"] == 1


def test_a_transient_failure_runs_again_and_the_next_attempt_knows_why(runs):
    job_id = _queued(runs, "test_flaky", {"fail_times": 2, "error": "timeout"})
    assert _run(runs, job_id) == "completed"
    row = runs.jobs.load(job_id)
    assert row["result"] == {"attempt": 3, "previous_failure": "PROVIDER_TIMEOUT"}
    assert row["attempts"] == 3
    retries = [d["retry"] for t, d in _events(runs, job_id) if "retry" in d]
    assert [(r["attempt"], r["next_attempt"], r["max_attempts"], r["code"]) for r in retries] == [
        (1, 2, 3, "PROVIDER_TIMEOUT"),
        (2, 3, 3, "PROVIDER_TIMEOUT"),
    ]
    assert all(0 < r["delay_s"] <= 0.05 + 0.01 for r in retries)
    assert (
        "(PROVIDER_TIMEOUT: A model or provider took too long to answer.)"
        in ([d["message"] for t, d in _events(runs, job_id) if "retry" in d][0])
    )


def test_out_of_attempts_the_job_fails_with_the_last_code(runs):
    job_id = _queued(runs, "test_flaky", {"fail_times": 5, "error": "oom"})
    assert _run(runs, job_id) == "failed"
    row = runs.jobs.load(job_id)
    assert (row["error_code"], row["error_retryable"], row["attempts"]) == (
        "GPU_OUT_OF_MEMORY",
        True,
        3,
    )
    assert len([d for t, d in _events(runs, job_id) if "retry" in d]) == 2


def test_a_job_claimed_again_has_only_its_remaining_attempts(runs):
    # A lost worker's job, claimed a second time: attempt 2 of 3, so one retry is left.
    job_id = _queued(runs, "test_flaky", {"fail_times": 5, "error": "timeout"})
    runs.jobs.claim("dead", job_id)
    with runs.db.service() as conn:
        conn.execute(
            "update jobs set heartbeat_at = now() - interval '1 hour' where id = %s", (job_id,)
        )
    runs.jobs.recover_stale(60, 3)
    assert _run(runs, job_id) == "failed"
    retries = [d["retry"] for t, d in _events(runs, job_id) if "retry" in d]
    assert [(r["attempt"], r["next_attempt"]) for r in retries] == [(2, 3)]
    assert runs.jobs.load(job_id)["attempts"] == 3


def test_a_job_that_outlives_several_heartbeats_stays_its_workers_and_completes(runs):
    # Heartbeats every 0.5 s: a worker that read its own beats as a takeover would stop here.
    job_id = _queued(runs, "test_sleep", {"seconds": 1.6})
    assert _run(runs, job_id) == "completed"
    row = runs.jobs.load(job_id)
    assert row["status"] == "completed" and row["heartbeat_at"] > row["started_at"]


def test_a_job_whose_cancel_was_asked_is_canceled(runs):
    job_id = _queued(runs, "test_sleep", {"seconds": 0})
    job = runs.jobs.claim("w", job_id)
    with runs.db.service() as conn:
        conn.execute("update jobs set cancel_requested = true where id = %s", (job_id,))
    assert execute_job(runs, job, "w", LocalExecutor(1)) == "canceled"
    row = runs.jobs.load(job_id)
    assert (row["status"], row["error_code"]) == ("canceled", "CANCELED")
    assert not _reserved(runs, job_id)


def test_a_job_taken_over_leaves_its_end_and_its_reservation_to_the_new_owner(runs):
    # The first heartbeat (0.5 s) finds the job taken over; the pipeline stops at its next check.
    job_id = _queued(runs, "test_sleep", {"seconds": 5})
    job = runs.jobs.claim("w", job_id)
    with runs.db.service() as conn:
        conn.execute("update jobs set worker_id = 'other' where id = %s", (job_id,))
    assert execute_job(runs, job, "w", LocalExecutor(1)) == "lost"
    _left_to_the_new_owner(runs, job_id, owner="other")


def test_run_one_claims_a_queued_job_or_says_there_was_none(runs):
    runner = LocalRunner(runs, workers=1, maintenance=False)
    with runs.db.service() as conn:
        conn.execute("update jobs set status = 'canceled' where status = 'queued'")
    assert runner.run_one() is None
    job_id = _queued(runs, "test_sleep", {"seconds": 0})
    assert runner.run_one(job_id) == "completed"
    assert runs.jobs.load(job_id)["worker_id"] is None
    assert runner.run_one(job_id) is None


def test_run_job_by_id_runs_that_job_once(runs):
    job_id = _queued(runs, "test_sleep", {"seconds": 0})
    assert run_job_by_id(runs, job_id, LocalExecutor(1)) == "completed"
    assert run_job_by_id(runs, job_id, LocalExecutor(1)) == "not-claimed"
    messages = [d.get("worker", "") for t, d in _events(runs, job_id) if t == "message"]
    assert messages[0].startswith("modal-")


def test_worker_ids_name_the_host_and_process_and_differ(runs):
    a, b = new_worker_id(), new_worker_id("modal")
    host = re.escape(socket.gethostname())
    assert re.fullmatch(rf"local-{host}-\d+-[0-9a-f]{{6}}", a)
    assert re.fullmatch(rf"modal-{host}-\d+-[0-9a-f]{{6}}", b)
    assert new_worker_id() != a


def test_a_local_runner_has_the_settings_workers_and_a_pool_of_at_least_two(runs, monkeypatch):
    monkeypatch.setattr(runs.settings, "workers", 3)
    runner = LocalRunner(runs)
    assert (runner.n_workers, runner.executor.max_workers, runner.maintenance) == (3, 3, True)
    assert LocalRunner(runs, workers=1).executor.max_workers == 2
    assert runner.worker_id.startswith("local-")


def test_the_deployment_picks_its_runner(runs, monkeypatch):
    assert isinstance(open_runner(runs), LocalRunner)
    monkeypatch.setattr(runs.settings, "runner", "modal")
    modal = open_runner(runs)
    assert isinstance(modal, ModalRunner) and modal.start() is modal
    assert modal.stop() is None


class _Clock:
    """The runner's ``time`` in a test: ``sleep`` moves ``monotonic`` on at once and is noted."""

    def __init__(self, on_sleep=None) -> None:
        self.now, self.sleeps, self.on_sleep = 1000.0, [], on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert len(self.sleeps) < 1000, "the wait never ends"
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


def test_the_wait_before_a_retry_is_the_announced_delay_in_short_naps(runs, monkeypatch):
    monkeypatch.setattr(runs.settings, "retry_backoff_s", 0.6)
    monkeypatch.setattr(runs.settings, "retry_backoff_max_s", 5.0)
    clock = _Clock()
    monkeypatch.setattr(runner_module, "time", clock)
    job_id = _queued(runs, "test_flaky", {"fail_times": 1, "error": "timeout"})
    assert _run(runs, job_id) == "completed"
    (delay,) = [d["retry"]["delay_s"] for t, d in _events(runs, job_id) if "retry" in d]
    assert 0.6 <= delay <= 1.2  # the first backoff plus up to one backoff of jitter
    # Naps of at most a quarter second, each followed by a look at the cancel flag.
    assert clock.sleeps and all(0 < s <= 0.25 for s in clock.sleeps)
    assert sum(clock.sleeps) == pytest.approx(delay, abs=1e-3)


def test_a_cancel_during_the_wait_before_a_retry_ends_the_job(runs, monkeypatch):
    monkeypatch.setattr(runs.settings, "retry_backoff_s", 0.6)
    monkeypatch.setattr(runs.settings, "retry_backoff_max_s", 5.0)
    job_id = _queued(runs, "test_flaky", {"fail_times": 1, "error": "timeout"})

    def cancel_in_second_nap(n: int) -> None:
        if n == 2:
            with runs.db.service() as conn:
                conn.execute("update jobs set cancel_requested = true where id = %s", (job_id,))

    clock = _Clock(cancel_in_second_nap)
    monkeypatch.setattr(runner_module, "time", clock)
    assert _run(runs, job_id) == "canceled"
    assert len(clock.sleeps) == 2  # seen right after the nap it came in
    row = runs.jobs.load(job_id)
    assert (row["status"], row["attempts"]) == ("canceled", 2)


def test_a_local_runner_runs_submitted_jobs_and_recovers_stale_ones(runs):
    with runs.db.service() as conn:
        conn.execute("update jobs set status = 'canceled' where status in ('queued', 'processing')")
    stale = _queued(runs, "test_sleep", {"seconds": 0})
    runs.jobs.claim("dead-worker", stale)
    with runs.db.service() as conn:
        conn.execute(
            "update jobs set heartbeat_at = now() - interval '1 hour' where id = %s", (stale,)
        )
    runner = LocalRunner(runs, workers=1).start()
    try:
        fresh = _queued(runs, "test_sleep", {"seconds": 0})
        runner.submit(fresh)
        deadline = time.monotonic() + 60
        while {runs.jobs.load(j)["status"] for j in (stale, fresh)} != {"completed"}:
            assert time.monotonic() < deadline, "the runner did not finish both jobs"
            time.sleep(0.1)
    finally:
        runner.stop()
    assert runs.jobs.load(stale)["attempts"] == 2  # recovered, then claimed again
    assert not any(t.is_alive() for t in runner._threads)
    # One worker and the maintenance thread, named for thread dumps, and daemons: a serving
    # process that exits does not wait on them.
    assert [(t.name, t.daemon) for t in runner._threads] == [
        ("worker-0", True),
        ("maintenance", True),
    ]


def test_an_idle_worker_waits_for_work_instead_of_polling_the_database(runs, monkeypatch):
    # With nothing queued a worker asks for a job, then waits (for a submit, or a second):
    # over half a second that is a claim or two, not hundreds.
    with runs.db.service() as conn:
        conn.execute("update jobs set status = 'canceled' where status in ('queued', 'processing')")
    claims = []
    claim = runs.jobs.claim

    def counted(*args, **kw):
        claims.append(args)
        return claim(*args, **kw)

    monkeypatch.setattr(runs.jobs, "claim", counted)
    runner = LocalRunner(runs, workers=1, maintenance=False).start()
    try:
        deadline = time.monotonic() + 30
        while not claims:  # the worker's first ask
            assert time.monotonic() < deadline, "the worker never asked for a job"
            time.sleep(0.01)
        time.sleep(0.5)
    finally:
        runner.stop()
    assert len(claims) <= 3


def test_the_local_runners_loops_log_their_errors_and_go_on(runs, monkeypatch):
    def broken(*args, **kw):
        raise ConnectionError("the database restarts")

    runner = LocalRunner(runs, workers=1)
    monkeypatch.setattr(runner, "run_one", broken)
    monkeypatch.setattr(runs.jobs, "recover_stale", broken)
    with logged("soundstage.runner") as records:
        runner.start()
        try:
            deadline = time.monotonic() + 30
            wanted = {"worker loop error", "maintenance error"}
            while not wanted <= {r.getMessage() for r in records}:
                assert time.monotonic() < deadline, [r.getMessage() for r in records]
                time.sleep(0.05)
        finally:
            runner.stop()
    assert {r.levelname for r in records if r.getMessage() in wanted} == {"ERROR"}
    assert not any(t.is_alive() for t in runner._threads)


class _FastClock:
    """A ``time`` whose clock jumps 10 s at each reading (only the maintenance loop reads it
    here): the first sweep, due 5 s after the start, falls due at the first pass; with a 25 s
    period the next falls due three passes later."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 10.0
        return self.now


def test_the_local_runners_maintenance_sweeps_on_schedule(runs, monkeypatch):
    import shared.retention

    passes: list = []
    swept: list = []

    def recover_stale(stale_after_s, max_attempts):
        passes.append(stale_after_s)
        return []

    monkeypatch.setattr(runs.jobs, "recover_stale", recover_stale)
    monkeypatch.setattr(shared.retention, "sweep", lambda services: swept.append(services))
    monkeypatch.setattr(runner_module, "time", _FastClock())
    monkeypatch.setattr(runs.settings, "retention_sweep_s", 25)
    runner = LocalRunner(runs, workers=0)
    with logged("soundstage.runner") as records:
        runner.start()
        try:
            deadline = time.monotonic() + 30
            while len(passes) < 2:
                assert time.monotonic() < deadline, [r.getMessage() for r in records]
                time.sleep(0.05)
        finally:
            runner.stop()
    assert not [r for r in records if r.getMessage() == "maintenance error"]
    # Passes 1, 4, 7...: the first is due at once, then one sweep a period.
    assert len(swept) == len([n for n in range(1, len(passes) + 1) if n % 3 == 1])
    assert swept[0] is runs


def test_the_modal_runner_spawns_run_job_on_the_deployed_app(runs, monkeypatch):
    import modal

    calls: list = []

    class RunJob:
        def spawn(self, job_id):
            calls.append(("spawn", job_id))

    def from_name(app, name, **kw):
        calls.append((app, name))
        return RunJob()

    monkeypatch.setattr(modal.Function, "from_name", staticmethod(from_name))
    ModalRunner(runs).submit("job-1")
    assert calls == [(runs.settings.modal_app_name, "run_job"), ("spawn", "job-1")]
