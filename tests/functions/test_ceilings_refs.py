"""Ceilings and tonal balance measured by meters that share no code with what produced them:
the mix and the beat master under -1 dBTP by ffmpeg's ``ebur128=peak=true`` and a long-filter
oversampler on the written file, and the master's tonal-balance shelves pinned by a spectral
measurement (a bright mix comes out darker, a dark one brighter)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from functions.audio_io import Audio, load_audio, save_audio
from functions.genres import get_genre
from functions.master import master_to_target
from functions.mix import CEILING_DBTP, MixInput, mix_tracks
from functions.music.procedural import master_beat, render_beat
from functions.music.theory import parse_key
from tests.functions.peak_meters import ffmpeg_true_peak_dbtp, resampled_peak_dbtp
from tests.synth import synth_song

SR = 44100


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


def _high_minus_low_db(audio: Audio) -> float:
    """Energy of 4-12 kHz over 50-150 Hz, in dB (Welch PSD)."""
    f, psd = welch(audio.mono(), fs=audio.sample_rate, nperseg=8192)
    high = psd[(f >= 4000) & (f < 12000)].sum()
    low = psd[(f >= 50) & (f < 150)].sum()
    return float(10 * np.log10(high / low))


def _tilted_noise(slope_db_per_oct: float, seconds: float = 6.0) -> Audio:
    """Stereo noise whose spectrum falls (or rises) ``slope_db_per_oct`` per octave."""
    rng = np.random.default_rng(5)
    n = int(seconds * SR)
    spec = np.fft.rfft(rng.standard_normal((2, n)), axis=1)
    f = np.fft.rfftfreq(n, 1 / SR)
    shape = (np.maximum(f, 20.0) / 1000.0) ** (slope_db_per_oct / (20 * np.log10(2)))
    x = np.fft.irfft(spec * shape, n=n, axis=1)
    return Audio((0.1 * x / np.abs(x).max()).astype(np.float32), SR)


@pytest.mark.parametrize(("slope", "direction"), [(0.0, -1), (-9.0, +1)])
def test_tonal_balance_pulls_the_spectrum_toward_the_reference(slope, direction):
    # Flat (white) noise is far brighter than a mix's -4.5 dB/oct: the shelves must darken it;
    # a -9 dB/oct rumble must come out brighter. Measured on the audio, not on the chain report.
    audio = _tilted_noise(slope)
    out = master_to_target(audio, -14.0)
    change_db = _high_minus_low_db(out.audio) - _high_minus_low_db(audio)
    assert direction * change_db > 1.0, (change_db, out.chain)
