"""Retention per job kind, enforced by the sweeper on the real database and storage: uploads of
a failed job go after 7 days, a blend's originals as soon as it succeeded and its outputs after
24 hours, a kind's rule changed by settings; inputs that are not the job's own uploads stay."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from functions.audio_io import Audio, save_audio
from shared.retention import RETENTION, retention_for, sweep
from tests.cli_subprocess import run_cli


def _age(services, job_id: str, days: float) -> None:
    with services.db.service() as conn:
        conn.execute(
            "update jobs set completed_at = now() - make_interval(secs => %s) where id = %s",
            (days * 86400.0, job_id),
        )


def _exists(services, bucket: str, path: str) -> bool:
    return services.storage.file_path(bucket, path).exists()


def _row(services, job_id: str) -> dict:
    return services.jobs.load(job_id)


def _variant(song: Path, folder: Path, n: int) -> Path:
    """The song shortened by ``n`` samples: other bytes (and another size), so the library, which
    stores identical bytes once and keeps a file while any live job uses it, holds no file for
    two of these jobs at once."""
    import soundfile as sf

    data, rate = sf.read(song, dtype="int16")
    out = folder / f"song-{n}.wav"
    sf.write(out, data[: len(data) - n], rate, subtype="PCM_16")
    return out


def test_rules_per_kind_and_their_overrides():
    assert retention_for("blend").outputs_days == 1.0 and RETENTION["*"].failed_uploads_days == 7
    assert retention_for("analyze") == RETENTION["*"]
    changed = retention_for("blend", {"blend": {"outputs_days": 2}, "*": {"uploads_days": 3}})
    assert (changed.outputs_days, changed.uploads_days) == (2, 3)
    assert changed.delete_uploads_when_done  # untouched fields keep the kind's rule


def test_failed_jobs_uploads_go_after_seven_days(api, services, song_wav, tmp_path):
    old = api.run(
        "test_sleep", [_variant(song_wav, tmp_path, 1)], {"seconds": 0.05, "fail_code": "NOPE"}
    )
    young = api.run(
        "test_sleep", [_variant(song_wav, tmp_path, 2)], {"seconds": 0.05, "fail_code": "NOPE"}
    )
    assert old["status"] == young["status"] == "failed"
    _age(services, old["id"], 7.5)
    _age(services, young["id"], 6.0)
    paths = {j["id"]: _row(services, j["id"])["inputs"][0]["path"] for j in (old, young)}
    assert all(_exists(services, "audio-uploads", p) for p in paths.values())
    removed = sweep(services)
    assert removed.get("job_uploads", 0) >= 1
    assert not _exists(services, "audio-uploads", paths[old["id"]])
    assert _exists(services, "audio-uploads", paths[young["id"]])
    assert api.get(f"/api/v1/jobs/{old['id']}").json()["uploads_deleted_at"] is not None
    assert api.get(f"/api/v1/jobs/{young['id']}").json()["uploads_deleted_at"] is None


def test_a_kinds_outputs_follow_its_configured_rule(api, services, song_wav, tmp_path, monkeypatch):
    monkeypatch.setattr(services.settings, "retention", {"test_sleep": {"outputs_days": 1}})
    done = api.run("test_sleep", [_variant(song_wav, tmp_path, 3)], {"seconds": 0.05})
    fresh = api.run("test_sleep", [_variant(song_wav, tmp_path, 4)], {"seconds": 0.05})
    _age(services, done["id"], 1.5)
    note = {j["id"]: _row(services, j["id"])["outputs"][0]["path"] for j in (done, fresh)}
    sweep(services)
    assert not _exists(services, "audio-outputs", note[done["id"]])
    assert _exists(services, "audio-outputs", note[fresh["id"]])
    # A completed job's uploads stay their 14 days.
    upload = _row(services, done["id"])["inputs"][0]["path"]
    assert _exists(services, "audio-uploads", upload)
    view = api.get(f"/api/v1/jobs/{done['id']}").json()
    assert view["outputs_deleted_at"] is not None and view["uploads_deleted_at"] is None


@pytest.fixture(scope="module")
def two_tones(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("blend-ret")
    t = np.arange(int(4.0 * 44100)) / 44100
    out = []
    for i, hz in enumerate((220.0, 330.0)):
        x = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        out.append(save_audio(folder / f"tone{i}.wav", Audio(np.stack([x, x]), 44100), "wav"))
    return out


def test_blend_deletes_its_originals_once_converted_and_its_output_after_a_day(
    api, services, two_tones
):
    job = api.run("blend", two_tones, {"start_s": 0, "end_s": 4, "engine": "spectral"})
    assert job["status"] == "completed", job["error"]
    # The worker removes the originals right after it records the completion: wait for it.
    deadline = time.monotonic() + 30
    while (row := _row(services, job["id"]))["inputs_swept_at"] is None:
        assert time.monotonic() < deadline, "the originals were never marked deleted"
        time.sleep(0.05)
    uploads = [i["path"] for i in row["inputs"]]
    assert uploads and not any(_exists(services, "audio-uploads", p) for p in uploads)
    blend = row["outputs"][0]
    assert _exists(services, blend["bucket"], blend["path"])  # 24 hours, not yet
    _age(services, job["id"], 1.1)
    sweep(services)
    assert not _exists(services, blend["bucket"], blend["path"])


def test_sweep_from_the_cli(tmp_path):
    r = run_cli(tmp_path, "sweep", COLUMNS="200")  # one table row per line
    assert r.returncode == 0, r.stderr
    text = " ".join((r.stdout + r.stderr).replace("│", " ").split())
    assert "blend deleted once converted 7 d 24 h" in text
    assert "every other kind 14 d 7 d 14 d" in text
    assert "{}" in text  # a fresh install has nothing to remove
