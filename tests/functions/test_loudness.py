"""Loudness figures against references: pyloudnorm's meter, and signals whose true peak and
loudness range are known analytically."""

from __future__ import annotations

import numpy as np
import pytest

from functions.audio_io import Audio
from functions.loudness import (
    integrated_lufs,
    loudness_range_lu,
    loudness_report,
    sample_peak_dbfs,
    true_peak_dbtp,
)
from tests.functions.peak_meters import pyloudnorm_lufs
from tests.synth import synth_song


@pytest.mark.parametrize("rate", [44100, 48000])
def test_integrated_loudness_matches_pyloudnorm(rate):
    audio, _ = synth_song(bpm=100, key="D major", duration_s=20, sr=rate, seed=3)
    ours = integrated_lufs(audio)
    ref = pyloudnorm_lufs(audio)
    assert ours == pytest.approx(ref, abs=0.01)


def test_true_peak_finds_the_inter_sample_peak():
    # A sine at a quarter of the sample rate, sampled 45 degrees off its crests: every sample
    # reads 0.707 of the amplitude, the waveform between them reaches the full amplitude.
    t = np.arange(48000)
    x = (0.9 * np.sin(np.pi * t / 2 + np.pi / 4)).astype(np.float32)[None, :]
    audio = Audio(x, 48000)
    assert sample_peak_dbfs(audio) == pytest.approx(20 * np.log10(0.9 * np.sqrt(0.5)), abs=0.01)
    assert true_peak_dbtp(audio) == pytest.approx(20 * np.log10(0.9), abs=0.1)


def test_loudness_range_of_a_ten_db_step():
    rng = np.random.default_rng(0)
    rate = 48000
    quiet = rng.standard_normal(rate * 30) * 0.03
    loud = rng.standard_normal(rate * 30) * 0.03 * 10 ** (10 / 20)
    audio = Audio(np.concatenate([quiet, loud])[None, :].astype(np.float32), rate)
    assert loudness_range_lu(audio) == pytest.approx(10.0, abs=0.6)


def test_silence_is_reported_as_a_floor_not_infinity():
    report = loudness_report(Audio(np.zeros((2, 48000), np.float32), 48000))
    assert report == {
        "integrated_lufs": -120.0,
        "lra_lu": 0.0,
        "true_peak_dbtp": -120.0,
        "sample_peak_dbfs": -120.0,
    }


@pytest.mark.parametrize(("rate", "seconds"), [(8000, 60.0), (44100, 60.0), (192000, 30.0)])
def test_loudness_filtered_in_two_halves_is_one_pass_to_rounding(rate, seconds):
    # A loud 30 Hz tone (where the K-filter's high-pass remembers longest) under noise, and a
    # 3 dB step at the join: the second half's first hop depends on the first half's state.
    # A 60 s track's halves are filtered in two chunks each (25 s at a time).
    from functions.loudness import SPLIT_MIN_HOPS, _hop_powers

    n = int(seconds * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(rate)
    x = 0.3 * np.sin(2 * np.pi * 30.0 * t) + 0.05 * rng.standard_normal(n)
    x[n // 2 :] *= 1.41
    audio = Audio(np.vstack([x, -x[::-1]]).astype(np.float32), rate)
    one_pass, hop = _hop_powers(audio)
    halves, _ = _hop_powers(audio, split=True)
    assert len(one_pass) >= SPLIT_MIN_HOPS  # long enough to be split
    np.testing.assert_allclose(halves, one_pass, rtol=1e-9)
    assert integrated_lufs(audio, split=True) == pytest.approx(integrated_lufs(audio), abs=1e-9)
    # Too short to be worth two threads: the same one pass.
    short = Audio(audio.samples[:, : hop * (SPLIT_MIN_HOPS - 1)], rate)
    np.testing.assert_array_equal(_hop_powers(short, split=True)[0], _hop_powers(short)[0])
