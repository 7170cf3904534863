"""Every separated stem of every mashup track comes back beside the aligned ones, named apart,
and a track whose stems an earlier job made is fetched from the stems cache, not separated."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.audio_io import save_audio
from functions.pipelines import mashup as mashup_kind
from shared.config import reset_settings
from tests.synth import synth_song

FOUR = ("vocals", "drums", "bass", "other")


@pytest.fixture(autouse=True)
def dsp_stems(monkeypatch):
    monkeypatch.setenv("SOUNDSTAGE_STEMS_ENGINE", "dsp")
    reset_settings()
    yield
    monkeypatch.delenv("SOUNDSTAGE_STEMS_ENGINE")
    reset_settings()


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("mashup-stems")
    singer, _ = synth_song(bpm=100, key="A minor", duration_s=8.0, vocals=True, seed=21)
    band, _ = synth_song(bpm=110, key="C major", duration_s=8.0, vocals=False, seed=22)
    save_audio(folder / "singer.wav", singer, "wav")
    save_audio(folder / "band.wav", band, "wav")
    return folder / "singer.wav", folder / "band.wav"


def test_every_track_stem_comes_back_and_is_reused_next_time(api, songs, monkeypatch):
    separations = []
    real = mashup_kind.stems_stage
    monkeypatch.setattr(
        mashup_kind, "stems_stage", lambda **kw: separations.append(kw["filename"]) or real(**kw)
    )
    # The band's stems exist already (a stems job at the mashup's format).
    stems_job = api.run("stems", [songs[1]], {"output_format": "wav", "bit_depth": 24})
    assert stems_job["status"] == "completed", stems_job

    job = api.run("mashup", list(songs), {"vibe": "chill"})
    assert job["status"] == "completed", job["error"]
    assert separations == ["singer.wav"]  # only the track without cached stems was separated
    outputs = {o["name"]: o for o in job["outputs"]}
    for track in (0, 1):
        for stem in FOUR:
            out = outputs[f"stems-{track}-{stem}"]
            assert out["size_bytes"] > 1000 and out["meta"]["stem"] == stem
    assert outputs["stems-0-vocals"]["filename"] == "singer-vocals.wav"
    assert any(name.startswith("aligned-") for name in outputs)
    listing = {(s["track"], s["stem"]): s["cached"] for s in job["result"]["separated_stems"]}
    assert listing[(1, "drums")] is True and listing[(0, "drums")] is False
    band_drums = next(o for o in stems_job["outputs"] if o["name"] == "drums")
    assert api.fetch(outputs["stems-1-drums"]["url"]) == api.fetch(band_drums["url"])

    # The mashup remembered the singer's stems: a second mashup separates nothing.
    again = api.run("mashup", list(songs), {"vibe": "dark"})
    assert again["status"] == "completed", again["error"]
    assert separations == ["singer.wav"]
    assert all(s["cached"] for s in again["result"]["separated_stems"])
    stages = {s["name"]: s for s in again["stages"]}
    assert stages["separating_stems"]["engine"] == "cache"
