"""Cross-cutting web behaviour: CORS only for configured origins, structured logs without
secrets, the production profile's rate limit, the kinds catalogue."""

from __future__ import annotations

import json
import logging

from shared.config import Settings
from shared.logs import JsonFormatter


def test_cors_allows_only_configured_origins(client):
    ok = client.options(
        "/api/v1/jobs",
        headers={"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "POST"},
    )
    assert ok.headers.get("access-control-allow-origin") == "http://127.0.0.1:8000"
    bad = client.options(
        "/api/v1/jobs",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in bad.headers


def test_logs_are_json_lines_with_context_and_no_tokens(client, new_user, capsys):
    user = new_user()
    token = user["tokens"]["access_token"]
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    root = logging.getLogger("soundstage")
    handler = Keep()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        logging.getLogger("soundstage.test").info(
            "echo Bearer %s and %s",
            token,
            token,
            extra={"job_id": "j1", "stage": "s", "duration_s": 1.5, "cost_usd": 0.01},
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    fmt = JsonFormatter()
    lines = [fmt.format(r) for r in records]
    for line in lines:
        parsed = json.loads(line)
        assert token not in line
        assert {"ts", "level", "logger", "msg"} <= set(parsed)
    request_log = [json.loads(x) for x in lines if json.loads(x)["msg"] == "request"]
    assert (
        request_log and request_log[0]["path"] == "/api/v1/jobs" and "duration_s" in request_log[0]
    )
    echo = json.loads(lines[-1])
    assert echo["job_id"] == "j1" and echo["cost_usd"] == 0.01 and "[redacted]" in echo["msg"]


def test_production_profile_limits_jobs_to_five_per_hour():
    assert Settings(profile="production").rate_limit == 5
    assert Settings(profile="production", rate_limit_per_hour=12).rate_limit == 12
    assert Settings().rate_limit > 5


def test_kinds_catalogue_lists_params_schemas(api):
    kinds = {k["kind"]: k for k in api.get("/api/v1/kinds").json()}
    assert "analyze" in kinds
    assert kinds["analyze"]["stages"] == ["audio_analysis"]
    assert kinds["analyze"]["params_schema"]["type"] == "object"
    # The catalogue is the registry the app was composed with (the tests add their own kinds).
    assert "test_sleep" in kinds and kinds["test_sleep"]["stages"] == ["first", "second"]
