"""The server side of the web client: the public config route, the job inputs route, and the
built files served with a SPA fallback that never swallows API paths."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.errors import NotFound
from web.client_files import mount_client


def test_config_is_public_and_holds_no_secret(client, services):
    r = client.get("/api/v1/config")
    assert r.status_code == 200
    body = r.json()
    assert body["auth"] == "local"
    assert body["supabase_url"] is None and body["supabase_anon_key"] is None
    # Upload limits per kind, shown by the page before a file is sent.
    assert body["limits"]["video"]["max_file_mb"] == services.settings.video_max_upload_mb
    assert body["limits"]["video"]["formats"] == ["mp3", "wav", "flac"]
    assert body["limits"]["analyze"]["max_file_mb"] == services.settings.max_upload_mb
    assert "wav" in body["limits"]["analyze"]["formats"]


def test_config_in_supabase_mode_hands_out_only_the_anon_key(app, monkeypatch):
    settings = app.state.services.settings
    secrets = {
        "supabase_service_key": "service-role-SECRET",
        "signing_secret": settings.signing_secret,
        "openai_api_key": "sk-SECRET",
        "replicate_api_token": "r8_SECRET",
    }
    for name, value in secrets.items():
        monkeypatch.setattr(settings, name, value)
    monkeypatch.setattr(settings, "auth_backend", "supabase")
    monkeypatch.setattr(settings, "supabase_url", "https://abc.supabase.co/")
    monkeypatch.setattr(settings, "supabase_anon_key", "anon-public-key")
    with TestClient(app) as c:
        body = c.get("/api/v1/config").json()
    assert body["auth"] == "supabase"
    assert body["supabase_url"] == "https://abc.supabase.co"
    assert body["supabase_anon_key"] == "anon-public-key"
    text = json.dumps(body)
    for value in secrets.values():
        assert value not in text


def test_job_inputs_are_signed_links_for_the_owner_only(client, new_user, song_wav, api):
    job = api.run("analyze", [song_wav])
    r = api.get(f"/api/v1/jobs/{job['id']}/inputs")
    assert r.status_code == 200
    (item,) = r.json()
    assert item["filename"] == "song.wav" and item["index"] == 0
    assert api.fetch(item["url"]) == song_wav.read_bytes()
    other = new_user()["headers"]
    r = client.get(f"/api/v1/jobs/{job['id']}/inputs", headers=other)
    assert r.status_code == 404 and r.json()["code"] == "JOB_NOT_FOUND"
    assert client.get(f"/api/v1/jobs/{job['id']}/inputs").status_code == 401


@pytest.fixture
def spa(tmp_path) -> TestClient:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>studio</title>")
    (dist / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside dist")
    app = FastAPI()

    @app.get("/api/v1/ping")
    def ping() -> dict:
        return {"pong": True}

    @app.exception_handler(NotFound)
    async def not_found(request, exc):
        from fastapi.responses import JSONResponse

        return JSONResponse({"code": exc.code}, status_code=404)

    mount_client(app, dist)
    return TestClient(app)


def test_client_routes_get_the_page_and_api_routes_stay_api(spa):
    for path in ("/", "/jobs/1234", "/new/beat", "/login", "/admin"):
        r = spa.get(path)
        assert r.status_code == 200 and "<title>studio</title>" in r.text, path
        assert r.headers["cache-control"] == "no-cache"
    asset = spa.get("/assets/index-abc123.js")
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    assert spa.get("/api/v1/ping").json() == {"pong": True}
    for path in ("/api/v1/nothing", "/assets/missing.js", "/files/x/y", "/docs/x", "/favicon.png"):
        assert spa.get(path).status_code == 404, path
    # No way out of the build folder.
    assert "outside dist" not in spa.get("/..%2fsecret.txt").text
    assert "outside dist" not in spa.get("/assets/..%2f..%2fsecret.txt").text


def test_without_a_build_the_root_says_how_to_get_one(tmp_path):
    app = FastAPI()
    mount_client(app, tmp_path / "not-built")
    r = TestClient(app).get("/jobs/abc")
    assert r.status_code == 200 and "make run" in r.text
