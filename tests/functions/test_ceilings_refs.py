"""Ceilings measured by meters that share no code with what produced them: the mix and the beat
master under -1 dBTP by ffmpeg's ``ebur128=peak=true`` and a long-filter oversampler on the
written file. (The master's tonal balance is measured on its output in test_master.py.)"""

from __future__ import annotations

import pytest

from functions.audio_io import Audio, load_audio, save_audio
from functions.genres import get_genre
from functions.mix import CEILING_DBTP, MixInput, mix_tracks
from functions.music.procedural import master_beat, render_beat
from functions.music.theory import parse_key
from tests.functions.peak_meters import ffmpeg_true_peak_dbtp, resampled_peak_dbtp
from tests.synth import synth_song


def _independent_peaks(audio: Audio, path) -> dict[str, float]:
    written = load_audio(save_audio(path, audio, "wav", bit_depth=24))
    return {"ffmpeg": ffmpeg_true_peak_dbtp(path), "resample_poly": resampled_peak_dbtp(written)}


@pytest.mark.parametrize("profile", ["balanced", "bright", "warm"])
def test_hot_mix_holds_its_ceiling_by_independent_meters(profile, tmp_path):
    a, _ = synth_song(bpm=120, key="A minor", duration_s=4.0, seed=1)
    b, _ = synth_song(bpm=120, key="C major", duration_s=4.0, seed=2, vocals=True)
    out = mix_tracks([MixInput(a, gain_db=18.0), MixInput(b, gain_db=12.0, pan=0.7)], profile)
    peaks = _independent_peaks(out.audio, tmp_path / "mix.wav")
    assert all(v <= CEILING_DBTP + 0.05 for v in peaks.values()), peaks
    # It is loud, not quietly under the ceiling: the limiter is what holds it.
    assert max(peaks.values()) > CEILING_DBTP - 1.5, peaks


def test_beat_master_holds_its_ceiling_by_independent_meters(tmp_path):
    beat = render_beat(get_genre("house"), 124, parse_key("F minor"), "groovy", 10.0, seed=3)
    mastered, _ = master_beat(beat)
    peaks = _independent_peaks(mastered.mix, tmp_path / "beat.wav")
    assert all(v <= -1.0 + 0.05 for v in peaks.values()), peaks
