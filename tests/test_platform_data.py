"""The schema on the real embedded Postgres: migrations, row-level security, the storage guard,
local signed URLs, the retention sweeper, and the Supabase Storage requests we send."""

from __future__ import annotations

import io
import json
import time
import uuid

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from shared.storage import LocalStorage, SupabaseStorage


def _user(conn, email=None) -> str:
    row = conn.execute(
        "insert into auth.users (email) values (%s) returning id",
        (email or f"{uuid.uuid4().hex[:8]}@example.com",),
    ).fetchone()
    return str(row["id"])


def test_migrations_are_recorded_and_safe_to_rerun(services):
    assert services.db.migrate() == []
    with services.db.service() as conn:
        versions = [
            r["version"]
            for r in conn.execute(
                "select version from supabase_migrations.schema_migrations order by version"
            )
        ]
    assert "local_000_supabase_shim" in versions
    assert any(v.startswith("2026") for v in versions)


@pytest.mark.parametrize(
    "table", ["jobs", "job_stages", "job_events", "job_costs", "analysis_cache"]
)
def test_row_level_security_hides_other_users_rows(services, table):
    db = services.db
    with db.service() as conn:
        alice, bob = _user(conn), _user(conn)
        for owner in (alice, bob):
            job = conn.execute(
                "insert into jobs (user_id, kind) values (%s, 'analyze') returning id", (owner,)
            ).fetchone()["id"]
            conn.execute(
                "insert into job_stages (job_id, user_id, name, position) values (%s, %s, 'a', 0)",
                (job, owner),
            )
            conn.execute(
                "insert into job_events (job_id, user_id, type) values (%s, %s, 'message')",
                (job, owner),
            )
            conn.execute(
                "insert into job_costs (job_id, user_id, provider, units, cost_usd)"
                " values (%s, %s, 'x', 1, 0.1)",
                (job, owner),
            )
            conn.execute(
                "insert into analysis_cache (user_id, namespace, key, value)"
                " values (%s, 'analysis', 'k', %s)",
                (owner, Jsonb({})),
            )
    with db.as_user(alice) as conn:
        rows = conn.execute(f"select user_id from public.{table}").fetchall()
        assert {str(r["user_id"]) for r in rows} == {alice}
        assert (
            conn.execute(
                f"select count(*) as n from public.{table} where user_id = %s", (bob,)
            ).fetchone()["n"]
            == 0
        )
    # Without claims the authenticated role sees nothing at all.
    with db.service() as conn, conn.transaction():
        conn.execute("set local role authenticated")
        assert conn.execute(f"select count(*) as n from public.{table}").fetchone()["n"] == 0


def test_authenticated_role_cannot_write_jobs(services):
    with services.db.service() as conn:
        alice = _user(conn)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), services.db.as_user(alice) as conn:
        conn.execute("insert into jobs (user_id, kind) values (%s, 'analyze')", (alice,))


def test_storage_rows_cannot_be_deleted_with_sql(services):
    with services.db.service() as conn:
        owner = _user(conn)
    services.storage.put("stems", f"{owner}/j/x.wav", io.BytesIO(b"abc"), owner=owner)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), services.db.service() as conn:
        conn.execute("delete from storage.objects where name = %s", (f"{owner}/j/x.wav",))
    assert services.storage.remove("stems", [f"{owner}/j/x.wav"]) == 1
    assert services.storage.usage(owner) == 0


def test_storage_policy_lets_owners_read_only_their_files(services):
    with services.db.service() as conn:
        alice, bob = _user(conn), _user(conn)
    services.storage.put("audio-outputs", f"{alice}/j/a.wav", io.BytesIO(b"a"), owner=alice)
    services.storage.put("audio-outputs", f"{bob}/j/b.wav", io.BytesIO(b"b"), owner=bob)
    with services.db.as_user(alice) as conn:
        names = [
            r["name"]
            for r in conn.execute(
                "select name from storage.objects where bucket_id = 'audio-outputs'"
            )
        ]
    assert f"{alice}/j/a.wav" in names and f"{bob}/j/b.wav" not in names


def test_upload_streams_and_enforces_the_size_limit(services, tmp_path):
    from shared.errors import FileTooLarge

    with services.db.service() as conn:
        owner = _user(conn)

    class Chunks(io.RawIOBase):
        """A 3 MB stream that is never held whole in memory."""

        def __init__(self):
            self.left = 3 * 1024 * 1024

        def readable(self):
            return True

        def read(self, n=-1):
            n = min(self.left, 1024 * 1024 if n < 0 else n)
            self.left -= n
            return b"\0" * n

    with pytest.raises(FileTooLarge):
        services.storage.put(
            "audio-uploads", f"{owner}/j/big.bin", Chunks(), owner=owner, max_bytes=2 * 1024 * 1024
        )
    assert services.storage.usage(owner) == 0
    assert not services.storage.file_path("audio-uploads", f"{owner}/j/big.bin").exists()
    obj = services.storage.put("audio-uploads", f"{owner}/j/ok.bin", Chunks(), owner=owner)
    assert obj.size_bytes == 3 * 1024 * 1024


def test_a_spooled_upload_is_taken_over_without_a_copy(services, tmp_path):
    """An upload hashed while spooled is hard-linked into storage (no second copy, no second
    hash); a file that others may read, or one past the limit, is copied or refused as before."""
    import hashlib
    import os

    from shared.errors import FileTooLarge

    with services.db.service() as conn:
        owner = _user(conn)
    data = os.urandom(200_000)
    digest = hashlib.sha256(data).hexdigest()
    spooled = tmp_path / "spooled"
    spooled.write_bytes(data)
    spooled.chmod(0o600)
    obj = services.storage.put(
        "audio-uploads", f"{owner}/j/in.wav", spooled, owner=owner, sha256=digest
    )
    stored = services.storage.file_path("audio-uploads", f"{owner}/j/in.wav")
    assert stored.stat().st_ino == spooled.stat().st_ino
    assert (obj.size_bytes, obj.sha256) == (len(data), digest)
    spooled.unlink()  # the spool folder goes away with the request
    assert stored.read_bytes() == data and stored.stat().st_mode & 0o777 == 0o600

    shared = tmp_path / "shared"
    shared.write_bytes(data)
    shared.chmod(0o644)
    services.storage.put("audio-uploads", f"{owner}/j/s.wav", shared, owner=owner, sha256=digest)
    copy = services.storage.file_path("audio-uploads", f"{owner}/j/s.wav")
    assert copy.stat().st_ino != shared.stat().st_ino
    assert copy.stat().st_mode & 0o777 == 0o600 and copy.read_bytes() == data

    big = tmp_path / "big"
    big.write_bytes(data)
    big.chmod(0o600)
    with pytest.raises(FileTooLarge):
        services.storage.put(
            "audio-uploads", f"{owner}/j/b.wav", big, owner=owner, sha256=digest, max_bytes=1000
        )
    assert not services.storage.file_path("audio-uploads", f"{owner}/j/b.wav").exists()


def test_signed_urls_expire(services):
    st: LocalStorage = services.storage
    url = st.signed_url("audio-outputs", "u/j/a.wav", ttl_s=60)
    q = dict(httpx.URL(url).params)
    assert st.verify("audio-outputs", "u/j/a.wav", int(q["expires"]), q["sig"], "")
    assert not st.verify("audio-outputs", "u/j/b.wav", int(q["expires"]), q["sig"], "")
    assert not st.verify("audio-outputs", "u/j/a.wav", int(time.time()) - 1, q["sig"], "")


def test_sweeper_removes_expired_objects_through_the_interface(services):
    from shared.retention import sweep

    with services.db.service() as conn:
        owner = _user(conn)
    old, fresh = f"{owner}/j/old.wav", f"{owner}/j/new.wav"
    services.storage.put("video-clips", old, io.BytesIO(b"old"), owner=owner)
    services.storage.put("video-clips", fresh, io.BytesIO(b"new"), owner=owner)
    with services.db.service() as conn:
        conn.execute(
            "update storage.objects set created_at = now() - interval '8 days' where name = %s",
            (old,),
        )
    removed = sweep(services)
    assert removed.get("video-clips", 0) >= 1
    assert not services.storage.file_path("video-clips", old).exists()
    assert services.storage.file_path("video-clips", fresh).exists()


def _supabase_storage(services, handler) -> SupabaseStorage:
    """Supabase storage whose HTTP requests ``handler`` answers (Supabase's cloud is not
    reachable here); the checks are on the requests it sends."""
    return SupabaseStorage(
        services.db,
        "https://proj.supabase.co",
        "service-key",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def test_supabase_storage_sends_documented_requests(services, tmp_path):
    """Supabase Storage's REST API, as supabase-py calls it: upload, sign, remove."""
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if "/object/sign/" in req.url.path:
            return httpx.Response(200, json={"signedURL": "/object/sign/stems/u/j/a.wav?token=t"})
        if req.method == "DELETE":
            return httpx.Response(200, json=[{"name": "u/j/a.wav"}])
        return httpx.Response(200, json={"Key": "stems/u/j/a.wav", "Id": "1"})

    st = _supabase_storage(services, handler)
    obj = st.put("stems", "u/j/a.wav", io.BytesIO(b"RIFF1234"), owner="u", content_type="audio/wav")
    url = st.signed_url("stems", "u/j/a.wav", 600, download_name="a.wav")
    st.remove("stems", ["u/j/a.wav"])
    up, sign, rm = seen
    assert up.method == "POST" and up.url.path == "/storage/v1/object/stems/u/j/a.wav"
    assert (
        up.headers["authorization"] == "Bearer service-key"
        and up.headers["apikey"] == "service-key"
    )
    assert b"RIFF1234" in up.content and obj.size_bytes == 8
    assert sign.url.path == "/storage/v1/object/sign/stems/u/j/a.wav"
    assert int(json.loads(sign.content)["expiresIn"]) == 600
    assert "download=a.wav" in url and "token=t" in url
    assert rm.method == "DELETE" and rm.url.path == "/storage/v1/object/stems"
    assert json.loads(rm.content) == {"prefixes": ["u/j/a.wav"]}


def test_supabase_storage_streams_an_already_hashed_upload_as_it_is(services, tmp_path):
    """An upload the API has already hashed and size-checked goes out as the file itself, with
    the caller's digest; one over the limit is refused before any request is sent."""
    import hashlib

    from shared.errors import FileTooLarge

    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"Key": "audio-uploads/u/j/in.wav", "Id": "1"})

    st = _supabase_storage(services, handler)
    data = b"RIFF" + bytes(range(256)) * 40
    src = tmp_path / "in.wav"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    obj = st.put("audio-uploads", "u/j/in.wav", src, owner="u", sha256=digest, max_bytes=len(data))
    (up,) = seen
    assert up.method == "POST" and up.url.path == "/storage/v1/object/audio-uploads/u/j/in.wav"
    assert data in up.content and up.headers["x-upsert"] == "true"
    assert (obj.size_bytes, obj.sha256) == (len(data), digest)
    assert obj.content_type.endswith("wav") and obj.content_type.encode() in up.content
    with pytest.raises(FileTooLarge):
        st.put("audio-uploads", "u/j/big.wav", src, owner="u", sha256=digest, max_bytes=100)
    assert len(seen) == 1
