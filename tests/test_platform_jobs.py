"""The job system through the HTTP API: lifecycle, ownership, cancel, delete, download,
idempotency, rate limits, SSE with resume, stats."""

from __future__ import annotations

import json
import time

import pytest


def _sse(text: str) -> list[dict]:
    events, cur = [], {}
    for line in text.splitlines():
        if line == "":
            if "event" in cur:
                events.append(cur)
            cur = {}
        elif line.startswith("event:"):
            cur["event"] = line[6:].strip()
        elif line.startswith("id:"):
            cur["id"] = int(line[3:].strip())
        elif line.startswith("data:"):
            cur["data"] = json.loads(line[5:].strip())
    return events


def test_job_runs_to_completion_with_stages_costs_and_output(api, song_wav):
    r = api.create_job("test_sleep", [song_wav], {"seconds": 0.3})
    assert r.status_code == 202, r.text
    job = r.json()
    for field in (
        "id",
        "kind",
        "status",
        "progress",
        "current_stage",
        "stages",
        "params",
        "result",
        "outputs",
        "error",
        "costs",
        "queue_position",
        "estimated_remaining_s",
        "created_at",
        "started_at",
        "completed_at",
    ):
        assert field in job
    assert job["status"] in ("queued", "processing")
    assert [s["name"] for s in job["stages"]] == ["first", "second"]
    done = api.wait(job["id"])
    assert done["status"] == "completed", done
    assert done["progress"] == 100
    assert [s["status"] for s in done["stages"]] == ["completed", "completed"]
    assert all(s["engine"] == "test" for s in done["stages"])
    assert done["costs"]["total_usd"] == pytest.approx(0.001)
    assert done["result"]["sizes"] == [song_wav.stat().st_size]
    note = done["outputs"][0]
    assert note["name"] == "note" and note["url"]
    assert api.fetch(note["url"]).decode().startswith("inputs=")
    assert done["inputs"][0]["duration_s"] == pytest.approx(12.0, abs=0.01)


def test_someone_elses_job_is_404_everywhere(client, new_user, song_wav):
    from tests.conftest import Api

    alice, bob = Api(client, new_user()["headers"]), Api(client, new_user()["headers"])
    job = alice.run("test_sleep", [song_wav])
    for method, url in [
        ("get", f"/api/v1/jobs/{job['id']}"),
        ("get", f"/api/v1/jobs/{job['id']}/events"),
        ("get", f"/api/v1/jobs/{job['id']}/download"),
        ("post", f"/api/v1/jobs/{job['id']}/cancel"),
        ("delete", f"/api/v1/jobs/{job['id']}"),
    ]:
        r = getattr(bob, method)(url, follow_redirects=False)
        assert r.status_code == 404, (url, r.status_code)
        assert r.json()["code"] == "JOB_NOT_FOUND"
    assert bob.get("/api/v1/jobs").json()["total"] == 0
    assert alice.get(f"/api/v1/jobs/{job['id']}").status_code == 200


def test_list_is_mine_newest_first_and_paginated(api):
    ids = [api.create_job("test_sleep", [], {"seconds": 0}).json()["id"] for _ in range(3)]
    page1 = api.get("/api/v1/jobs", params={"limit": 2}).json()
    page2 = api.get("/api/v1/jobs", params={"limit": 2, "offset": 2}).json()
    assert page1["total"] == 3 and page1["next_offset"] == 2 and page2["next_offset"] is None
    assert [j["id"] for j in page1["items"] + page2["items"]] == ids[::-1]


def test_cancel_a_running_job(api):
    job = api.create_job("test_sleep", [], {"seconds": 20}).json()
    deadline = time.monotonic() + 10
    while api.get(f"/api/v1/jobs/{job['id']}").json()["status"] != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    r = api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200
    done = api.wait(job["id"], 15)
    assert done["status"] == "canceled"
    assert done["error"]["code"] == "CANCELED"
    again = api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "JOB_FINISHED"


def test_delete_removes_files(api, services, song_wav):
    job = api.run("test_sleep", [song_wav])
    user_id = job["outputs"][0]["path"].split("/")[0]
    before = services.storage.usage(user_id)
    assert before > song_wav.stat().st_size
    r = api.delete(f"/api/v1/jobs/{job['id']}")
    assert r.status_code == 200 and r.json()["files_removed"] == 2
    assert services.storage.usage(user_id) == 0
    assert api.get(f"/api/v1/jobs/{job['id']}").status_code == 404
    r = api.client.get(job["outputs"][0]["url"].replace("http://testserver", ""))
    assert r.status_code == 410


def test_download_redirects_to_a_signed_url(api, song_wav):
    job = api.run("test_sleep", [song_wav])
    r = api.get(f"/api/v1/jobs/{job['id']}/download", follow_redirects=False)
    assert r.status_code == 302
    assert "sig=" in r.headers["location"]
    r = api.get(f"/api/v1/jobs/{job['id']}/download/nope", follow_redirects=False)
    assert r.status_code == 404 and r.json()["code"] == "OUTPUT_NOT_FOUND"
    loc = r = api.get(f"/api/v1/jobs/{job['id']}/download/note", follow_redirects=False).headers[
        "location"
    ]
    tampered = loc.replace("sig=", "sig=0")
    assert api.client.get(tampered.replace("http://testserver", "")).status_code == 403


def test_idempotency_key_returns_the_same_job(api):
    h = {"Idempotency-Key": "abc-123"}
    a = api.create_job("test_sleep", [], {"seconds": 0}, headers=h)
    b = api.create_job("test_sleep", [], {"seconds": 0}, headers=h)
    assert a.status_code == 202 and b.status_code == 200
    assert a.json()["id"] == b.json()["id"]
    assert api.get("/api/v1/jobs").json()["total"] == 1


def test_failed_job_carries_a_stable_code(api):
    job = api.run("test_sleep", [], {"seconds": 0, "fail_code": "SOMETHING_WRONG"})
    assert job["status"] == "failed"
    assert job["error"] == {
        "code": "SOMETHING_WRONG",
        "message": "Asked to fail.",
        "retryable": False,
    }
    assert [s["status"] for s in job["stages"]] == ["completed", "failed"]


def test_sse_stream_and_resume_with_last_event_id(api):
    job = api.run("test_sleep", [], {"seconds": 0.5})
    r = api.get(f"/api/v1/jobs/{job['id']}/events")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r.text)
    types = [e["event"] for e in events]
    assert types[-1] == "completed"
    assert {"stage_update", "progress", "cost_update", "message"} <= set(types)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    cut = ids[len(ids) // 2]
    resumed = _sse(
        api.get(f"/api/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": str(cut)}).text
    )
    assert [e["id"] for e in resumed] == [i for i in ids if i > cut]


def test_rate_limit_answers_429_with_retry_after(client, new_user, services, monkeypatch):
    from tests.conftest import Api

    monkeypatch.setattr(services.settings, "rate_limit_per_hour", 2)
    user = Api(client, new_user()["headers"])
    assert user.create_job("test_sleep", [], {"seconds": 0}).status_code == 202
    assert user.create_job("test_sleep", [], {"seconds": 0}).status_code == 202
    r = user.create_job("test_sleep", [], {"seconds": 0})
    assert r.status_code == 429
    assert r.json()["code"] == "RATE_LIMITED"
    assert 0 < int(r.headers["Retry-After"]) <= 3600


def test_stats_report_queue_and_percentiles(api):
    api.run("test_sleep", [], {"seconds": 0.1})
    stats = api.get("/api/v1/stats").json()
    assert set(stats["queue"]) >= {"queued", "processing", "completed", "failed", "canceled"}
    k = stats["kinds"]["test_sleep"]
    assert k["completed"] >= 1
    assert k["duration_p50_s"] <= k["duration_p95_s"] <= k["duration_p99_s"]
    assert 0 <= k["success_rate"] <= 1


def test_health_and_auth_required(client):
    assert client.get("/health").json()["status"] == "ok"
    for url in ("/api/v1/jobs", "/api/v1/stats", "/api/v1/auth/me", "/api/v1/kinds"):
        r = client.get(url)
        assert r.status_code == 401 and r.json()["code"] == "AUTH_REQUIRED"


def test_stream_cut_short_resumes_seamlessly(api, monkeypatch):
    """Modal ends web requests at 150 s: our stream closes first and the client resumes with
    Last-Event-ID; across the pieces every event arrives exactly once, in order."""
    import fastapi.routing

    from web.routers import jobs as jobs_router

    monkeypatch.setattr(jobs_router, "STREAM_MAX_S", 0.6)
    monkeypatch.setattr(fastapi.routing, "_PING_INTERVAL", 0.2)
    job = api.create_job("test_sleep", [], {"seconds": 3}).json()
    seen: list[dict] = []
    pings = 0
    last = None
    for _ in range(40):
        headers = {"Last-Event-ID": str(last)} if last else {}
        r = api.get(f"/api/v1/jobs/{job['id']}/events", headers=headers)
        pings += r.text.count(": ping")
        part = _sse(r.text)
        seen.extend(part)
        if part:
            last = part[-1]["id"]
        if part and part[-1]["event"] == "completed":
            break
    assert seen[-1]["event"] == "completed"
    ids = [e["id"] for e in seen]
    assert ids == sorted(set(ids))
    full = _sse(api.get(f"/api/v1/jobs/{job['id']}/events").text)
    assert [e["id"] for e in full] == ids
    assert pings > 0  # keep-alive comments while the job was quiet
