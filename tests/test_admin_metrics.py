"""Operators: the admin role (a claim set by ``soundstage admin grant``), the queue across users
(failures by code, retry, cancel), and ``GET /metrics`` in Prometheus format, never public."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli.admin import set_admin
from shared.auth import is_admin
from tests.cli_subprocess import run_cli
from tests.conftest import Api


@pytest.fixture
def admin(client, new_user, services) -> Api:
    user = new_user()
    set_admin(services.db, user["email"], True)
    # The role arrives with the next token.
    r = client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": user["password"]}
    )
    assert r.status_code == 200, r.text
    return Api(client, {"Authorization": f"Bearer {r.json()['access_token']}"})


def test_is_admin_reads_app_metadata():
    assert is_admin({"app_metadata": {"role": "admin"}})
    assert not is_admin({"app_metadata": {"provider": "email"}})
    assert not is_admin({"user_metadata": {"role": "admin"}})  # users can write this one
    assert not is_admin({})


def test_operator_sees_every_users_jobs_and_failures(api, admin, client, new_user):
    other = Api(client, new_user()["headers"])
    mine = api.run("test_sleep", [], {"seconds": 0.05})
    theirs = other.run("test_sleep", [], {"seconds": 0.05, "fail_code": "ASKED_TO_FAIL"})
    assert theirs["status"] == "failed"
    # A user is no operator: 403 with a code, and still sees only their own jobs.
    r = api.get("/api/v1/admin/jobs")
    assert r.status_code == 403 and r.json()["code"] == "ADMIN_REQUIRED"
    assert theirs["id"] not in {j["id"] for j in api.get("/api/v1/jobs").json()["items"]}

    listing = admin.get("/api/v1/admin/jobs", params={"limit": 200}).json()
    ids = {j["id"]: j for j in listing["items"]}
    assert mine["id"] in ids and theirs["id"] in ids
    assert ids[theirs["id"]]["error"]["code"] == "ASKED_TO_FAIL"
    assert ids[theirs["id"]]["user_email"] and ids[mine["id"]]["user_email"]
    failed = admin.get("/api/v1/admin/jobs", params={"error_code": "ASKED_TO_FAIL"}).json()
    assert failed["items"] and all(j["status"] == "failed" for j in failed["items"])
    groups = admin.get("/api/v1/admin/failures").json()["groups"]
    group = next(g for g in groups if g["code"] == "ASKED_TO_FAIL")
    assert group["kind"] == "test_sleep" and group["count"] >= 1 and group["last_message"]


def test_operator_cancels_and_retries_another_users_job(api, admin, services):
    created = api.create_job("test_sleep", [], {"seconds": 20})
    job_id = created.json()["id"]
    canceled = admin.post(f"/api/v1/admin/jobs/{job_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert api.wait(job_id, timeout_s=60)["status"] == "canceled"
    # Retry from the start; make it quick this time by the same params (it is the same job).
    retried = admin.post(f"/api/v1/admin/jobs/{job_id}/retry")
    assert retried.status_code == 200 and retried.json()["status"] in ("queued", "processing")
    again = admin.post(f"/api/v1/admin/jobs/{job_id}/retry")
    assert again.status_code == 409 and again.json()["code"] == "JOB_NOT_RETRYABLE"
    admin.post(f"/api/v1/admin/jobs/{job_id}/cancel")
    assert api.wait(job_id, timeout_s=60)["status"] == "canceled"
    with services.db.service() as conn:  # the stream ends at the first cancel: read the log
        events = [
            r["data"].get("message")
            for r in conn.execute(
                "select data from job_events where job_id = %s order by id", (job_id,)
            ).fetchall()
        ]
    assert "Queued again by an operator (was canceled: CANCELED)." in events
    assert admin.post("/api/v1/admin/jobs/not-a-uuid/retry").status_code == 404


def _scrape(client, headers) -> dict[tuple[str, tuple], float]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_for_operators_or_the_scrape_secret(client, api, admin, services, monkeypatch):
    assert client.get("/metrics").status_code == 401
    r = api.get("/metrics")
    assert r.status_code == 403 and r.json()["code"] == "ADMIN_REQUIRED"
    monkeypatch.setattr(services.settings, "metrics_token", "scrape-secret-123")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert _scrape(client, {"Authorization": "Bearer scrape-secret-123"})
    assert _scrape(client, admin.headers)


def test_metrics_count_jobs_stages_errors_costs_and_requests(client, api, admin, services):
    before = _scrape(client, admin.headers)
    done = api.run("test_sleep", [], {"seconds": 0.05})
    api.run("test_sleep", [], {"seconds": 0.05, "fail_code": "METRIC_FAIL"})
    with services.db.service() as conn:  # a GPU stage's cost row, as the MusicGen call writes
        conn.execute(
            "insert into job_costs (job_id, user_id, stage, provider, units, unit, cost_usd)"
            " select id, user_id, 'first', 'modal', 12.5, 'gpu_seconds', 0.003 from jobs"
            " where id = %s",
            (done["id"],),
        )
    after = _scrape(client, admin.headers)

    def delta(name: str, **labels) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("soundstage_jobs", kind="test_sleep", status="completed") >= 1
    assert delta("soundstage_jobs_finished_total", kind="test_sleep", status="failed") >= 1
    assert delta("soundstage_job_errors_total", kind="test_sleep", code="METRIC_FAIL") == 1
    assert delta("soundstage_stage_duration_seconds_count", kind="test_sleep", stage="first") >= 2
    assert delta("soundstage_stage_duration_seconds_bucket", kind="test_sleep", stage="first",
                 le="+Inf") >= 2  # fmt: skip
    assert delta("soundstage_job_queue_wait_seconds_count", kind="test_sleep") >= 2
    assert delta("soundstage_job_cost_usd_sum", kind="test_sleep") >= 0.001 - 1e-9
    assert delta("soundstage_gpu_seconds_total", kind="test_sleep", stage="first",
                 provider="modal") == pytest.approx(12.5)  # fmt: skip
    assert ("soundstage_queue_length", ()) in after
    route = "/api/v1/jobs/{job_id}"
    assert delta("soundstage_http_requests_total", method="GET", route=route, status="200") >= 2
    assert _value(after, "soundstage_http_request_duration_seconds_count", method="GET",
                  route=route) >= 2  # fmt: skip
    # p95 of a stage comes from the cumulative buckets: they never decrease.
    buckets = sorted(
        (float(dict(k[1])["le"]), v)
        for k, v in after.items()
        if k[0] == "soundstage_stage_duration_seconds_bucket"
        and dict(k[1]).get("stage") == "first"
        and dict(k[1]).get("kind") == "test_sleep"
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] >= 2


def test_admin_grant_from_the_cli(tmp_path):
    def cli(*args: str):
        return run_cli(tmp_path, *args)

    missing = cli("admin", "grant", "nobody@example.com")
    assert missing.returncode == 2 and "USER_NOT_FOUND" in missing.stderr
    assert cli("jobs").returncode == 0  # creates the built-in local user
    granted = cli("admin", "grant", "local@soundstage.invalid")
    assert granted.returncode == 0 and "is now an admin" in granted.stderr, granted.stderr
    listed = cli("admin", "list")
    assert listed.stdout.split() == ["local@soundstage.invalid"]
    assert cli("admin", "revoke", "local@soundstage.invalid").returncode == 0
    assert cli("admin", "list").stdout.strip() == ""
