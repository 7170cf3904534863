"""The analysis path's own numpy pieces against the library functions they stand in for, and
the promise behind a fast cold start: analysing a track imports none of the heavy modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pyloudnorm as pyln
import pytest
import scipy.fft
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.ndimage import grey_opening, maximum_filter1d, minimum_filter1d
from scipy.signal import firwin, resample_poly, sosfilt, upfirdn
from scipy.spatial.distance import squareform

from functions.analysis import (
    SparseMel,
    _chroma_front_end,
    _dct_basis,
    _decimation,
    _front_end,
    mel_filterbank,
)
from functions.audio_io import Audio
from functions.loudness import interpolator, k_weighting_sos
from functions.running_extrema import running_max, running_min
from functions.structure import average_linkage_clusters
from functions.true_peak import oversampled_envelope, true_peak_dbtp

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("rate, n_fft", [(22050, 1024), (44100, 2048), (48000, 2048)])
def test_mel_filterbank_is_librosas(rate, n_fft):
    fmax = min(11000.0, rate / 2)
    ours, edges = mel_filterbank(rate, n_fft, 64, 30.0, fmax)
    theirs = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=64, fmin=30.0, fmax=fmax)
    assert np.allclose(ours, theirs, rtol=0, atol=1e-7)
    assert np.allclose(edges, librosa.filters.mel_frequencies(66, fmin=30.0, fmax=fmax))


@pytest.mark.parametrize(
    "rate, n_fft, n_mels", [(22050, 1024, 64), (44100, 2048, 64), (48000, 4096, 128)]
)
def test_sparse_mel_gives_the_dense_product_with_librosas_filterbank(rate, n_fft, n_mels):
    basis = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, fmin=30.0, fmax=11000.0)
    rng = np.random.default_rng(n_fft)
    # Power spanning 120 dB, as a spectrum does: small bands must not drown in rounding.
    power = (10 ** rng.uniform(-12, 0, (50, n_fft // 2 + 1))).astype(np.float32)
    dense = power.astype(np.float64) @ basis.T.astype(np.float64)
    assert np.allclose(SparseMel(basis)(power), dense, rtol=1e-5, atol=0)


def test_sparse_mel_refuses_a_bank_whose_bins_feed_distant_bands():
    basis = np.zeros((4, 10), dtype=np.float32)
    basis[0, 2:5] = basis[1, 4:7] = 1.0
    basis[3, 3] = 0.5  # bin 3 feeds bands 0 and 3
    with pytest.raises(ValueError):
        SparseMel(basis)


def test_dct_basis_gives_scipys_orthonormal_dct():
    x = np.random.default_rng(0).standard_normal((20, 64)).astype(np.float32)
    expected = scipy.fft.dct(x, type=2, norm="ortho", axis=1)[:, :14]
    assert np.allclose(x @ _dct_basis(64, 14), expected, atol=1e-5)


@pytest.mark.parametrize("size", [1, 3, 5, 17])
@pytest.mark.parametrize("n", [1, 2, 16, 17, 500])
def test_running_extrema_are_scipy_ndimages(size, n):
    x = np.random.default_rng(n * 31 + size).standard_normal((n, 3)).astype(np.float32)
    assert np.array_equal(running_max(x, size), maximum_filter1d(x, size, axis=0))
    assert np.array_equal(running_min(x, size), minimum_filter1d(x, size, axis=0))
    assert np.array_equal(running_max(x.T, size, axis=1), maximum_filter1d(x.T, size, axis=1))
    opened = grey_opening(x, size=(size, 1), mode="nearest")
    assert np.array_equal(running_max(running_min(x, size), size), opened)


def test_average_linkage_clusters_are_scipys():
    rng = np.random.default_rng(0)

    def by_first_appearance(labels):
        order: dict[int, int] = {}
        return [order.setdefault(int(g), len(order)) for g in labels]

    for _ in range(300):
        points = rng.random((int(rng.integers(2, 9)), 3)) * rng.choice([0.1, 0.3, 1.0])
        dist = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
        theirs = fcluster(
            linkage(squareform(dist, checks=False), "average"), t=0.2, criterion="distance"
        )
        assert by_first_appearance(average_linkage_clusters(dist, 0.2)) == by_first_appearance(
            theirs
        )


@pytest.mark.parametrize("rate", [22050, 44100, 48000, 96000])
def test_k_weighting_and_true_peak_filters_are_the_references(rate):
    meter = pyln.Meter(rate)
    stages = [meter._filters["high_shelf"], meter._filters["high_pass"]]
    expected = np.array([np.concatenate([f.b, f.a]) for f in stages])
    assert np.allclose(k_weighting_sos(rate), expected, rtol=1e-12, atol=1e-14)
    assert np.allclose(interpolator(4), firwin(48, 0.25) * 4, atol=1e-7)


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_the_pitch_front_end_hears_what_a_resampler_hears(rate):
    # Notes from 65 Hz to 2 kHz: the decimated mix the chroma is made from matches a
    # polyphase resampler's output, and its chroma finds the same pitch classes.
    t = np.arange(int(3.0 * rate)) / rate
    freqs = [65.41, 220.0, 329.63, 987.77, 1975.5]  # C2, A3, E4, B5, B6
    mono = sum(np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32) / 5
    _, _, _, decimated = _front_end(mono, rate)
    reference = resample_poly(mono, 1, _decimation(rate))
    middle = slice(len(reference) // 4, 3 * len(reference) // 4)
    n = min(len(reference), len(decimated))
    error = decimated[:n][middle] - reference[:n][middle]
    assert np.sqrt(np.mean(error**2)) < 0.01 * np.sqrt(np.mean(reference[middle] ** 2)) + 1e-4
    chroma, _, _ = _chroma_front_end(decimated, rate)
    strongest = set(np.argsort(chroma.mean(axis=1))[-4:])
    assert strongest == {0, 9, 4, 11}  # C, A, E, B


def test_analysing_a_track_imports_no_heavy_module():
    code = (
        "import sys, numpy as np\n"
        "from functions.audio_io import Audio\n"
        "from functions.analysis import analyze_audio\n"
        "sr = 44100\n"
        "t = np.arange(8 * sr)\n"
        "x = np.where(t % (sr // 2) < 400, np.sin(2 * np.pi * 220 * t / sr), 0.0)\n"
        "analyze_audio(Audio(np.stack([x, x]).astype(np.float32), sr))\n"
        "heavy = ('librosa', 'numba', 'pyloudnorm', 'scipy.signal', 'scipy.ndimage',\n"
        "         'scipy.stats', 'scipy.cluster', 'scipy.spatial', 'scipy.interpolate')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or\n"
        "             any(m == h or m.startswith(h + '.') for h in heavy)\n"
        "             if m != 'scipy.signal._sosfilt'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_k_weighting_without_the_compiled_loop_falls_back_to_sosfilt(monkeypatch):
    import functions.loudness as loudness

    x = np.random.default_rng(1).standard_normal((2, 5000))
    expected = sosfilt(k_weighting_sos(48000), x, axis=1)
    assert np.allclose(loudness.k_weighted(x, 48000), expected, rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(loudness, "compiled_module", lambda *args: None)
    loudness._sosfilt_kernel.cache_clear()
    try:
        assert np.allclose(loudness.k_weighted(x, 48000), expected, rtol=1e-12, atol=1e-12)
    finally:
        loudness._sosfilt_kernel.cache_clear()


@pytest.mark.parametrize("n", [37, 8192, 3 * 8192 + 1001])
def test_true_peak_blocks_read_what_a_full_4x_upsampling_reads(n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((2, n)) * np.linspace(0.05, 0.3, n)).astype(np.float32)
    x[1, n // 2] = 0.9  # one loud click: most blocks cannot beat it and are skipped
    up = upfirdn(firwin(48, 0.25) * 4, x.astype(np.float64), up=4, axis=1)
    # The points between samples: 23.5 output samples of filter delay, so from index 24 on.
    points = up[:, 24 : 24 + 4 * n]
    expected = max(float(np.abs(points).max()), float(np.abs(x).max()))
    assert true_peak_dbtp(Audio(x, 48000)) == pytest.approx(20 * np.log10(expected), abs=1e-4)
    env = oversampled_envelope(x)
    after = np.abs(points).reshape(2, n, 4).max(axis=(0, 2))
    assert np.allclose(
        env[:-1],
        np.maximum.reduce([np.abs(x).max(axis=0)[:-1], after[:-1], np.r_[0, after[:-2]]]),
        atol=1e-6,
    )
