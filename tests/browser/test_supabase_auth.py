"""Production auth: the page signs in through Supabase Auth (supabase-js) when /api/v1/config
says so. Supabase cannot be reached from here, so its Auth API (GoTrue) is played by a route
handler that checks each request against GoTrue's documented endpoints: POST /auth/v1/signup
and /auth/v1/token?grant_type=password with {email, password}, POST /auth/v1/recover with
{email}, POST /auth/v1/logout with the bearer token; every call carries the anon key as
``apikey``. The API answers with the same JSON shapes it really has."""

from __future__ import annotations

import gzip
import json
import time
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect

ANON = "anon-public-key"
ACCESS = "supabase-access-token-123"


def _session(email: str) -> dict:
    return {
        "access_token": ACCESS,
        "token_type": "bearer",
        "expires_in": 3600,
        "expires_at": int(time.time()) + 3600,
        "refresh_token": "supabase-refresh-token",
        "user": {
            "id": "0b3e6a3c-2a4b-4c1b-9d8e-1f2a3b4c5d6e",
            "aud": "authenticated",
            "role": "authenticated",
            "email": email,
            "app_metadata": {"provider": "email"},
            "user_metadata": {},
            "created_at": "2026-01-01T00:00:00Z",
        },
    }


def test_supabase_sign_up_sign_in_reset_and_log_out(studio):
    page = studio.page
    base = studio.server.url
    calls: list[tuple[str, str, dict]] = []
    api_auth: list[str] = []
    unexpected: list[str] = []
    email = "producer@example.com"

    def config(route):
        route.fulfill(
            json={
                "auth": "supabase",
                # Same origin here, so the test's CSP (connect-src 'self') applies unchanged;
                # in production the CSP lists the Supabase URL.
                "supabase_url": f"{base}/supabase",
                "supabase_anon_key": ANON,
                "max_files": 8,
                "limits": {},
            }
        )

    def gotrue(route):
        # Failures inside a route handler do not reach pytest: they are collected instead.
        try:
            answer(route)
        except AssertionError as e:
            unexpected.append(f"bad request: {e}")
            route.fulfill(status=400, json={"code": 400, "msg": str(e)})

    def answer(route):
        req = route.request
        url = urlparse(req.url)
        path = url.path.removeprefix("/supabase/auth/v1")
        body = json.loads(req.post_data or "{}") if req.method == "POST" else {}
        assert req.headers.get("apikey") == ANON, f"{path} without the anon key"
        calls.append((req.method, path, body))
        if req.method == "POST" and path == "/signup":
            assert set(body) >= {"email", "password"}
            return route.fulfill(json=_session(body["email"]))
        if req.method == "POST" and path == "/token":
            assert parse_qs(url.query)["grant_type"] == ["password"]
            assert body["email"] == email and body["password"]
            return route.fulfill(json=_session(body["email"]))
        if req.method == "POST" and path == "/recover":
            assert body["email"] == email
            return route.fulfill(json={})
        if req.method == "POST" and path == "/logout":
            assert req.headers.get("authorization") == f"Bearer {ACCESS}"
            return route.fulfill(status=204, body="")
        unexpected.append(f"{req.method} {path}")
        route.fulfill(status=404, json={"code": 404, "msg": "not found"})

    def jobs(route):
        api_auth.append(route.request.headers.get("authorization", ""))
        route.fulfill(json={"items": [], "total": 0, "limit": 10, "offset": 0, "next_offset": None})

    scripts: dict[str, int] = {}
    page.on(
        "response",
        lambda r: (
            scripts.__setitem__(r.url, len(gzip.compress(r.body(), 9)))
            if r.request.resource_type == "script"
            else None
        ),
    )
    page.route("**/api/v1/config", config)
    page.route("**/supabase/auth/v1/**", gotrue)
    page.route("**/api/v1/jobs?*", jobs)

    studio.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".empty")).to_contain_text("No jobs yet")  # the list has arrived
    # With supabase-js loaded, the first page is still far under 300 KB of gzipped JavaScript.
    assert any("supabase" in url for url in scripts), scripts
    assert sum(scripts.values()) < 300 * 1024, scripts
    # The API gets Supabase's access token as the bearer token.
    assert api_auth and api_auth[-1] == f"Bearer {ACCESS}"
    # supabase-js keeps the session: a reload stays signed in, and no token is in the URL.
    page.reload()
    expect(page.get_by_role("heading", name="Your jobs")).to_be_visible()
    assert ACCESS not in page.url
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your jobs")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send recovery").click()
    expect(page.get_by_role("status")).to_contain_text("reset link")
    studio.shot("supabase-reset-sent")
    paths = [(m, p) for m, p, _ in calls]
    assert paths == [
        ("POST", "/signup"),
        ("POST", "/logout"),
        ("POST", "/token"),
        ("POST", "/logout"),
        ("POST", "/recover"),
    ], paths
    assert not unexpected, unexpected
