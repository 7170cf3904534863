"""Sessions end when they should: a password reset and "log out everywhere" revoke every refresh
token and every earlier access token; a reused refresh token ends its whole family; a
well-signed token whose subject is not a user id is a 401, never a 500."""

from __future__ import annotations

import logging
import time
import uuid

import jwt


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _recovery_token(client, email: str, caplog) -> str:
    with caplog.at_level(logging.WARNING, logger="soundstage.auth"):
        caplog.clear()
        r = client.post("/api/v1/auth/reset-password", json={"email": email})
        assert r.status_code == 202
    rec = [r for r in caplog.records if getattr(r, "recovery", False)]
    return rec[-1].getMessage().rsplit(" ", 1)[-1]


def test_password_reset_ends_every_session(client, new_user, caplog):
    u = new_user()
    other = client.post(
        "/api/v1/auth/login", json={"email": u["email"], "password": u["password"]}
    ).json()
    assert client.get("/api/v1/auth/me", headers=u["headers"]).status_code == 200

    token = _recovery_token(client, u["email"], caplog)
    r = client.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": "a brand new secret"}
    )
    assert r.status_code == 202, r.text
    fresh = r.json()

    for refresh in (u["tokens"]["refresh_token"], other["refresh_token"]):
        r = client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        assert r.status_code == 401 and r.json()["code"] == "INVALID_REFRESH_TOKEN"
    for access in (u["tokens"]["access_token"], other["access_token"]):
        r = client.get("/api/v1/auth/me", headers=_bearer(access))
        assert r.status_code == 401 and r.json()["code"] == "SESSION_REVOKED"
    # The session the reset opened works, and so does a new sign-in.
    assert client.get("/api/v1/auth/me", headers=_bearer(fresh["access_token"])).status_code == 200
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert r.status_code == 200


def test_logout_everywhere_and_logout_here(client, new_user):
    u = new_user()
    second = client.post(
        "/api/v1/auth/login", json={"email": u["email"], "password": u["password"]}
    ).json()
    # Local sign-out ends only this session's refresh tokens.
    r = client.post("/api/v1/auth/logout", headers=_bearer(second["access_token"]))
    assert r.status_code == 204
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 401
    assert client.get("/api/v1/auth/me", headers=u["headers"]).status_code == 200

    r = client.post("/api/v1/auth/logout?scope=global", headers=u["headers"])
    assert r.status_code == 204
    assert client.get("/api/v1/auth/me", headers=u["headers"]).json()["code"] == "SESSION_REVOKED"
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": u["tokens"]["refresh_token"]})
    assert r.status_code == 401
    again = client.post("/api/v1/auth/login", json={"email": u["email"], "password": u["password"]})
    assert (
        client.get("/api/v1/auth/me", headers=_bearer(again.json()["access_token"])).status_code
        == 200
    )


def test_refresh_token_reuse_revokes_the_family(client, new_user):
    u = new_user()
    first = u["tokens"]["refresh_token"]
    successor = client.post("/api/v1/auth/refresh", json={"refresh_token": first}).json()
    # The thief replays the rotated token: refused, and the successor dies with it.
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 401
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": successor["refresh_token"]})
    assert r.status_code == 401 and r.json()["code"] == "INVALID_REFRESH_TOKEN"
    # Other sessions of the same user are untouched.
    other = client.post(
        "/api/v1/auth/login", json={"email": u["email"], "password": u["password"]}
    ).json()
    assert (
        client.post(
            "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
        ).status_code
        == 200
    )


def test_signed_token_with_a_non_uuid_subject_is_401(client, services):
    auth = services.auth
    now = int(time.time())
    claims = {
        "iss": auth.issuer,
        "sub": "not-a-uuid'; drop table jobs; --",
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 60,
    }
    token = jwt.encode(claims, auth.key, algorithm="ES256", headers={"kid": auth.kid})
    for path in ("/api/v1/auth/me", "/api/v1/jobs", f"/api/v1/jobs/{uuid.uuid4()}"):
        r = client.get(path, headers=_bearer(token))
        assert r.status_code == 401 and r.json()["code"] == "INVALID_TOKEN", (path, r.text)


def test_register_existing_email_answers_like_supabase(client, new_user):
    u = new_user()
    r = client.post("/api/v1/auth/register", json={"email": u["email"], "password": "whatever123"})
    assert r.status_code == 422 and r.json()["code"] == "USER_ALREADY_EXISTS"


def test_the_service_connects_as_a_login_role_with_narrow_grants(services, pg_url):
    import psycopg
    import pytest

    with services.db.service() as conn:
        who = conn.execute(
            "select current_user as u, rolsuper, rolcreatedb, rolcreaterole from pg_roles"
            " where rolname = current_user"
        ).fetchone()
        assert who["u"] == "soundstage_app"
        assert not (who["rolsuper"] or who["rolcreatedb"] or who["rolcreaterole"])
        for ddl in ("create table public.intruder (x int)", "drop table public.jobs"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(ddl)
    # A table a later migration creates (as the schema owner) is usable by the service at once.
    table = f"later_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as owner:
        owner.execute(f"create table public.{table} (id bigserial primary key, note text)")
    try:
        with services.db.service() as conn:
            conn.execute(f"insert into public.{table} (note) values ('ok')")
            assert conn.execute(f"select count(*) as n from public.{table}").fetchone()["n"] == 1
    finally:
        with psycopg.connect(pg_url, autocommit=True) as owner:
            owner.execute(f"drop table public.{table}")
