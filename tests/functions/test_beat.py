"""The ``beat`` kind: the procedural engine measured by the analyze job, determinism, loudness,
stems and MIDI, bad input, and the MusicGen boundary (against an audiocraft stand-in)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from functions.audio_io import load_audio, probe
from functions.genres import GENRES, get_genre
from functions.loudness import integrated_lufs, true_peak_dbtp
from functions.music import musicgen
from functions.music.midi import DRUM_CHANNEL, read_midi_notes
from functions.music.procedural import master_beat, render_beat
from functions.music.theory import parse_key
from shared.errors import InvalidInput
from shared.job_progress import ProgressPlan
from tests.functions.musicgen_standin import StandInMusicGen
from tests.kinds import TEST_KINDS

DURATION_S = 12.0
# One case per genre: a tempo across its range and a key in each mode, so the engine is
# exercised beyond its defaults. Seeds are fixed: the engine is deterministic.
KEYS = ["C minor", "F# minor", "Bb major", "E minor", "A major", "Eb minor", "D major",
        "G minor", "C# minor", "F major", "B minor", "Ab major", "G major", "D minor"]  # fmt: skip
CASES = [
    (name, g.bpm_range[0] + (7 * i) % (g.bpm_range[1] - g.bpm_range[0] + 1), KEYS[i], 20 + i)
    for i, (name, g) in enumerate(GENRES.items())
]


HALF_TIME_FELT = {"drum and bass"}


@pytest.mark.parametrize("genre,bpm,key,seed", CASES, ids=[c[0] for c in CASES])
def test_every_genre_plays_at_the_requested_tempo_key_and_length(
    run_pipeline, genre, bpm, key, seed
):
    beat = run_pipeline(
        "beat",
        [],
        {
            "genre": genre,
            "bpm": bpm,
            "key": key,
            "duration_s": DURATION_S,
            "seed": seed,
            "format": "wav",
            "stems": False,
        },
    )
    track = beat.outputs["track"]
    audio = load_audio(track)
    assert audio.samples.shape == (2, int(DURATION_S * 44100))  # exactly the length asked for
    analysis = run_pipeline("analyze", [track]).result
    # Drum and bass is felt in half time as often as not (the snare on 2 and 4 of 174 is a
    # backbeat at 87): the analysis may name either, as long as the other is its candidate.
    levels = {"beat"} | ({"double"} if genre in HALF_TIME_FELT else set())
    reported = [c["bpm"] for c in analysis["tempo_candidates"] if c["relation"] in levels]
    assert any(abs(b - bpm) <= 1.0 for b in reported), (
        f"{genre} at {bpm} BPM measured {analysis['tempo_bpm']}"
    )
    assert parse_key(analysis["key"]).same_key(parse_key(key)), (
        f"{genre} in {key} measured {analysis['key']}"
    )
    assert beat.result["engine"] == "procedural" and beat.result["genre"] == genre


def test_same_seed_same_audio_other_seed_other_audio():
    trap = get_genre("trap")
    a = render_beat(trap, 150, parse_key("Cm"), "dark", 6.0, seed=7)
    b = render_beat(trap, 150, parse_key("Cm"), "dark", 6.0, seed=7)
    c = render_beat(trap, 150, parse_key("Cm"), "dark", 6.0, seed=8)
    assert np.array_equal(a.mix.samples, b.mix.samples)
    assert all(np.array_equal(a.stems[k], b.stems[k]) for k in a.stems)
    assert not np.array_equal(a.mix.samples, c.mix.samples)


def test_mastered_to_streaming_loudness_with_stems_that_add_up():
    beat = render_beat(get_genre("house"), 124, parse_key("F minor"), "groovy", 10.0, seed=3)
    mastered, report = master_beat(beat)
    assert abs(integrated_lufs(mastered.mix) - (-14.0)) <= 0.5
    assert true_peak_dbtp(mastered.mix) <= -1.0 + 0.05
    assert report["loudness_lufs"] == pytest.approx(-14.0, abs=0.2)
    assert set(mastered.stems) == {"drums", "bass", "chords", "lead"}
    # Stems carry the mastering gain: their sum is the master before its limiter.
    summed = np.sum(list(mastered.stems.values()), axis=0)
    gain = 10 ** (report["gain_db"] / 20)
    assert np.allclose(summed, beat.mix.samples * gain, atol=1e-4)


def test_outputs_metadata_stems_and_midi(run_pipeline):
    run = run_pipeline(
        "beat",
        [],
        {"genre": "trap", "bpm": 145, "key": "Cm", "mood": "dark", "duration_s": 8, "seed": 5},
    )
    r = run.result
    assert {k: r[k] for k in ("format", "bitrate_kbps", "sample_rate", "channels", "genre", "bpm", "key")} == {
        "format": "mp3", "bitrate_kbps": 320, "sample_rate": 44100, "channels": 2,
        "genre": "trap", "bpm": 145.0, "key": "C minor",
    }  # fmt: skip
    assert r["duration_s"] == 8.0 and r["seed"] == 5
    assert "MusicGen" in r["engine_note"]  # the fallback says so
    info = probe(run.outputs["track"])
    assert info["format"] == "mp3" and info["sample_rate"] == 44100 and info["channels"] == 2
    assert abs(info["duration_s"] - 8.0) < 0.1  # mp3 frames round the length a little
    assert set(r["stems"]) == {"drums", "bass", "chords", "lead"}
    for stem in r["stems"]:
        assert load_audio(run.outputs[stem]).samples.shape == (2, 8 * 44100)
    notes = read_midi_notes(run.outputs["midi"])
    drums = [n for n in notes if n[3] == DRUM_CHANNEL]
    snare_times = sorted(t for t, _, p, _ in drums if p == 38)
    # Half-time trap: snares a bar (4 beats at 145 BPM) apart, on beat 3.
    bar_s = 240.0 / 145
    assert snare_times and all(
        math.isclose((t % bar_s) / bar_s, 0.5, abs_tol=0.01) for t in snare_times
    )
    assert any(n[3] != DRUM_CHANNEL and n[2] < 48 for n in notes)  # the 808 line
    stage_engines = [(s["name"], s["engine"]) for s in run.stages]
    assert stage_engines[0] == ("generating", "procedural")


@pytest.mark.parametrize(
    "params,code",
    [
        ({"genre": "polka"}, "UNKNOWN_GENRE"),
        ({"genre": "trap", "bpm": 100}, "BPM_OUT_OF_RANGE"),
        ({"genre": "trap", "bpm": 300, "allow_any_bpm": True}, "BPM_OUT_OF_RANGE"),
        ({"genre": "trap", "key": "H minor"}, "BAD_KEY"),
        ({"genre": "trap", "key": "C minorish"}, "BAD_KEY"),
        ({"genre": "trap", "duration_s": 4}, "DURATION_OUT_OF_RANGE"),
        ({"genre": "trap", "duration_s": 121}, "DURATION_OUT_OF_RANGE"),
        ({"genre": "trap", "mood": "xylophonic"}, "UNKNOWN_MOOD"),
        ({"mood": "dark"}, "GENRE_OR_PROMPT_REQUIRED"),
        ({"genre": "trap", "tempo": 140}, "INVALID_PARAMS"),
    ],
)
def test_bad_params_are_typed_errors(run_pipeline, params, code):
    with pytest.raises(InvalidInput) as e:
        run_pipeline("beat", [], params)
    assert e.value.code == code and e.value.status in (400, 422)
    assert e.value.message.endswith(".")


def test_allow_any_bpm_goes_outside_the_genre_range(run_pipeline):
    r = run_pipeline(
        "beat",
        [],
        {
            "genre": "trap",
            "bpm": 100,
            "allow_any_bpm": True,
            "duration_s": 5,
            "format": "wav",
            "stems": False,
        },
    ).result
    assert r["bpm"] == 100.0 and r["duration_s"] == 5.0


@pytest.mark.parametrize(
    "text,name",
    [("Cm", "C minor"), ("F#", "F# major"), ("A minor", "A minor"), ("Bb major", "Bb major"),
     ("ebm", "Eb minor"), ("C# min", "C# minor"), ("Gb", "Gb major"), ("F sharp minor", "F# minor")],
)  # fmt: skip
def test_key_spellings(text, name):
    assert parse_key(text).name == name


# -- MusicGen: our side of the boundary ----------------------------------------------------------


def test_prompt_carries_genre_mood_tempo_key_and_the_users_words():
    prompt = musicgen.build_prompt(
        get_genre("lo-fi"), "chill", 82, parse_key("Dm"), "  rainy   window "
    )
    assert prompt.startswith("chill lo-fi instrumental beat")
    assert "vinyl crackle" in prompt and "rhodes electric piano" in prompt
    assert "82 bpm" in prompt and "in D minor" in prompt and prompt.endswith("rainy window")


@pytest.mark.parametrize(
    "duration_s,expected",
    [
        (12, [(0, 12, 0)]),
        (30, [(0, 30, 0)]),
        (31, [(0, 30, 0), (30, 1, 10)]),
        (75, [(0, 30, 0), (30, 20, 10), (50, 20, 10), (70, 5, 10)]),
    ],
)
def test_long_durations_are_planned_as_continuation_windows(duration_s, expected):
    windows = musicgen.plan_windows(duration_s)
    assert [(w.start_s, w.new_s, w.context_s) for w in windows] == expected
    assert all(w.total_s <= musicgen.MAX_WINDOW_S for w in windows)


def test_engine_generates_long_tracks_by_continuation_with_monotonic_progress():
    engine = musicgen.MusicGenEngine("small", musicgen_cls=StandInMusicGen).load()
    seen: list[float] = []
    audio = engine.generate("dark trap", 55.0, seed=1, progress=seen.append)
    model = engine.model
    assert model.name == "facebook/musicgen-small"
    assert [c["method"] for c in model.calls] == [
        "generate",
        "generate_continuation",
        "generate_continuation",
    ]
    assert [c["duration"] for c in model.calls] == [30.0, 30.0, 15.0]
    assert all(c["prompt_samples"] == 10 * 32000 for c in model.calls[1:])
    assert all(c["descriptions"] == ["dark trap"] for c in model.calls)
    assert audio.sample_rate == 32000 and audio.samples.shape == (1, 55 * 32000)

    # Each window's new audio lands where it belongs (the stand-in's pitch marks the window).
    def pitch(at_s: float) -> float:
        seg = audio.samples[0, int(at_s * 32000) : int((at_s + 0.5) * 32000)]
        spectrum = np.abs(np.fft.rfft(seg))
        return float(np.argmax(spectrum)) * 2.0  # 0.5 s window: 2 Hz bins

    assert (
        pitch(10) == pytest.approx(220, abs=3)
        and pitch(40) == pytest.approx(275, abs=3)
        and pitch(52) == pytest.approx(330, abs=3)
    )
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 10
    # Progress is over the whole track: the first window ends 30 s into 55 s, the second at 50.
    assert seen[0] < 0.1
    assert any(abs(s - 30 / 55) < 1e-9 for s in seen) and any(abs(s - 50 / 55) < 1e-9 for s in seen)


def test_melody_conditioning_passes_the_hum_as_a_batch_of_one(tmp_path):
    from functions.audio_io import Audio

    engine = musicgen.MusicGenEngine("melody", musicgen_cls=StandInMusicGen).load()
    hum = Audio(
        (0.2 * np.sin(2 * np.pi * 262 * np.arange(3 * 16000) / 16000))[None].astype(np.float32),
        16000,
    )
    audio = engine.generate("lo-fi over my hum", 8.0, melody=hum)
    call = engine.model.calls[0]
    assert call["method"] == "generate_with_chroma" and call["melody_sample_rate"] == 16000
    assert tuple(call["melody"].shape) == (1, 1, 3 * 16000)
    assert np.allclose(call["melody"][0, 0].numpy(), hum.samples[0])
    assert audio.samples.shape == (1, 8 * 32000)


def test_beat_job_through_musicgen_maps_progress_and_masters(run_pipeline, monkeypatch):
    from functions.pipelines import beat_engines

    StandInMusicGen.loaded.clear()
    musicgen.load_engine.cache_clear()
    monkeypatch.setattr(musicgen, "_import_musicgen", lambda: StandInMusicGen)
    monkeypatch.setattr(beat_engines, "musicgen_available", lambda settings: True)
    try:
        run = run_pipeline(
            "beat",
            [],
            {
                "genre": "house",
                "bpm": 124,
                "key": "Am",
                "duration_s": 35,
                "model": "medium",
                "format": "wav",
            },
            every_progress=True,
        )
    finally:
        musicgen.load_engine.cache_clear()
    r = run.result
    assert (
        r["engine"] == "musicgen" and r["model"] == "facebook/musicgen-medium" and r["windows"] == 2
    )
    assert "124 bpm" in r["prompt"] and "in A minor" in r["prompt"]
    assert StandInMusicGen.loaded == ["facebook/musicgen-medium"]
    assert r["stems"] == [] and "midi" not in run.outputs  # MusicGen has no stems to give
    audio = load_audio(run.outputs["track"])
    assert audio.samples.shape == (2, 35 * 44100)
    assert abs(integrated_lufs(audio) - (-14.0)) <= 0.5
    # The engine's reports land on the generating stage's share of the job's bar, up to its end.
    percents = [
        d["progress"] for t, d in run.events if t == "progress" and d.get("stage") == "generating"
    ]
    end = round(ProgressPlan(TEST_KINDS.get("beat").stages).end_of("generating"), 1)
    assert len(percents) > 10 and percents == sorted(percents) and percents[-1] == end
    assert run.costs and run.costs[0]["unit"] == "gpu_seconds"


def test_musicgen_requested_where_it_cannot_run_is_refused(run_pipeline):
    with pytest.raises(InvalidInput) as e:
        run_pipeline("beat", [], {"genre": "pop", "engine": "musicgen", "duration_s": 5})
    assert e.value.code == "ENGINE_UNAVAILABLE" and not e.value.retryable


# -- through the API -------------------------------------------------------------------------------


def test_beat_job_through_the_api(api, api_run):
    job = api_run(
        "beat", [], {"genre": "lo-fi", "key": "Dm", "duration_s": 6, "seed": 2, "format": "wav"}
    )
    assert job["status"] == "completed", job
    r = job["result"]
    assert (r["genre"], r["bpm"], r["key"], r["engine"]) == ("lo-fi", 80.0, "D minor", "procedural")
    names = {o["name"] for o in job["outputs"]}
    assert {"track", "drums", "bass", "chords", "lead", "texture", "midi", "notes"} <= names
    track = next(o for o in job["outputs"] if o["name"] == "track")
    assert track["content_type"] == "audio/wav" and track["size_bytes"] > 6 * 44100 * 4
    stages = {s["name"]: s for s in job["stages"]}
    assert list(stages) == ["generating", "mastering", "encoding"]
    assert stages["generating"]["engine"] == "procedural" and all(
        s["status"] == "completed" for s in stages.values()
    )
    # Bad input never becomes a job: a 422 with the stable code.
    bad = api.create_job("beat", [], {"genre": "trap", "bpm": 90})
    assert bad.status_code == 422 and bad.json()["code"] == "BPM_OUT_OF_RANGE"


def test_genres_are_served_by_the_app(api):
    r = api.get("/api/v1/genres")
    assert r.status_code == 200 and len(r.json()) == 14
