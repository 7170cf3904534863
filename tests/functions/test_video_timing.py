"""Where the video may cut: beats merged with onsets (50 ms duplicates removed), the tempo grid
below 0.6 beat confidence, and beat-aligned slots of 4-8 s, at least 3."""

from __future__ import annotations

import numpy as np
import pytest

from functions.analysis import analyze_audio
from functions.video.timing import (
    beat_onset_agreement,
    detect_onsets,
    merge_beats_with_onsets,
    snap_to_beat,
    tempo_grid,
    video_timing,
)
from shared.errors import InvalidAudio
from tests.synth import synth_song


@pytest.fixture(scope="module")
def song():
    audio, truth = synth_song(bpm=120, key="A minor", duration_s=30.0, seed=3)
    return audio, truth, analyze_audio(audio)


def near(t: float, grid: list[float], tol: float) -> bool:
    return min(abs(t - g) for g in grid) <= tol


def test_onsets_within_50_ms_of_a_beat_are_the_same_event():
    merged = merge_beats_with_onsets([1.0, 1.5, 2.0], [0.98, 1.7, 1.72, 2.049, 2.3])
    assert merged == [1.0, 1.5, 1.7, 2.0, 2.3]


def test_an_onset_51_ms_away_is_a_new_cut_candidate():
    assert merge_beats_with_onsets([1.0], [1.051]) == [1.0, 1.051]


def test_accents_are_the_drum_hits(song):
    audio, truth, _ = song
    _, accents = detect_onsets(audio)
    assert len(accents) >= 5
    on_beat = [near(a, truth["beats_s"], 0.05) for a in accents]
    assert np.mean(on_beat) >= 0.8  # kicks and snares, not the off-beat hats


def test_slots_are_beat_aligned_4_to_8_s(song):
    audio, truth, analysis = song
    timing = video_timing(audio, analysis)
    assert timing["method"] == "beats+onsets"
    slots = timing["slots"]
    assert len(slots) >= 3
    assert slots[0]["start_s"] == 0.0 and slots[-1]["end_s"] == pytest.approx(30.0, abs=0.01)
    for s in slots:
        assert 4.0 - 1e-6 <= s["end_s"] - s["start_s"] <= 8.0 + 1e-6
        assert 0.0 <= s["energy"] <= 1.0 and s["section"]
    for s in slots[1:]:
        assert near(s["start_s"], truth["beats_s"], 0.05), s["start_s"]
        assert s["start_s"] in timing["cut_candidates_s"]


def test_beat_confidence_is_agreement_with_the_onset_detector(song):
    audio, truth, analysis = song
    onsets, _ = detect_onsets(audio)
    assert beat_onset_agreement(truth["beats_s"], onsets) > 0.9
    # Beats a quarter-beat late are not confirmed by any onset.
    assert beat_onset_agreement([b + 0.125 for b in truth["beats_s"]], onsets) < 0.3
    assert beat_onset_agreement([1.0, 2.0], []) == 0.0


def test_low_beat_confidence_cuts_every_four_beats_of_the_tempo(song):
    audio, _, analysis = song
    # A tracker gone wrong: its beats sit between the song's onsets.
    off = [b + 0.125 for b in analysis["beats_s"]]
    shaky = dict(analysis, tempo_bpm=100.0, beats_s=[0.25, *off[1:]])
    timing = video_timing(audio, shaky)
    assert timing["beat_confidence"] < 0.6
    assert timing["method"].startswith("tempo grid")
    bar_s = 4 * 60.0 / 100.0
    for s in timing["slots"][1:]:
        k = (s["start_s"] - 0.25) / bar_s
        assert k == pytest.approx(round(k), abs=1e-3), s["start_s"]


def test_tempo_grid_and_snapping():
    beats, bars = tempo_grid(120.0, 0.75, 4.0)
    assert beats == [0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75]
    assert bars == [0.25, 2.25]
    assert snap_to_beat(1.1, beats) == 1.25 and snap_to_beat(0.9, []) == 0.9


def test_a_song_too_short_for_three_clips_is_refused():
    audio, _ = synth_song(bpm=120, duration_s=10.0)
    with pytest.raises(InvalidAudio) as err:
        video_timing(audio, analyze_audio(audio))
    assert err.value.code == "TOO_SHORT"
