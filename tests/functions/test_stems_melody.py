"""The ``melody`` stem and six-stem separation: Demucs' htdemucs_6s layout (drums, bass, other,
vocals, guitar, piano) run for real with a tiny random HTDemucs built by demucs' own class,
``melody`` defined per model, what the DSP fallback can give, and the kind through the API."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from functions import stems as stems_mod
from functions.audio_io import load_audio, save_audio
from functions.demucs_engine import DemucsSeparator
from functions.stems import melody_definition, separate_file
from functions.stems_dsp import DspSeparator
from shared.config import reset_settings
from shared.errors import InvalidInput
from tests.cli_subprocess import run_cli
from tests.synth import synth_song

SIX = ["drums", "bass", "other", "vocals", "guitar", "piano"]  # htdemucs_6s' source order
FOUR = ["drums", "bass", "other", "vocals"]


def tiny_htdemucs(sources: list[str]):
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HTDemucs(
            sources=sources, channels=8, depth=4, t_layers=1, t_heads=2,
            t_hidden_scale=1.0, segment=2.0, dconv_depth=1, dconv_comp=4,
        )  # fmt: skip
    return model.eval()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    audio, _ = synth_song(bpm=100, key="G major", duration_s=4.0, vocals=True, seed=5)
    path = tmp_path_factory.mktemp("six") / "song.wav"
    save_audio(path, audio, "wav", bit_depth=24)
    return path


def _read(files: dict, name: str) -> np.ndarray:
    return load_audio(files[name]).samples


def test_melody_is_defined_per_model():
    assert melody_definition(FOUR) == ["other"]
    assert sorted(melody_definition(SIX)) == ["guitar", "other", "piano"]


def test_six_stem_model_gives_guitar_piano_and_their_melody(song, tmp_path):
    sep = DemucsSeparator("htdemucs_6s", model=tiny_htdemucs(SIX), device="cpu")
    wanted = ["guitar", "piano", "other", "melody", "vocals", "drums", "bass"]
    out = separate_file(song, tmp_path / "six", separator=sep, stems=wanted, bit_depth=24)
    assert sorted(out.files) == sorted(wanted)
    melody = _read(out.files, "melody")
    parts = sum(_read(out.files, k) for k in ("guitar", "piano", "other"))
    assert np.max(np.abs(melody - parts)) < 1e-3  # 24-bit rounding of four files
    assert np.sqrt(np.mean(_read(out.files, "guitar") ** 2)) > 1e-4  # a real, non-silent source
    # Asked for the four classic stems, the six-source model folds guitar and piano into
    # "other", so the four still add up to the whole separation.
    four = separate_file(song, tmp_path / "four", separator=sep, bit_depth=24)
    assert sorted(four.files) == sorted(FOUR)
    other4 = _read(four.files, "other")
    assert np.max(np.abs(other4 - melody)) < 1e-3


def test_four_stem_model_melody_is_other_and_guitar_is_refused(song, tmp_path):
    sep = DemucsSeparator("htdemucs", model=tiny_htdemucs(FOUR), device="cpu")
    out = separate_file(song, tmp_path, separator=sep, stems=["melody", "other"], bit_depth=24)
    assert np.array_equal(_read(out.files, "melody"), _read(out.files, "other"))
    with pytest.raises(InvalidInput) as e:
        separate_file(song, tmp_path / "x", separator=sep, stems=["guitar"])
    assert e.value.code == "STEMS_UNAVAILABLE" and "htdemucs_6s" in e.value.message


def test_dsp_says_what_it_can_give(song, tmp_path):
    out = separate_file(song, tmp_path, separator=DspSeparator(), stems=["melody", "other"])
    assert np.array_equal(_read(out.files, "melody"), _read(out.files, "other"))
    with pytest.raises(InvalidInput) as e:
        separate_file(song, tmp_path / "x", separator=DspSeparator(), stems=["piano"])
    assert e.value.code == "STEMS_UNAVAILABLE"
    assert e.value.details["available"] == FOUR + ["melody", "no_vocals"]


@pytest.fixture
def demucs_engine(monkeypatch, services):
    monkeypatch.setenv("SOUNDSTAGE_STEMS_ENGINE", "demucs")
    reset_settings()
    # The API's worker reads its settings when it starts, as a deployed worker does.
    monkeypatch.setattr(services.settings, "stems_engine", "demucs")
    monkeypatch.setitem(
        stems_mod._SEPARATORS,
        ("demucs", "htdemucs_6s"),
        DemucsSeparator("htdemucs_6s", model=tiny_htdemucs(SIX), device="cpu"),
    )
    yield
    monkeypatch.delenv("SOUNDSTAGE_STEMS_ENGINE")
    reset_settings()


def test_six_stems_and_melody_through_the_api(api, song, demucs_engine):
    job = api.run("stems", [song], {"model": "htdemucs_6s", "stems": ["guitar", "piano", "melody"]})
    assert job["status"] == "completed", job
    r = job["result"]
    assert r["engine"] == "demucs" and r["model"] == "htdemucs_6s"
    assert r["melody_is"] == "guitar + piano + other"
    assert sorted(o["name"] for o in job["outputs"]) == ["guitar", "melody", "piano"]
    melody = next(o for o in job["outputs"] if o["name"] == "melody")
    assert melody["meta"]["sum_of"] == ["guitar", "piano", "other"]
    kinds = {k["kind"]: k for k in api.get("/api/v1/kinds").json()}
    details = kinds["stems"]["details"]
    assert details["melody"]["htdemucs"] == "other"
    assert details["melody"]["htdemucs_6s"] == "guitar + piano + other"
    assert "htdemucs_6s" in details["models"]


def test_guitar_without_the_six_stem_model_is_a_422(api, song):
    # This machine has no Demucs weights: the DSP fallback would run, and it has no guitar.
    r = api.create_job("stems", [song], {"model": "htdemucs_6s", "stems": ["guitar"]})
    assert r.status_code == 422 and r.json()["code"] == "STEMS_UNAVAILABLE"
    assert "DSP" in r.json()["message"]
    r = api.create_job("stems", [song], {"stems": ["piano"]})
    assert r.status_code == 422 and r.json()["code"] == "STEMS_UNAVAILABLE"


def test_melody_stem_from_the_cli(song, tmp_path):
    def cli(*args: str):
        return run_cli(tmp_path, "stems", str(song), *args)

    ok = cli("--stems", "melody,other", "-o", str(tmp_path / "out"))
    assert ok.returncode == 0, ok.stderr
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["song-melody.wav", "song-other.wav"]
    bad = cli("--stems", "guitar", "--model", "htdemucs_6s", "-o", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "STEMS_UNAVAILABLE" in bad.stderr + bad.stdout
