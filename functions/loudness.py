"""Loudness measurement per ITU-R BS.1770-4 / EBU R128.

Offers ``loudness_report(audio)`` -> ``{integrated_lufs, lra_lu, true_peak_dbtp, sample_peak_dbfs}``
and the pieces: ``integrated_lufs`` (400 ms blocks, 75 % overlap, -70 LUFS absolute and -10 LU
relative gates), ``loudness_range_lu`` (EBU Tech 3342: 3 s short-term windows every 100 ms,
-70 LUFS absolute and -20 LU relative gates, 10th-95th percentile spread), ``true_peak_dbtp``
(4x oversampled peak, as BS.1770-4 Annex 2 asks) and ``sample_peak_dbfs``.

The K-weighting filter is pyloudnorm's (its meter's two biquads), applied once and shared by the
integrated and short-term measurements; gating is vectorised over 100 ms hops instead of
pyloudnorm's per-block loop, which is what makes a report of a 3-minute track take a fraction of
a second. ``tests/functions/test_loudness.py`` checks the figures against pyloudnorm's meter.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyloudnorm as pyln
from scipy.signal import firwin, sosfilt, upfirdn

from functions.audio_io import Audio

ABSOLUTE_GATE_LUFS = -70.0
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs (BS.1770-4 table 3)


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


@functools.cache
def _k_weighting_sos(rate: int) -> np.ndarray:
    meter = pyln.Meter(rate)
    stages = [meter._filters["high_shelf"], meter._filters["high_pass"]]
    return np.array([np.concatenate([f.b, f.a]) for f in stages], dtype=np.float64)


def _hop_powers(audio: Audio) -> tuple[np.ndarray, int]:
    """Channel-weighted K-filtered energy summed per 100 ms hop, and the hop length.

    Both BS.1770 blocks (400 ms) and EBU short-term windows (3 s) start on 100 ms steps, so
    every window is a sum of whole hops: one pass over the samples serves both measurements.
    """
    sos = _k_weighting_sos(audio.sample_rate)
    hop = int(round(0.1 * audio.sample_rate))
    n = audio.samples.shape[1] // hop * hop

    def channel(ch: int) -> np.ndarray:
        y = sosfilt(sos, audio.samples[ch].astype(np.float64))[:n].reshape(-1, hop)  # pole near 1
        return CHANNEL_GAINS[min(ch, len(CHANNEL_GAINS) - 1)] * np.einsum("ij,ij->i", y, y)

    # sosfilt releases the GIL: channels are filtered side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        total = sum(pool.map(channel, range(audio.channels)), np.zeros(n // hop))
    return total, hop


def _window_loudness(hops: np.ndarray, hop: int, window_hops: int) -> np.ndarray:
    if len(hops) < window_hops:
        return np.empty(0)
    cum = np.concatenate([[0.0], np.cumsum(hops)])
    ms = (cum[window_hops:] - cum[:-window_hops]) / (window_hops * hop)
    return -0.691 + 10.0 * np.log10(np.maximum(ms, 1e-20))


def _gated_mean(levels: np.ndarray, relative_lu: float) -> float:
    levels = levels[levels > ABSOLUTE_GATE_LUFS]
    if levels.size == 0:
        return -math.inf
    rel = -0.691 + 10 * np.log10(np.mean(10 ** ((levels + 0.691) / 10))) + relative_lu
    levels = levels[levels > rel]
    if levels.size == 0:
        return -math.inf
    return float(-0.691 + 10 * np.log10(np.mean(10 ** ((levels + 0.691) / 10))))


def _integrated_from(hops: np.ndarray, hop: int) -> float:
    return _gated_mean(_window_loudness(hops, hop, 4), -10.0)


def _lra_from(hops: np.ndarray, hop: int) -> float:
    st = _window_loudness(hops, hop, 30)
    st = st[st > ABSOLUTE_GATE_LUFS]
    if st.size < 2:
        return 0.0
    rel = -0.691 + 10 * np.log10(np.mean(10 ** ((st + 0.691) / 10))) - 20.0
    st = st[st > rel]
    if st.size < 2:
        return 0.0
    lo, hi = np.percentile(st, [10, 95])
    return float(hi - lo)


def integrated_lufs(audio: Audio) -> float:
    """Gated integrated loudness in LUFS (-inf for silence or audio shorter than 0.4 s)."""
    return _integrated_from(*_hop_powers(audio))


def loudness_range_lu(audio: Audio) -> float:
    """Loudness range (LRA) in LU per EBU Tech 3342; 0.0 when there is too little to measure."""
    return _lra_from(*_hop_powers(audio))


@functools.cache
def interpolator(oversample: int) -> np.ndarray:
    """The 4x interpolation filter of BS.1770-4 Annex 2's shape: 48 taps (12 per phase), low-pass
    at the original Nyquist, gain ``oversample`` so the passband keeps its level."""
    return (firwin(12 * oversample, 1.0 / oversample) * oversample).astype(np.float32)


def _oversampled_blocks(x: np.ndarray, oversample: int, floor: float):
    """Yield ``(start, per-sample peak of the 4x signal)`` for each ``_TP_BLOCK`` block of
    ``x`` that could reach ``floor``, loudest blocks first.

    No interpolated sample exceeds its neighbours' peak times the largest L1 norm of one
    polyphase branch, so blocks under ``floor`` by more than that are skipped: most blocks of
    a dynamic mix are.
    """
    n = x.shape[1]
    h = interpolator(oversample)
    delay = (len(h) - 1) // 2  # the filter's group delay, in output samples
    bound = float(max(np.abs(h[p::oversample]).sum() for p in range(oversample)))
    starts = range(0, n, _TP_BLOCK)
    block_peaks = [float(np.max(np.abs(x[:, s : s + _TP_BLOCK]))) for s in starts]
    for peak_here, start in sorted(zip(block_peaks, starts, strict=True), reverse=True):
        if peak_here * bound <= floor:
            break
        a, b = max(0, start - _TP_PAD), min(n, start + _TP_BLOCK + _TP_PAD)
        up = upfirdn(h, x[:, a:b], up=oversample, axis=1)
        # Keep only this block's own samples; the padding only feeds the filter.
        lo = (start - a) * oversample + delay
        hi = (min(n, start + _TP_BLOCK) - a) * oversample + delay
        env = np.abs(up[:, lo:hi]).max(axis=0)
        yield start, env.reshape(-1, oversample).max(axis=1)


def true_peak_dbtp(audio: Audio, oversample: int = 4) -> float:
    """Inter-sample peak in dBTP on a 4x oversampled signal (polyphase FIR), block by block."""
    x = audio.samples
    n = x.shape[1]
    if n == 0:
        return -math.inf
    h = interpolator(oversample)
    delay = (len(h) - 1) // 2  # the filter's group delay, in output samples
    # No interpolated sample exceeds its neighbours' peak times the largest L1 norm of one
    # polyphase branch, so blocks are visited loudest first and the rest skipped once they
    # cannot beat the peak found so far: exact, and most blocks of a dynamic mix are skipped.
    bound = float(max(np.abs(h[p::oversample]).sum() for p in range(oversample)))
    starts = range(0, n, _TP_BLOCK)
    block_peaks = [float(np.max(np.abs(x[:, s : s + _TP_BLOCK]))) for s in starts]
    peak = max(block_peaks)
    for peak_here, start in sorted(zip(block_peaks, starts, strict=True), reverse=True):
        if peak_here * bound <= peak:
            break
        a, b = max(0, start - _TP_PAD), min(n, start + _TP_BLOCK + _TP_PAD)
        up = upfirdn(h, x[:, a:b].astype(np.float32), up=oversample, axis=1)
        # Keep only this block's own samples; the padding only feeds the filter.
        lo = (start - a) * oversample + delay
        hi = (min(n, start + _TP_BLOCK) - a) * oversample + delay
        peak = max(peak, float(np.max(np.abs(up[:, lo:hi]))))
    return _db(peak)


# The ceiling meter (``reconstructed_peak_dbtp``): a 4x screen finds the sample intervals
# whose oversampled peak comes within SCREEN_DB of the loudest (the 4x grid misses at most
# ~0.55 dB of a peak at 0.45 fs), and only those are interpolated finely: PRECISE_PHASES points
# per sample with a Kaiser-windowed sinc PRECISE_TAPS long, close to the reconstructed waveform.
# It is cut a little under Nyquist, as resamplers are: a signal with strong content right at
# Nyquist (noise hi-hats) has no single "true" waveform there, and a filter passing all of it
# reads a dB over what ffmpeg or scipy would.
SCREEN_DB = 0.7
PRECISE_PHASES = 16
PRECISE_TAPS = 64
PRECISE_CUTOFF = 0.97
_PRECISE_CHUNK = 1 << 15  # candidate intervals interpolated at once (memory bound)
_TP_BLOCK = 1 << 13  # samples per true-peak block (bounded memory for long tracks)
_TP_PAD = 64  # input samples of context either side of a block; the FIR needs ~10


@functools.cache
def _precise_bank() -> np.ndarray:
    """``(PRECISE_TAPS, PRECISE_PHASES)``: column p interpolates at ``i + p / PRECISE_PHASES``
    from samples ``i - PRECISE_TAPS/2 + 1 .. i + PRECISE_TAPS/2``: a Kaiser-windowed sinc cut
    at ``PRECISE_CUTOFF`` of Nyquist (where ffmpeg's resampler cuts), unity gain per phase."""
    half = PRECISE_TAPS // 2
    k = np.arange(-half + 1, half + 1, dtype=np.float64)  # sample offsets from i
    frac = np.arange(PRECISE_PHASES) / PRECISE_PHASES
    t = frac[None, :] - k[:, None]  # distance from each sample to the point
    window = np.interp(t, np.arange(-half, half + 1), np.kaiser(2 * half + 1, 9.0))
    bank = PRECISE_CUTOFF * np.sinc(PRECISE_CUTOFF * t) * window
    return (bank / bank.sum(axis=0, keepdims=True)).astype(np.float32)


def reconstructed_peak_dbtp(audio: Audio, screen: np.ndarray | None = None) -> float:
    """The peak of the reconstructed waveform in dBTP, within a few hundredths of a dB.

    BS.1770's 4x meter (``true_peak_dbtp``), ffmpeg's ``ebur128=peak=true`` and a long-filter
    4x resampler each sample the waveform between samples at their own points and read up to
    ~0.5 dB apart; none reads more than the waveform itself, so a master held under this
    figure passes all of them. Cost: one 4x screen plus a fine look at the few intervals near
    the top. ``screen``: the per-sample 4x peak of ``audio`` when the caller already has it
    (a limiter's detector), which saves the 4x pass.
    """
    x = np.ascontiguousarray(audio.samples, dtype=np.float32)
    n = x.shape[1]
    if n == 0:
        return -math.inf
    if screen is not None:
        env = np.maximum(np.asarray(screen, dtype=np.float32), np.abs(x).max(axis=0))
    else:
        sample_peak = float(np.abs(x).max())
        env = np.abs(x).max(axis=0)
        # Blocks that cannot come within SCREEN_DB of the sample peak cannot hold the top.
        floor = sample_peak * 10 ** (-SCREEN_DB / 20)
        for start, block_env in _oversampled_blocks(x, 4, floor):
            here = env[start : start + len(block_env)]
            np.maximum(here, block_env, out=here)
    top = float(env.max())
    if top <= 0:
        return -math.inf
    near = np.flatnonzero(env >= top * 10 ** (-SCREEN_DB / 20))
    # A peak near sample i lies in [i - 1, i + 1]: interpolate both intervals.
    starts = np.unique(np.clip(np.concatenate([near - 1, near]), 0, n - 1))
    half = PRECISE_TAPS // 2
    bank = _precise_bank()
    offsets = np.arange(-half + 1, half + 1)
    peak = top
    for c in range(0, len(starts), _PRECISE_CHUNK):
        idx = starts[c : c + _PRECISE_CHUNK]
        where = idx[:, None] + offsets[None, :]
        inside = (where >= 0) & (where < n)
        where = np.clip(where, 0, n - 1)
        for ch in range(x.shape[0]):
            peak = max(peak, float(np.abs((x[ch][where] * inside) @ bank).max()))
    return _db(peak)


def sample_peak_dbfs(audio: Audio) -> float:
    return _db(float(np.max(np.abs(audio.samples)))) if audio.samples.size else -math.inf


def _finite(x: float, floor: float = -120.0) -> float:
    return round(x, 2) if math.isfinite(x) else floor


def loudness_report(audio: Audio) -> dict:
    """All four figures, rounded to 0.01; silence reads as -120 rather than -inf (JSON-safe)."""
    # The K-weighted pass and the oversampled peak are independent and release the GIL in
    # scipy's filters: run them side by side.
    with ThreadPoolExecutor(max_workers=1) as pool:
        weighted = pool.submit(_hop_powers, audio)
        peak = true_peak_dbtp(audio)
        hops, hop = weighted.result()
    return {
        "integrated_lufs": _finite(_integrated_from(hops, hop)),
        "lra_lu": round(_lra_from(hops, hop), 2),
        "true_peak_dbtp": _finite(peak),
        "sample_peak_dbfs": _finite(sample_peak_dbfs(audio)),
    }
