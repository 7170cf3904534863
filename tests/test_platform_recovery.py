"""A worker that dies mid-job: its job is picked up again (or failed as retryable), never left
`processing`. The worker here is a real `soundstage worker` process, killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from functions.audio_tools import AUDIO_TOOLS
from shared.runner import LocalRunner
from shared.services import open_services
from shared.submit import submit_job
from tests.conftest import make_settings, new_database
from tests.kinds import TEST_KINDS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def isolated(pg_url, services, tmp_path):
    """Services on a database of their own, so the session's workers don't take these jobs."""
    url = new_database(pg_url, "recovery")  # as the superuser: the service role may not
    svc = open_services(
        make_settings(tmp_path, database_url=url, stale_after_s=2.0),
        kinds=TEST_KINDS,
        audio=AUDIO_TOOLS,
    )
    yield svc, url
    svc.close()


def _wait(pred, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_job_is_requeued_and_completed(isolated, tmp_path):
    svc, url = isolated
    env = {
        **os.environ,
        "SOUNDSTAGE_DATABASE_URL": url,
        "SOUNDSTAGE_DATA_DIR": str(tmp_path),
        "SOUNDSTAGE_HEARTBEAT_S": "0.5",
        "SOUNDSTAGE_SIGNING_SECRET": "test-signing-secret",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from tests.kinds import TEST_KINDS; from cli.main import main; "
            "main(['worker', '--threads', '1'], kinds=TEST_KINDS)",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        user = svc.auth.ensure_local_user()
        job, _ = submit_job(svc, user, "test_sleep", {"seconds": 4}, [])
        job_id = str(job["id"])
        row = _wait(
            lambda: (r := svc.jobs.load(job_id))["status"] == "processing" and r,
            60,
            "the worker process to claim the job",
        )
        dead_worker = row["worker_id"]
        assert str(proc.pid) in dead_worker
        _wait(lambda: svc.jobs.load(job_id)["progress"] > 0, 30, "progress")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert svc.jobs.load(job_id)["status"] == "processing"  # nobody will finish it by itself

    runner = LocalRunner(svc, workers=1).start()  # maintenance finds the stale heartbeat
    try:
        final = _wait(
            lambda: (r := svc.jobs.load(job_id))["status"] in ("completed", "failed") and r,
            60,
            "the job to be recovered and finished",
        )
    finally:
        runner.stop()
    assert final["status"] == "completed"
    assert final["attempts"] == 2
    assert final["worker_id"] is None
    messages = [e["data"].get("message", "") for e in svc.jobs.events_after(user.id, job_id, 0)]
    assert any("stopped responding" in m for m in messages)


def test_job_out_of_attempts_fails_as_retryable(isolated):
    svc, _ = isolated
    user = svc.auth.ensure_local_user()
    job, _ = submit_job(svc, user, "test_sleep", {"seconds": 0}, [])
    for attempt in range(svc.settings.max_attempts):
        claimed = svc.jobs.claim(f"doomed-{attempt}", str(job["id"]))
        assert claimed is not None
        with svc.db.service() as conn:
            conn.execute(
                "update jobs set heartbeat_at = now() - interval '1 hour' where id = %s",
                (job["id"],),
            )
        svc.jobs.recover_stale(svc.settings.stale_after_s, svc.settings.max_attempts)
    final = svc.jobs.load(str(job["id"]))
    assert final["status"] == "failed"
    assert (final["error_code"], final["error_retryable"]) == ("WORKER_LOST", True)


def test_canceling_a_queued_job_ends_it_without_a_worker(isolated):
    svc, _ = isolated
    user = svc.auth.ensure_local_user()
    job, _ = submit_job(svc, user, "test_sleep", {"seconds": 0}, [])
    view = svc.jobs.cancel(user.id, str(job["id"]))
    assert view["status"] == "canceled" and view["error_code"] == "CANCELED"
    assert view["attempts"] == 0  # nobody ran it, not even a stand-in claim
    assert svc.jobs.claim("late-worker", str(job["id"])) is None
    types = [e["type"] for e in svc.jobs.events_after(user.id, str(job["id"]), 0)]
    assert types == ["error"]
