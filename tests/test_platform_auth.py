"""Users and tokens: register/login/refresh/reset/me, and a verifier that refuses bad tokens."""

from __future__ import annotations

import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec


def test_register_login_me_refresh(client):
    body = {"email": "Pat@Example.com", "password": "long enough pw"}
    r = client.post("/api/v1/auth/register", json=body)
    assert r.status_code == 201
    tokens = r.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0 and tokens["refresh_token"]
    assert client.post("/api/v1/auth/register", json=body).json()["code"] == "USER_ALREADY_EXISTS"

    r = client.post(
        "/api/v1/auth/login", json={"email": "pat@example.com", "password": "long enough pw"}
    )
    assert r.status_code == 200
    access = r.json()["access_token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {access}"}).json()
    assert me["email"] == "pat@example.com" and me["storage_quota_bytes"] == 10 * 1024**3

    bad = client.post(
        "/api/v1/auth/login", json={"email": "pat@example.com", "password": "nope nope"}
    )
    assert bad.status_code == 401 and bad.json()["code"] == "INVALID_CREDENTIALS"

    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    # Refresh tokens rotate: the old one is spent.
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401 and again.json()["code"] == "INVALID_REFRESH_TOKEN"


@pytest.mark.parametrize(
    "body,code",
    [
        ({"email": "not-an-email", "password": "long enough pw"}, "INVALID_EMAIL"),
        ({"email": "a@b.co", "password": "short"}, "WEAK_PASSWORD"),
        ({"email": "a@b.co"}, "VALIDATION_ERROR"),
    ],
)
def test_register_rejects_bad_credentials(client, body, code):
    r = client.post("/api/v1/auth/register", json=body)
    assert 400 <= r.status_code < 500 and r.json()["code"] == code
    assert r.json()["message"].endswith(".")


def test_password_reset_with_logged_recovery_token(client, caplog):
    client.post(
        "/api/v1/auth/register",
        json={"email": "forgetful@example.com", "password": "first password"},
    )
    logger = logging.getLogger("soundstage.auth")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="soundstage.auth"):
            r = client.post("/api/v1/auth/reset-password", json={"email": "forgetful@example.com"})
    finally:
        logger.removeHandler(caplog.handler)
    assert r.status_code == 202
    token = [
        rec.getMessage().rsplit(" ", 1)[-1]
        for rec in caplog.records
        if "recovery" in rec.getMessage()
    ][-1]
    r = client.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": "second password"}
    )
    assert r.status_code == 202 and r.json()["access_token"]
    assert (
        client.post(
            "/api/v1/auth/login",
            json={"email": "forgetful@example.com", "password": "second password"},
        ).status_code
        == 200
    )
    reused = client.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": "third password"}
    )
    assert reused.status_code == 401
    # Unknown emails get the same answer: no account enumeration.
    assert (
        client.post("/api/v1/auth/reset-password", json={"email": "nobody@example.com"}).status_code
        == 202
    )


def _forge(services, **over):
    auth = services.auth
    now = int(time.time())
    claims = {
        "iss": auth.issuer,
        "sub": "00000000-0000-4000-8000-00000000abcd",
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 60,
    }
    claims.update(over)
    return jwt.encode(claims, auth.key, algorithm="ES256", headers={"kid": auth.kid})


def test_verifier_requires_audience_issuer_expiry_and_our_key(client, services):
    def status(token):
        return client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})

    assert status(_forge(services)).status_code == 200
    cases = {
        "TOKEN_EXPIRED": _forge(services, exp=int(time.time()) - 10),
        "INVALID_TOKEN": _forge(services, aud="anon"),
    }
    for code, token in cases.items():
        r = status(token)
        assert r.status_code == 401 and r.json()["code"] == code
    assert status(_forge(services, iss="https://evil.example/auth/v1")).status_code == 401
    # Signed by someone else's key with our kid.
    other = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(
        {
            "iss": services.auth.issuer,
            "sub": "x",
            "aud": "authenticated",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        other,
        algorithm="ES256",
        headers={"kid": services.auth.kid},
    )
    assert status(forged).status_code == 401
    # A symmetric token (the classic alg-confusion attack) is refused outright.
    hs = jwt.encode({"sub": "x", "aud": "authenticated"}, "s" * 32, algorithm="HS256")
    assert status(hs).status_code == 401
    assert status("not.a.jwt").status_code == 401


def test_jwks_endpoint_verifies_issued_tokens(client, new_user, services):
    from shared.auth import TokenVerifier

    keys = client.get("/auth/v1/.well-known/jwks.json").json()
    assert keys["keys"][0]["kty"] == "EC" and "d" not in keys["keys"][0]
    token = new_user()["tokens"]["access_token"]
    user = TokenVerifier(services.auth.issuer, jwks=keys).verify(token)
    assert user.email.endswith("@example.com")


def test_supabase_auth_sends_documented_requests(services):
    """Supabase Auth (GoTrue) cannot be reached here: check the requests we send against its API."""
    import json

    import httpx

    from shared.auth import SupabaseAuth
    from shared.config import Settings

    seen = []
    session = {
        "access_token": "a.b.c",
        "refresh_token": "r1",
        "expires_in": 3600,
        "token_type": "bearer",
        "user": {
            "id": "00000000-0000-4000-8000-000000000001",
            "aud": "authenticated",
            "email": "x@example.com",
            "app_metadata": {},
            "user_metadata": {},
            "created_at": "2026-01-01T00:00:00Z",
        },
    }

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if req.url.path.endswith("/recover"):
            return httpx.Response(200, json={})
        return httpx.Response(200, json=session)

    settings = Settings(
        auth_backend="supabase",
        supabase_url="https://proj.supabase.co",
        supabase_anon_key="anon-key",
    )
    auth = SupabaseAuth(settings, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    pair = auth.login("X@example.com", "pw123456")
    assert pair.access_token == "a.b.c"
    auth.refresh("r1")
    auth.request_reset("x@example.com")
    login, refresh, recover = seen
    assert login.url.path == "/auth/v1/token" and login.url.params["grant_type"] == "password"
    sent = json.loads(login.content)
    assert (sent["email"], sent["password"]) == ("x@example.com", "pw123456")
    assert login.headers["apikey"] == "anon-key"
    assert refresh.url.params["grant_type"] == "refresh_token"
    assert json.loads(refresh.content)["refresh_token"] == "r1"
    assert recover.url.path == "/auth/v1/recover"
    assert auth.verifier.issuer == "https://proj.supabase.co/auth/v1"
