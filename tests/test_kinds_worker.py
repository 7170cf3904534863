"""The kinds that had never completed a job through the real worker, embedded Postgres and
local storage: convert, blend and hum, from the API (the session's worker threads) and from
the CLI (its own embedded stack). Outputs are fetched as a user would and decoded."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from functions.audio_io import Audio, probe, save_audio
from tests.functions.test_hum import BPM, hum_audio

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hum_wav(tmp_path_factory) -> Path:
    return save_audio(tmp_path_factory.mktemp("hum") / "hum.wav", hum_audio(), "wav")


def _output(api, job: dict, name: str) -> bytes:
    out = next(o for o in job["outputs"] if o["name"] == name)
    return api.fetch(out["url"])


def test_convert_completes_through_the_worker(api, song_wav):
    job = api.run("convert", [song_wav], {"output_format": "flac", "channels": 1, "bit_depth": 24})
    assert job["status"] == "completed", job["error"]
    data, sr = sf.read(io.BytesIO(_output(api, job, job["outputs"][0]["name"])))
    source = probe(song_wav)
    assert data.ndim == 1 and sr == source["sample_rate"]
    assert len(data) / sr == pytest.approx(source["duration_s"], abs=0.01)
    assert job["result"]["output"]["format"] == "flac"


def test_blend_completes_through_the_worker(api, tmp_path):
    t = np.arange(int(4.0 * 44100)) / 44100
    files = []
    for i, hz in enumerate((220.0, 330.0)):
        x = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        files.append(save_audio(tmp_path / f"t{i}.wav", Audio(np.stack([x, x]), 44100), "wav"))
    job = api.run("blend", files, {"start_s": 0, "end_s": 4, "engine": "spectral"})
    assert job["status"] == "completed", job["error"]
    blob = _output(api, job, job["outputs"][0]["name"])
    audio, sr = sf.read(io.BytesIO(blob)) if blob[:4] in (b"RIFF", b"fLaC") else (None, None)
    if audio is None:  # an mp3: decode through our reader
        path = tmp_path / "blend.mp3"
        path.write_bytes(blob)
        info = probe(path)
        assert info["duration_s"] == pytest.approx(4.0, abs=0.15)
    else:
        assert len(audio) / sr == pytest.approx(4.0, abs=0.15)
    assert "spectral" in json.dumps(job["result"])


def test_hum_completes_through_the_worker(api, hum_wav):
    params = {"genre": "lo-fi", "bpm": BPM, "allow_any_bpm": True, "format": "wav", "seed": 4}
    job = api.run("hum", [hum_wav], params, timeout_s=300)
    assert job["status"] == "completed", job["error"]
    names = {o["name"] for o in job["outputs"]}
    assert "track" in names
    audio, sr = sf.read(io.BytesIO(_output(api, job, "track")))
    assert len(audio) / sr >= 5.0 and np.abs(audio).max() > 0.05


def test_convert_and_hum_from_the_cli(tmp_path, song_wav, hum_wav):
    env = {
        **os.environ,
        "SOUNDSTAGE_DATA_DIR": str(tmp_path / "data"),
        "SOUNDSTAGE_CONFIG_DIR": str(tmp_path / "config"),
        "SOUNDSTAGE_LOG_LEVEL": "WARNING",
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args, "--quiet"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
        )  # fmt: skip

    r = cli("convert", str(song_wav), "--to", "ogg", "-o", str(tmp_path / "conv"))
    assert r.returncode == 0, r.stderr
    written = list((tmp_path / "conv").glob("*.ogg"))
    assert len(written) == 1
    assert probe(written[0])["duration_s"] == pytest.approx(probe(song_wav)["duration_s"], abs=0.06)
    out = tmp_path / "hum-beat.wav"
    r = cli(
        "hum", str(hum_wav), "--format", "wav", "--seed", "4", "--out", str(out)
    )  # no --bpm: the tempo is fitted to the hum inside the genre's range
    assert r.returncode == 0, r.stderr
    assert probe(out)["duration_s"] >= 5.0
