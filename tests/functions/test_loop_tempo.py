"""A pulseless loop's tempo from its length: a drone cut to whole bars (functions.loop_tempo).

A drone's onsets show no beat (its partials only beat against each other), so the onset tracker
alone names some tempo its wobble suggests; cut to 8 beats at 97 BPM, the loop's length says 97.
"""

from __future__ import annotations

import numpy as np
import pytest

from functions.analysis import analyze_audio
from functions.audio_io import Audio
from functions.beats import BeatTrack
from functions.loop_tempo import LOOP_MAX_S, NO_PULSE_CONFIDENCE, loop_track

SR = 44100


def _drone(seconds: float) -> Audio:
    """A G drone of detuned partial pairs: slow beating, no attacks."""
    t = np.arange(int(round(seconds * SR))) / SR
    x = sum(
        0.2
        / (k + 1)
        * (np.sin(2 * np.pi * f * t) + np.sin(2 * np.pi * (f + 0.9 * (k + 1)) * t + k))
        for k, f in enumerate((98.0, 196.0, 293.66, 392.0))
    )
    return Audio((0.5 * x / np.abs(x).max())[None, :].astype(np.float32), SR)


@pytest.mark.parametrize("beats,bpm", [(8, 97.0), (16, 97.0), (8, 128.0)])
def test_a_drone_loop_takes_its_tempo_and_grid_from_its_length(beats, bpm):
    result = analyze_audio(_drone(beats * 60.0 / bpm))
    assert result["tempo_bpm"] == pytest.approx(bpm, rel=0.005)
    expected = np.arange(beats) * 60.0 / bpm
    assert np.allclose(result["beats_s"], expected, atol=0.01)
    assert np.allclose(result["downbeats_s"], expected[::4], atol=0.01)
    assert result["time_signature"] == "4/4"
    # The length gives the tempo; the onsets still show no pulse, and the confidence says so.
    assert result["beat_confidence"] < NO_PULSE_CONFIDENCE
    beat = result["tempo_candidates"][0]
    assert beat["relation"] == "beat" and beat["bpm"] == pytest.approx(bpm, rel=0.005)
    assert beat["confidence"] > 0.5


def _track(confidence: float) -> BeatTrack:
    return BeatTrack(110.0, np.arange(0.0, 4.9, 60.0 / 110.0), confidence, 60.0 / 110.0)


FRAME_RATE_HZ = 43.0


def _steady_power(seconds: float) -> np.ndarray:
    """Mel power ``(frames, bands)`` of a sound that holds its level throughout."""
    return np.ones((int(seconds * FRAME_RATE_HZ), 64))


def test_a_pulseless_loop_holds_whole_bars_at_the_likeliest_tempo():
    duration_s = 8 * 60.0 / 97.0  # 8 beats at 97, or 4 at 48.5 (too slow) or 16 at 194
    loop = loop_track(_track(0.01), duration_s, _steady_power(duration_s), FRAME_RATE_HZ)
    assert loop is not None
    assert loop.tempo_bpm == pytest.approx(97.0)
    assert len(loop.beats_s) == 8 and loop.beats_s[0] == 0.0
    assert [round(lv.bpm, 1) for lv in loop.levels] == [97.0, 194.0]
    assert loop.levels[0].confidence > loop.levels[1].confidence


def test_only_short_pulseless_recordings_that_sound_to_both_ends_are_loops():
    duration_s = 8 * 60.0 / 97.0
    power = _steady_power(duration_s)
    faded = power.copy()
    faded[-int(0.5 * FRAME_RATE_HZ) :] = 0.01  # the last half second 20 dB down
    late = power.copy()
    late[: int(0.5 * FRAME_RATE_HZ)] = 0.0  # silence before the sound starts
    assert loop_track(_track(0.01), duration_s, power, FRAME_RATE_HZ) is not None
    assert loop_track(_track(0.01), duration_s, faded, FRAME_RATE_HZ) is None
    assert loop_track(_track(0.01), duration_s, late, FRAME_RATE_HZ) is None
    # A pulse in the onsets is trusted over the length.
    assert loop_track(_track(NO_PULSE_CONFIDENCE), duration_s, power, FRAME_RATE_HZ) is None
    long_s = LOOP_MAX_S + 1.0
    assert loop_track(_track(0.01), long_s, _steady_power(long_s), FRAME_RATE_HZ) is None
