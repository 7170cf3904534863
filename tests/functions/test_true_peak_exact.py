"""The true-peak meters against a direct computation that shares no code with them: BS.1770-4
Annex 2's 4x oversampler is scipy's ``firwin`` 48-tap low pass applied by ``upfirdn``, every
point of it; the reconstructed peak is an FFT interpolation of a band-limited signal. The
meters skip blocks and screen candidates: on signals where the loudest samples and the
loudest inter-sample peak lie in different blocks, channels and track ends, they must read
what the whole computation reads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from functions.audio_io import Audio
from functions.true_peak import oversampled_envelope, reconstructed_peak_dbtp, true_peak_dbtp


def _upsampled(x: np.ndarray) -> np.ndarray:
    """Every 4x point from a quarter sample after the first sample to a quarter before the end
    of the last (the filter's delay is 23.5 output samples), per channel."""
    from scipy.signal import firwin, upfirdn

    h = firwin(48, 0.25, window="hamming") * 4
    n = x.shape[1]
    return np.stack([upfirdn(h, c.astype(np.float64), up=4)[24 : 4 * n + 24] for c in x])


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    out = {}
    # Noise whose largest sample is the first, the last, or a negative one in the second
    # channel; lengths that are not whole groups (8) or blocks (8192).
    for name, n, where in (("first", 13, 0), ("last", 8195, -1), ("inside", 30001, 20000)):
        x = (0.1 * rng.standard_normal((2, n))).astype(np.float32)
        x[1, where] = -0.9
        out[name] = x
    # Ten blocks of loud noise (samples to 0.8) and, far away, a block holding a tone at a
    # quarter of the rate sampled 45 degrees off its crests: samples at 0.67, waveform at 0.95.
    # Its block is not among the loudest by samples, yet holds the true peak.
    n = 20 * 8192
    x = np.zeros((2, n), np.float32)
    x[:, : 10 * 8192] = np.clip(0.3 * rng.standard_normal((2, 10 * 8192)), -0.8, 0.8)
    t = np.arange(15 * 8192 + 100, 15 * 8192 + 400)
    x[0, t] = 0.95 * np.sin(np.pi * t / 2 + np.pi / 4)
    out["hidden"] = x
    out["mono"] = out["inside"][1:]
    return out


@pytest.mark.parametrize("name", ["first", "last", "inside", "hidden", "mono"])
def test_the_4x_meter_reads_every_point_of_the_oversampled_signal(name):
    x = _signals()[name]
    up = _upsampled(x)
    expected = max(float(np.abs(up).max()), float(np.abs(x).max()))
    assert 10 ** (true_peak_dbtp(Audio(x, 48000)) / 20) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["first", "last", "inside", "hidden", "mono"])
def test_the_oversampled_envelope_is_the_largest_point_around_each_sample(name):
    x = _signals()[name]
    n = x.shape[1]
    after = np.abs(_upsampled(x)).max(axis=0).reshape(n, 4).max(axis=1)  # points after sample i
    expected = np.abs(x).max(axis=0)
    expected = np.maximum(expected, after)
    expected[1:] = np.maximum(expected[1:], after[:-1])  # and the points before it
    np.testing.assert_allclose(oversampled_envelope(x), expected, atol=1e-6)
    assert reconstructed_peak_dbtp(Audio(x, 48000)) >= true_peak_dbtp(Audio(x, 48000)) - 1e-4


def _band_limited(n: int, seed: int, cutoff: float = 0.9) -> np.ndarray:
    """Stereo noise with nothing above ``cutoff`` of Nyquist, faded in and out over 200
    samples (so it is band-limited to well within 0.01 dB at its ends too)."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal((2, n)), axis=1)
    spec[:, int(cutoff * (n // 2)) :] = 0
    x = np.fft.irfft(spec, n=n, axis=1)
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / 200)
    x = x * 0.5 * (1 - np.cos(np.pi * fade))
    return (0.9 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_reconstructed_peak_is_the_waveforms_within_hundredths_of_a_db(seed):
    x = _band_limited(6000, seed)
    padded = np.pad(x.astype(np.float64), ((0, 0), (2000, 2000)))
    spec = np.fft.rfft(padded, axis=1)
    fine = np.fft.irfft(spec, n=padded.shape[1] * 32, axis=1) * 32  # 32 points per sample
    waveform_db = 20 * math.log10(float(np.abs(fine).max()))
    ours = reconstructed_peak_dbtp(Audio(x, 48000))
    assert ours == pytest.approx(waveform_db, abs=0.02)
    # The 4x meter misses up to a few tenths of a dB between its points; never reads more.
    assert waveform_db - 0.6 <= true_peak_dbtp(Audio(x, 48000)) <= waveform_db + 0.01


def test_a_one_sample_clip_reads_its_sample_and_an_empty_one_nothing():
    # One sample: every interpolated point around it is a fraction of it (the filter's taps are
    # all under 1), so the peak is the sample itself.
    one = Audio(np.array([[0.5], [-0.25]], np.float32), 48000)
    assert true_peak_dbtp(one) == pytest.approx(20 * math.log10(0.5), abs=1e-6)
    assert reconstructed_peak_dbtp(one) == pytest.approx(20 * math.log10(0.5), abs=1e-6)
    empty = Audio(np.zeros((2, 0), np.float32), 48000)
    assert true_peak_dbtp(empty) == -math.inf
    assert reconstructed_peak_dbtp(empty) == -math.inf


@pytest.mark.parametrize("given_screen", [False, True])
def test_the_screen_keeps_a_block_whose_samples_are_3_db_under_but_whose_waveform_is_over(
    given_screen,
):
    # A 1 kHz sine peaking at 0.9, and far from it a tone at a quarter of the rate sampled 45
    # degrees off its crests, faded in and out: samples at 0.707, waveform at 1.0. The screen
    # keeps blocks that could come within 0.7 dB of the loudest sample; the tone's block must
    # survive it, and the meter read its crest (the 4x grid reads about 0.1 dB under it). A
    # limiter that has the 4x envelope hands it over as the screen: same answer.
    n = 6 * 8192
    t = np.arange(n)
    x = np.zeros((2, n), np.float32)
    x[:, :8192] = 0.9 * np.sin(2 * np.pi * 1000 * t[:8192] / 48000)
    tone = slice(4 * 8192 + 100, 4 * 8192 + 2100)
    fade = np.minimum(1.0, np.minimum(np.arange(2000), np.arange(2000)[::-1]) / 500)
    x[1, tone] = np.sin(np.pi * fade / 2) ** 2 * np.sin(np.pi * t[tone] / 2 + np.pi / 4)
    audio = Audio(x, 48000)
    screen = oversampled_envelope(x) if given_screen else None
    assert reconstructed_peak_dbtp(audio, screen=screen) == pytest.approx(0.0, abs=0.02)
    assert -0.25 <= true_peak_dbtp(audio) <= -0.05


def test_the_screen_keeps_a_block_at_the_interpolators_worst_case():
    # Twelve samples of 0.5 whose signs follow the 4x filter's branch taps put one 4x point at
    # 0.5 x 1.84 (the branch's L1 norm, 5.3 dB over the samples: the most a point can rise). A
    # 1 kHz sine at 0.87 elsewhere is the loudest sample: the screen must still keep that
    # block, and the meter read at least the point (scipy's upfirdn finds it).
    from scipy.signal import firwin

    branch = (firwin(48, 0.25, window="hamming") * 4)[1::4]
    n = 5 * 8192
    x = np.zeros((2, n), np.float32)
    x[:, :8192] = 0.87 * np.sin(2 * np.pi * 1000 * np.arange(8192) / 48000)
    m = 3 * 8192 + 4000
    x[0, m - 11 : m + 1] = 0.5 * np.sign(branch[::-1])
    point = float(np.abs(_upsampled(x)).max())
    assert point == pytest.approx(0.5 * np.abs(branch).sum(), rel=1e-4)
    assert reconstructed_peak_dbtp(Audio(x, 48000)) >= 20 * math.log10(point) - 0.01


@pytest.mark.parametrize("offset", [0, 3, 5, 6, 11, 52, 58, 59, 63])
def test_the_4x_meter_finds_the_worst_case_point_wherever_it_falls_in_its_screen(offset):
    # The 4x meter screens the track in pieces of 64 samples and interpolates only those whose
    # samples, with their neighbours', could rise over the loudest sample. The worst-case
    # pattern (a point at 1.84 times its samples) slid across a piece's edges must be read
    # wherever it lies, on either side of the edge, in either channel.
    from scipy.signal import firwin

    branch = (firwin(48, 0.25, window="hamming") * 4)[1::4]
    n = 64 * 40 + 17  # a short last piece
    x = np.zeros((2, n), np.float32)
    # The loudest samples: a 1 kHz burst at 0.87, faded in and out (an abrupt edge would ring
    # over the pattern's point).
    x[:, :512] = 0.87 * np.hanning(512) * np.sin(2 * np.pi * 1000 * np.arange(512) / 48000)
    m = 64 * 20 + offset
    x[offset % 2, m - 11 : m + 1] = 0.5 * np.sign(branch[::-1])
    point = float(np.abs(_upsampled(x)).max())
    assert point == pytest.approx(0.5 * np.abs(branch).sum(), rel=1e-4)
    assert 10 ** (true_peak_dbtp(Audio(x, 48000)) / 20) == pytest.approx(point, rel=1e-5)


@pytest.mark.parametrize("start", [0, 3, -23, -12])
@pytest.mark.parametrize("channel", [0, 1])
def test_both_meters_read_a_peak_at_the_tracks_very_ends_as_anywhere_else(start, channel):
    # The worst-case pattern (see above) in the first or last samples (a negative start counts
    # from the end), where the meters' windows overhang the track (zeros beyond it) and the 4x
    # meter's first and last whole windows begin: the 4x meter reads scipy's point, and the
    # reconstructing meter reads what it reads of the same pattern inside the track, between
    # the 4x point and the ideal (FFT) reconstruction.
    from scipy.signal import firwin

    branch = (firwin(48, 0.25, window="hamming") * 4)[1::4]
    pattern = 0.5 * np.sign(branch[::-1]).astype(np.float32)
    n = 64 * 40 + 21  # neither whole pieces nor whole groups
    burst = 0.8 * np.hanning(512) * np.sin(2 * np.pi * 1000 * np.arange(512) / 48000)

    def track(start: int) -> np.ndarray:
        x = np.zeros((2, n), np.float32)
        x[:, 1500:2012] = burst  # loud samples elsewhere, under the pattern's point
        x[channel, start : start + 12] = pattern
        return x

    at_end = track(start % n)
    inside = track(400)
    point = float(np.abs(_upsampled(at_end)).max())
    assert point == pytest.approx(0.5 * np.abs(branch).sum(), rel=1e-4)
    assert 10 ** (true_peak_dbtp(Audio(at_end, 48000)) / 20) == pytest.approx(point, rel=1e-5)
    ours = reconstructed_peak_dbtp(Audio(at_end, 48000))
    assert ours == pytest.approx(reconstructed_peak_dbtp(Audio(inside, 48000)), abs=1e-4)
    padded = np.pad(at_end.astype(np.float64), ((0, 0), (4000, 4000)))
    ideal = np.fft.irfft(np.fft.rfft(padded, axis=1), n=padded.shape[1] * 32, axis=1) * 32
    assert 20 * math.log10(point) - 0.01 <= ours <= 20 * math.log10(float(np.abs(ideal).max()))
