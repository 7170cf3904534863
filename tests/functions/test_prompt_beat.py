"""Prompt-only music: a beat from words alone. The vocabulary that reads genre, mood and
instruments from a prompt, the procedural engine playing what was inferred, MusicGen reading the
prompt as written, and the request BeatFlow's clients send, through the API and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from functions.audio_io import load_audio
from functions.genres import get_genre
from functions.music import musicgen, prompt_words
from shared.errors import InvalidInput
from tests.cli_subprocess import run_cli
from tests.functions.musicgen_standin import StandInMusicGen

LOFI_PROMPT = "warm lo-fi piano with vinyl crackle"


@pytest.mark.parametrize(
    "prompt,bpm,genre,how",
    [
        ("warm lo-fi piano with vinyl crackle", None, "lo-fi", "named"),
        ("a Drum & Bass roller for the night bus", None, "drum and bass", "named"),
        ("hip-hop beat, then some trap hats", None, "hip hop", "named"),  # first mention
        ("dusty tape loop with crackle", None, "lo-fi", "suggested"),
        ("saxophone over a walking bass", None, "jazz", "suggested"),
        ("something for a rainy afternoon", 172, "drum and bass", "tempo"),
        ("something for a rainy afternoon", None, "pop", "default"),
        ("a wrapped present", None, "pop", "default"),  # "rap" only as a whole word
    ],
)
def test_genre_is_inferred_from_the_prompt_words(prompt, bpm, genre, how):
    inf = prompt_words.infer_genre(prompt, bpm)
    assert (inf.value, inf.how) == (genre, how)


@pytest.mark.parametrize(
    "genre,text,mood,how",
    [
        ("lo-fi", "Nostalgic", "nostalgic", "given"),
        ("lo-fi", "sad", "melancholic", "nearest"),
        ("trap", "angry", "aggressive", "nearest"),
        ("pop", "sunny", "happy", "nearest"),
        ("house", "laid-back", "deep", "nearest"),
        ("edm", "dark and sad", "energetic", "nearest"),  # edm has no dark mood: the nearest
        ("jazz", "very smooth", "smooth", "named"),
    ],
)
def test_free_text_moods_map_to_the_nearest_known_mood(genre, text, mood, how):
    inf = prompt_words.nearest_mood(get_genre(genre), text)
    assert (inf.value, inf.how) == (mood, how)
    assert inf.value in get_genre(genre).moods


def test_a_mood_with_no_known_word_is_refused_with_the_genre_moods():
    with pytest.raises(InvalidInput) as e:
        prompt_words.nearest_mood(get_genre("trap"), "xylophonic")
    assert e.value.code == "UNKNOWN_MOOD" and "dark" in e.value.details["moods"]


def test_instruments_named_in_the_prompt_choose_the_voices():
    found = prompt_words.infer_instruments("electric piano chords, a flute and an upright bass")
    assert {p: i.value for p, i in found.items()} == {
        "chords": "epiano",  # not "piano": the longer phrase wins
        "lead": "sine",
        "bass": "upright",
    }
    assert prompt_words.infer_instruments("just drums") == {}


def test_inferred_instruments_reach_the_procedural_engine(run_pipeline):
    base = {"genre": "lo-fi", "key": "Dm", "duration_s": 6, "seed": 4, "format": "wav"}
    plain = run_pipeline("beat", [], base)
    piano = run_pipeline("beat", [], {**base, "prompt": "with a piano"})
    assert piano.result["inferred"]["instruments"]["chords"]["value"] == "piano"
    assert "instruments" not in plain.result["inferred"]
    drums = [load_audio(r.outputs["drums"]).samples for r in (plain, piano)]
    chords = [load_audio(r.outputs["chords"]).samples for r in (plain, piano)]
    # Stems carry each master's own gain, so compare shapes: same seed, same drums; another
    # voice plays the chords.
    assert _correlation(*drums) > 0.99
    assert _correlation(*chords) < 0.8


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_the_beatflow_request_works_through_the_api(api):
    job = api.run("beat", [], {"prompt": LOFI_PROMPT, "bpm": 80, "duration": 30, "seed": 1})
    assert job["status"] == "completed", job
    r = job["result"]
    assert (r["genre"], r["bpm"], r["engine"]) == ("lo-fi", 80.0, "procedural")
    assert r["duration_s"] == 30.0
    inferred = r["inferred"]
    assert inferred["genre"] == {"value": "lo-fi", "how": "named", "words": ["lo fi"]}
    assert inferred["mood"]["how"] == "nearest" and inferred["mood"]["words"] == ["warm"]
    assert r["mood"] == inferred["mood"]["value"] in get_genre("lo-fi").moods
    assert inferred["instruments"]["chords"]["value"] == "piano"
    # A free-text mood with a chosen genre is mapped and reported as such.
    job = api.run("beat", [], {"genre": "trap", "mood": "angry", "duration_s": 5, "seed": 1})
    assert job["result"]["mood"] == "aggressive"
    assert job["result"]["inferred"]["mood"] == {
        "value": "aggressive",
        "how": "nearest",
        "words": ["angry"],
        "requested": "angry",
    }
    # Neither genre nor prompt: a typed 422, no job.
    bad = api.create_job("beat", [], {"bpm": 80})
    assert bad.status_code == 422 and bad.json()["code"] == "GENRE_OR_PROMPT_REQUIRED"
    beat = next(k for k in api.get("/api/v1/kinds").json() if k["kind"] == "beat")
    assert "genre" not in beat["params_schema"].get("required", [])


def test_musicgen_reads_a_prompt_only_request_as_written(run_pipeline, monkeypatch):
    from functions.pipelines import beat_engines

    musicgen.load_engine.cache_clear()
    monkeypatch.setattr(musicgen, "_import_musicgen", lambda: StandInMusicGen)
    monkeypatch.setattr(beat_engines, "musicgen_available", lambda settings: True)
    try:
        run = run_pipeline("beat", [], {"prompt": LOFI_PROMPT, "duration_s": 5, "format": "wav"})
    finally:
        musicgen.load_engine.cache_clear()
    assert run.result["engine"] == "musicgen" and run.result["prompt"] == LOFI_PROMPT
    assert run.result["genre"] is None  # MusicGen followed the words, not a genre template


def test_prompt_only_beat_from_the_cli(tmp_path):
    out = tmp_path / "beat.wav"
    args = ["--duration", "5", "--format", "wav", "-o", str(out), "--json"]
    run = run_cli(tmp_path, "beat", "--prompt", "sad jazz with a flute", *args)
    assert run.returncode == 0, run.stderr + run.stdout
    result = json.loads(run.stdout)
    assert result["genre"] == "jazz" and result["mood"] == "mellow"
    assert result["inferred"]["instruments"]["lead"]["value"] == "sine"
    assert load_audio(out).duration_s == pytest.approx(5.0, abs=0.01)


def test_hum_maps_a_free_text_mood_and_says_so(api, tmp_path):
    from functions.audio_io import save_audio
    from tests.functions.test_hum import hum_audio

    hum = save_audio(tmp_path / "hum.wav", hum_audio(), "wav")
    job = api.run("hum", [hum], {"genre": "lo-fi", "mood": "sad", "format": "wav", "seed": 1})
    assert job["status"] == "completed", job["error"]
    r = job["result"]
    assert r["mood"] == "melancholic"
    assert r["inferred"]["mood"] == {
        "value": "melancholic",
        "how": "nearest",
        "words": ["sad"],
        "requested": "sad",
    }
