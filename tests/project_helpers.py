"""Helpers for the project tests: short distinct tones as stems, and a commit through the API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from functions.audio_io import Audio, save_audio
from tests.conftest import Api

TONES_HZ = {
    "mix_a": 220.0,
    "mix_b": 247.0,
    "drums_a": 80.0,
    "drums_b": 95.0,
    "drums_c": 110.0,
    "bass_a": 55.0,
    "vox_a": 440.0,
    "vox_b": 494.0,
}


def make_tones(folder: Path, duration_s: float = 2.0, rate: int = 22050) -> dict[str, Path]:
    """One short stereo WAV per name, each a different pitch (so each has its own hash)."""
    t = np.arange(int(duration_s * rate)) / rate
    out = {}
    for name, hz in TONES_HZ.items():
        x = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        out[name] = save_audio(folder / f"{name}.wav", Audio(np.stack([x, x]), rate), "wav")
    return out


def commit(
    api: Api,
    pid: str,
    message: str,
    snapshot: dict | None = None,
    uploads: list[Path] = (),
    metadata: dict | None = None,
    **form: str,
):
    data = {"message": message, **form}
    if snapshot is not None:
        data["snapshot"] = json.dumps(snapshot)
    if metadata is not None:
        data["metadata"] = json.dumps(metadata)
    handles = [open(p, "rb") for p in uploads]
    try:
        return api.post(
            f"/api/v1/projects/{pid}/commits",
            data=data,
            files=[
                ("files", (Path(p).name, h, "audio/wav"))
                for p, h in zip(uploads, handles, strict=True)
            ],
        )
    finally:
        for h in handles:
            h.close()


def upload_file(api: Api, path: Path) -> str:
    with open(path, "rb") as fh:
        r = api.post("/api/v1/files", files={"file": (path.name, fh, "audio/wav")})
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]
