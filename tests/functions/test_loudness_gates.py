"""The loudness gates, windows and percentiles on signals designed so that each decides the
answer: a quiet part between where a gate is and where it would be if it moved by 1 LU, a
level ramp whose short-term readings are evenly spaced, clips only a block or two long.
References: pyloudnorm's meter, ffmpeg's ebur128 and the values worked out from the signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from functions import loudness
from functions.audio_io import Audio, save_audio
from functions.loudness import (
    _sosfilt_kernel,
    integrated_lufs,
    k_weighted,
    k_weighting_sos,
    loudness_range_lu,
    loudness_report,
    sample_peak_dbfs,
)
from tests.functions.peak_meters import ffmpeg_ebur128, pyloudnorm_lufs
from tests.synth import sine_segments


@pytest.mark.parametrize("fallback", [False, True])
def test_the_k_filter_carries_its_state_from_chunk_to_chunk(fallback, monkeypatch):
    # Tracks are filtered 25 s at a time: two chunks must give what one pass of scipy's sosfilt
    # gives, with scipy's compiled loop or, where a release has moved it, the public function.
    from scipy.signal import sosfilt

    if fallback:
        monkeypatch.setattr(loudness, "compiled_module", lambda *args: None)
    kernel = _sosfilt_kernel.__wrapped__()
    sos = k_weighting_sos(48000)
    x = np.random.default_rng(2).standard_normal((2, 6000))
    state = np.zeros((2, len(sos), 2))
    first, second = x[:, :2500].copy(), x[:, 2500:].copy()
    kernel(sos, first, state)
    kernel(sos, second, state)
    np.testing.assert_allclose(np.hstack([first, second]), sosfilt(sos, x, axis=-1), atol=1e-12)
    # And in one go, for any (channels, n) or mono input.
    _sosfilt_kernel.cache_clear()
    try:
        np.testing.assert_allclose(k_weighted(x, 48000), sosfilt(sos, x, axis=-1), atol=1e-12)
        np.testing.assert_allclose(k_weighted(x[0], 48000)[0], sosfilt(sos, x[0]), atol=1e-12)
    finally:
        _sosfilt_kernel.cache_clear()


@pytest.mark.parametrize(("quiet_db", "expected"), [(-33.3, -20.0), (-32.3, -22.76)])
def test_the_relative_gate_sits_10_lu_under_the_ungated_loudness(quiet_db, expected, tmp_path):
    # 10 s at -20 then 10 s at a quiet level: the blocks average about -22.8 LUFS, so the gate
    # sits at -32.8. Half an LU under it the quiet half is dropped (-20.0); half an LU over
    # it, kept (-22.76). A gate 1 LU lower or higher would turn one case into the other.
    audio = sine_segments([(-20.0, 10.0), (quiet_db, 10.0)])
    ours = integrated_lufs(audio)
    assert ours == pytest.approx(pyloudnorm_lufs(audio), abs=0.05)
    assert ours == pytest.approx(expected, abs=0.15)
    path = save_audio(tmp_path / "gate.wav", audio, bit_depth=24)
    assert ours == pytest.approx(ffmpeg_ebur128(path)["I"], abs=0.15)


@pytest.mark.parametrize(("quiet_db", "kept"), [(-43.5, False), (-42.5, True)])
def test_the_lra_gate_sits_20_lu_under_the_short_term_loudness(quiet_db, kept, tmp_path):
    # 20 s at -20 then 20 s at a quiet level: the short-term readings average about -23 LUFS,
    # so the -20 LU gate sits at -43. Half an LU under it the quiet half is dropped (a range
    # of a few LU from the transition), half an LU over it kept (a range of 22.5 LU).
    audio = sine_segments([(-20.0, 20.0), (quiet_db, 20.0)])
    ours = loudness_range_lu(audio)
    assert (ours > 20.0) if kept else (ours < 12.0), ours
    path = save_audio(tmp_path / "lra.wav", audio, bit_depth=24)
    assert ours == pytest.approx(ffmpeg_ebur128(path)["LRA"], abs=0.3)


@pytest.mark.parametrize(("quiet_db", "expected"), [(-70.5, 3.77), (-69.5, 9.5)])
def test_the_lra_absolute_gate_sits_at_minus_70_lufs_on_a_quiet_recording(
    quiet_db, expected, tmp_path
):
    # Readings under -70 pass the -20 LU relative gate only when the whole recording averages
    # under -50 LUFS, so the signal is quiet throughout: 10 s at -60, then 30 s just under or
    # just over -70. Over it, the quiet part holds the 10th percentile: 9.5 LU. Under it, only
    # the loud part and the transition readings above -70 are left: 3.77 LU (EBU 3342 worked
    # on the ideal readings). A gate moved down or dropped would read 10.5 in the first case.
    audio = sine_segments([(-60.0, 10.0), (quiet_db, 30.0)])
    ours = loudness_range_lu(audio)
    assert ours == pytest.approx(expected, abs=0.05)
    path = save_audio(tmp_path / "quiet.wav", audio, bit_depth=24)
    # ffmpeg bins the readings in 0.1 LU steps before taking percentiles: a few tenths apart.
    assert ours == pytest.approx(ffmpeg_ebur128(path)["LRA"], abs=0.4)


def test_short_term_windows_are_3_s_long():
    # EBU Tech 3341 case 9's signal (1.34 s at -20, 1.66 s at -30 dBFS, repeated): every 3 s
    # window holds one period, so the short-term loudness never moves and the range is 0.
    # Windows 0.1 s longer or shorter would swing by a quarter of an LU.
    audio = sine_segments([(-20.0, 1.34), (-30.0, 1.66)] * 12)
    assert loudness_range_lu(audio) <= 0.05


def test_lra_is_the_10th_to_95th_percentile_of_evenly_spaced_readings():
    # A level rising 0.3 dB per second for 33 s: the short-term readings rise evenly from the
    # first window to the last (30 s apart), so their 10th-95th percentile spread is 85 % of
    # the 9 LU between them: 7.65 LU (a percentile one off reads 0.09 LU away).
    sr = 8000  # the law holds at any rate: a low one keeps the test fast
    t = np.arange(33 * sr) / sr
    x = 10 ** ((-30.0 + 0.3 * t) / 20) * np.sin(2 * np.pi * 1000 * t)
    audio = Audio(np.stack([x, x]).astype(np.float32), sr)
    assert loudness_range_lu(audio) == pytest.approx(0.85 * 0.3 * 30.0, abs=0.03)


def _burst_then_tone(burst_db: float, tone_db: float) -> Audio:
    """3.1 s: 0.1 s of a 1 kHz sine at ``burst_db``, then the sine at ``tone_db``: exactly two
    short-term windows, the first holding the burst and the second not."""
    return sine_segments([(burst_db, 0.1), (tone_db, 3.0)])


def test_two_short_term_readings_are_enough_for_a_range():
    # Energies 0.1 x 10^(-0.3) + 2.9 x 10^(-3) against 3 x 10^(-3): 12.5 LU apart, both
    # within the gates; the range is 85 % of it.
    expected = 0.85 * 10 * math.log10((0.1 * 10**-0.3 + 2.9e-3) / 3e-3)
    assert loudness_range_lu(_burst_then_tone(-3.0, -30.0)) == pytest.approx(expected, abs=0.05)


def test_one_reading_left_by_the_relative_gate_has_no_range():
    # The tone at -50 dBFS: the second window reads 32 LU under the first, under the -20 LU
    # gate; one reading is left, and one reading spans nothing.
    assert loudness_range_lu(_burst_then_tone(-3.0, -50.0)) == 0.0


@pytest.mark.parametrize("seconds", [0.4, 0.45])
def test_a_clip_of_one_block_is_measured(seconds):
    # BS.1770's 400 ms block: a clip of 0.4 s is one block and has a loudness (pyloudnorm's).
    audio = sine_segments([(-20.0, seconds)])
    assert integrated_lufs(audio) == pytest.approx(pyloudnorm_lufs(audio), abs=0.01)


def test_a_clip_shorter_than_a_block_has_no_loudness():
    audio = sine_segments([(-20.0, 0.399)])
    assert integrated_lufs(audio) == -math.inf
    assert loudness_report(audio)["integrated_lufs"] == -120.0


def test_the_sample_peak_is_the_largest_magnitude_of_either_sign():
    x = np.array([[0.1, -0.5, 0.2], [0.0, 0.25, -0.3]], np.float32)
    assert sample_peak_dbfs(Audio(x, 48000)) == pytest.approx(20 * math.log10(0.5))
    assert sample_peak_dbfs(Audio(-x, 48000)) == pytest.approx(20 * math.log10(0.5))
    assert sample_peak_dbfs(Audio(np.zeros((2, 0), np.float32), 48000)) == -math.inf
    assert sample_peak_dbfs(Audio(np.zeros((2, 10), np.float32), 48000)) == -math.inf


def test_the_report_rounds_to_hundredths_and_an_empty_clip_reads_the_floor():
    rng = np.random.default_rng(4)
    report = loudness_report(
        Audio((0.2 * rng.standard_normal((2, 5 * 8000))).astype(np.float32), 8000)
    )
    for value in report.values():
        assert round(value * 100) == pytest.approx(value * 100, abs=1e-6)
    empty = loudness_report(Audio(np.zeros((2, 0), np.float32), 48000))
    assert empty == {
        "integrated_lufs": -120.0,
        "lra_lu": 0.0,
        "true_peak_dbtp": -120.0,
        "sample_peak_dbfs": -120.0,
    }
