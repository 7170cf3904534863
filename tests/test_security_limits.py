"""Limits that hold under parallel load: job attempts counted atomically (deleting jobs gives
nothing back), an atomic storage quota that counts job outputs (estimated before, real after),
login throttling per account and address, per-address and per-user request limits, and the
submit-time checks that answer before a job exists."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Api


@pytest.fixture
def fresh(client, new_user) -> Api:
    return Api(client, new_user()["headers"])


def _parallel(n: int, fn) -> list:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: fn(), range(n)))


def test_parallel_creates_cannot_pass_the_job_limit(fresh, services, monkeypatch):
    monkeypatch.setattr(services.settings, "rate_limit_per_hour", 3)
    results = _parallel(12, lambda: fresh.create_job("test_sleep", [], {"seconds": 0}))
    codes = [r.status_code for r in results]
    assert 400 not in codes, results[0].text
    assert sorted(codes) == [202] * 3 + [429] * 9, codes
    # Deleting the jobs does not give the attempts back.
    for job in fresh.get("/api/v1/jobs").json()["items"]:
        fresh.wait(job["id"])
        assert fresh.delete(f"/api/v1/jobs/{job['id']}").status_code == 200
    r = fresh.create_job("test_sleep", [], {"seconds": 0})
    assert r.status_code == 429 and r.json()["code"] == "RATE_LIMITED"


def test_parallel_uploads_cannot_overrun_the_quota(
    fresh, services, song_wav, tmp_path, monkeypatch
):
    import queue

    import soundfile as sf

    from shared import quota

    # Eight different files (the library stores identical bytes once, which would hide the race).
    data, rate = sf.read(song_wav, dtype="int16")
    files: queue.Queue = queue.Queue()
    for n in range(1, 9):
        sf.write(tmp_path / f"song-{n}.wav", data[: len(data) - n], rate, subtype="PCM_16")
        files.put(tmp_path / f"song-{n}.wav")
    size = song_wav.stat().st_size
    monkeypatch.setattr(services.settings, "user_quota_bytes", int(size * 2.5))
    monkeypatch.setitem(quota.OUTPUT_WAV_FACTOR, "test_sleep", 0.0)
    results = _parallel(
        8, lambda: fresh.create_job("test_sleep", [files.get_nowait()], {"seconds": 0})
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [202] * 2 + [413] * 6
    assert {r.json()["code"] for r in results if r.status_code == 413} == {"QUOTA_EXCEEDED"}
    used = fresh.get("/api/v1/auth/me").json()["storage_used_bytes"]
    assert 2 * (size - 64) <= used <= services.settings.user_quota_bytes  # two inputs (+ notes)


def test_quota_counts_job_outputs_before_and_after(fresh, services, song_wav, monkeypatch):
    from shared import quota

    size = song_wav.stat().st_size
    monkeypatch.setattr(services.settings, "user_quota_bytes", size + 8)
    # Before: the estimate of the outputs (2x the input's audio as WAV) does not fit.
    r = fresh.create_job("test_sleep", [song_wav], {"seconds": 0})
    assert r.status_code == 413 and r.json()["code"] == "QUOTA_EXCEEDED"
    assert fresh.get("/api/v1/jobs").json()["total"] == 0
    # After: an estimate that fits, outputs that do not: the job fails and its outputs go.
    monkeypatch.setitem(quota.OUTPUT_WAV_FACTOR, "test_sleep", 0.0)
    r = fresh.create_job("test_sleep", [song_wav], {"seconds": 0})
    assert r.status_code == 202, r.text
    job = fresh.wait(r.json()["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "QUOTA_EXCEEDED"
    assert fresh.get("/api/v1/auth/me").json()["storage_used_bytes"] == size


def _clear_login_attempts(services):
    with services.db.service() as conn:
        conn.execute("delete from public.rate_attempts where bucket like 'login-%'")


def test_login_throttle_grows_per_account_and_clears_on_success(
    client, new_user, services, monkeypatch
):
    _clear_login_attempts(services)
    monkeypatch.setattr(services.settings, "login_free_failures", 3)
    monkeypatch.setattr(services.settings, "login_max_delay_s", 2.0)
    u = new_user()
    wrong = {"email": u["email"], "password": "not the password"}
    right = {"email": u["email"], "password": u["password"]}
    for _ in range(3):
        assert client.post("/api/v1/auth/login", json=wrong).status_code == 401
    r = client.post("/api/v1/auth/login", json=right)  # even the right password waits
    assert r.status_code == 429 and r.json()["code"] == "LOGIN_THROTTLED"
    assert 1 <= int(r.headers["Retry-After"]) <= 2
    time.sleep(int(r.headers["Retry-After"]) + 0.1)
    assert client.post("/api/v1/auth/login", json=right).status_code == 200
    # The success cleared the account's count: a typo now is just a 401.
    assert client.post("/api/v1/auth/login", json=wrong).status_code == 401
    _clear_login_attempts(services)


def test_login_throttle_per_address_across_accounts(client, new_user, services, monkeypatch):
    _clear_login_attempts(services)
    monkeypatch.setattr(services.settings, "login_address_failures", 4)
    for i in range(4):
        body = {"email": f"nobody-{i}@example.com", "password": "guess guess"}
        assert client.post("/api/v1/auth/login", json=body).status_code == 401
    u = new_user()
    right = {"email": u["email"], "password": u["password"]}
    r = client.post("/api/v1/auth/login", json=right)
    # The address waits until its oldest failure, seconds old, leaves the 15-minute window.
    assert r.status_code == 429 and 850 <= int(r.headers["Retry-After"]) <= 900
    with services.db.service() as conn:
        conn.execute(
            "update public.rate_attempts set created_at = now() - interval '16 minutes'"
            " where bucket = 'login-address'"
        )
    assert client.post("/api/v1/auth/login", json=right).status_code == 200
    _clear_login_attempts(services)


def test_per_address_and_per_user_request_limits(client, fresh, services, monkeypatch):
    monkeypatch.setattr(services.settings, "address_limit_per_min", 5)
    codes = [client.get("/health").status_code for _ in range(8)]
    assert codes.count(429) >= 3 and codes[0] == 200
    r = client.get("/health")
    assert r.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(r.headers["Retry-After"]) <= 12  # 5 a minute: a token every 12 s
    monkeypatch.setattr(services.settings, "address_limit_per_min", None)
    time.sleep(0.2)  # let the address bucket refill at the generous default

    monkeypatch.setattr(services.settings, "user_limit_per_min", 3)
    codes = [fresh.get("/api/v1/jobs").status_code for _ in range(6)]
    assert codes[:3] == [200] * 3 and 429 in codes
    monkeypatch.setattr(services.settings, "user_limit_per_min", None)

    monkeypatch.setattr(services.settings, "auth_limit_per_min", 2)
    codes = [
        client.post("/api/v1/auth/login", json={"email": "x@y.zz", "password": "p" * 8}).status_code
        for _ in range(4)
    ]
    assert codes[-1] == 429
    _clear_login_attempts(services)
    monkeypatch.setattr(services.settings, "auth_limit_per_min", None)
    time.sleep(0.2)  # the next test signs up from the same address


def test_forwarded_for_is_trusted_only_when_configured(services, monkeypatch):
    from web.hardening import client_address

    scope = {"client": ("10.0.0.1", 5555), "headers": [(b"x-forwarded-for", b"1.2.3.4, 5.6.7.8")]}
    assert client_address(scope, services.settings) == "10.0.0.1"
    monkeypatch.setattr(services.settings, "trust_forwarded_for", True)
    assert client_address(scope, services.settings) == "5.6.7.8"


def test_limits_are_on_in_every_profile_and_generous_locally():
    from shared.config import Settings

    local, prod = Settings(), Settings(profile="production")
    assert prod.create_limit == 10 and prod.auth_limit <= 60
    for name in ("address_limit", "user_limit", "auth_limit", "create_limit"):
        assert 0 < getattr(prod, name) < getattr(local, name)
        assert getattr(local, name) >= 1000


def test_submit_time_checks_answer_before_a_job_exists(
    fresh, services, song_wav, tmp_path, monkeypatch
):
    from functions.audio_io import save_audio
    from tests.synth import synth_song

    monkeypatch.setattr(services.settings, "rate_limit_per_hour", 1)
    r = fresh.create_job("mix", [song_wav, song_wav], {"tracks": [{}, {}, {}]})
    assert r.status_code == 422 and r.json()["code"] == "TRACK_SETTINGS_MISMATCH"
    r = fresh.create_job("mashup", [song_wav, song_wav], {"base_track": 3})
    assert r.status_code == 422 and r.json()["code"] == "BAD_TRACK"
    audio, _ = synth_song(bpm=120, key="A minor", duration_s=6.0)
    short = tmp_path / "short.wav"
    save_audio(short, audio, "wav")
    r = fresh.create_job(
        "video", [short], {"prompt": "a neon city at night, rain on the glass " * 2}
    )
    assert r.status_code == 422 and r.json()["code"] == "TOO_SHORT", r.text
    assert fresh.get("/api/v1/jobs").json()["total"] == 0
    assert fresh.get("/api/v1/auth/me").json()["storage_used_bytes"] == 0
    # None of those counted against the limit of one job per hour.
    assert fresh.create_job("test_sleep", [], {"seconds": 0}).status_code == 202


def test_duration_is_read_from_the_container_before_decoding(
    fresh, services, song_wav, monkeypatch
):
    def no_decode(*a, **k):
        raise AssertionError("decoded a file whose header already says it is too long")

    monkeypatch.setattr(services.audio, "inspect_audio", no_decode)
    monkeypatch.setattr(services.settings, "max_duration_s", 5.0)
    r = fresh.create_job("analyze", [song_wav])
    assert r.status_code == 422 and r.json()["code"] == "TOO_LONG"
