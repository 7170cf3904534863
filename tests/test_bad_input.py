"""Bad input gets a 4xx with a stable code and a sentence, the server keeps serving, and nothing
is left behind (no job, no stored file)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from functions.audio_io import Audio, save_audio


@pytest.fixture(scope="module")
def files(tmp_path_factory, song_wav):
    d = tmp_path_factory.mktemp("bad")
    out = {"song": song_wav}
    (d / "notes.txt").write_text("these are not the droids you are looking for\n" * 20)
    out["text"] = d / "notes.txt"
    (d / "fake.mp3").write_text("ID? no, just text pretending to be an mp3\n" * 20)
    out["fake_mp3"] = d / "fake.mp3"
    (d / "empty.wav").write_bytes(b"")
    out["empty"] = d / "empty.wav"
    data = song_wav.read_bytes()
    (d / "truncated.wav").write_bytes(data[: len(data) // 3])
    out["truncated"] = d / "truncated.wav"
    save_audio(d / "silent.wav", Audio(np.zeros((2, 44100 * 3), np.float32), 44100))
    out["silent"] = d / "silent.wav"
    # A RIFF/WAVE header claiming an unknown codec, followed by noise.
    fmt = struct.pack("<HHIIHH", 0x7777, 2, 44100, 44100 * 4, 4, 16)
    body = np.random.default_rng(0).bytes(40000)
    riff = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(body)) + b"WAVE"
    riff += (
        b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    )
    (d / "garbage.wav").write_bytes(riff)
    out["garbage"] = d / "garbage.wav"
    out["renamed"] = d / "actually-a-wav.mp3"
    out["renamed"].write_bytes(data)
    return out


def _assert_clean_error(api, services, r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code
    assert (
        isinstance(body["message"], str)
        and body["message"].endswith(".")
        and len(body["message"]) > 10
    )
    assert api.get("/health").status_code == 200
    assert api.get("/api/v1/jobs").json()["total"] == 0
    me = api.get("/api/v1/auth/me").json()
    assert me["storage_used_bytes"] == 0


@pytest.mark.parametrize(
    "name,status,code",
    [
        ("text", 422, "UNSUPPORTED_FORMAT"),
        ("fake_mp3", 422, "UNSUPPORTED_FORMAT"),
        ("empty", 422, "EMPTY_AUDIO"),
        ("truncated", 422, "TRUNCATED_AUDIO"),
        ("silent", 422, "SILENT_AUDIO"),
        ("garbage", 422, "UNDECODABLE_AUDIO"),
    ],
)
def test_bad_files_are_refused(api, services, files, name, status, code):
    _assert_clean_error(api, services, api.create_job("analyze", [files[name]]), status, code)


def test_too_many_files(api, services, files):
    r = api.create_job("analyze", [files["song"], files["song"]])
    _assert_clean_error(api, services, r, 400, "TOO_MANY_FILES")


def test_missing_file(api, services):
    _assert_clean_error(api, services, api.create_job("analyze", []), 400, "MISSING_FILE")


def test_unknown_kind(api, services, files):
    _assert_clean_error(
        api, services, api.create_job("karaoke", [files["song"]]), 400, "UNKNOWN_KIND"
    )


def test_params_not_json(api, services, files):
    with open(files["song"], "rb") as fh:
        r = api.post(
            "/api/v1/jobs",
            data={"kind": "analyze", "params": "{not json"},
            files=[("files", ("song.wav", fh))],
        )
    _assert_clean_error(api, services, r, 400, "BAD_PARAMS_JSON")


def test_unknown_param(api, services, files):
    r = api.create_job("analyze", [files["song"]], {"colour": "blue"})
    _assert_clean_error(api, services, r, 422, "INVALID_PARAMS")


def test_missing_kind_field(api, services):
    r = api.post("/api/v1/jobs", data={})
    _assert_clean_error(api, services, r, 422, "VALIDATION_ERROR")


def test_file_over_the_size_limit(api, services, files, monkeypatch):
    monkeypatch.setattr(services.settings, "max_upload_mb", 0.5)
    _assert_clean_error(
        api, services, api.create_job("analyze", [files["song"]]), 413, "FILE_TOO_LARGE"
    )


def test_track_over_the_duration_limit(api, services, files, monkeypatch):
    monkeypatch.setattr(services.settings, "max_duration_s", 5.0)
    _assert_clean_error(api, services, api.create_job("analyze", [files["song"]]), 422, "TOO_LONG")


def test_format_is_recognised_by_content_not_name(api, files):
    job = api.run("analyze", [files["renamed"]])
    assert job["status"] == "completed", job
    assert job["inputs"][0]["format"] == "wav"


def test_bad_job_ids_are_404(api):
    for jid in ("not-a-uuid", "00000000-0000-4000-8000-000000000000"):
        r = api.get(f"/api/v1/jobs/{jid}")
        assert r.status_code == 404 and r.json()["code"] == "JOB_NOT_FOUND"
