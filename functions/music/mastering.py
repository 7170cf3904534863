"""Loudness normalisation with a true-peak-safe limiter, for the generation engines' output.

``master_to_lufs(audio, target_lufs=-14.0, ceiling_dbtp=-1.0)`` gains the track to the target
integrated loudness (BS.1770, via ``functions.loudness``) and limits its inter-sample peaks so
the result measures at or below ``ceiling_dbtp`` on a 4x oversampled meter. This is the small
finishing step generated beats need; the ``master`` job (functions/master.py) is the full chain.

The limiter is a look-ahead brick wall: the gain needed at each sample (from the 4x oversampled
peak, both channels linked) is spread backwards over the look-ahead with a running minimum and
smoothed by two moving averages that stay inside that window, so the gain never exceeds what a
sample needs and never jumps (no clicks). Loudness lost to limiting is made up in a second pass.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pyloudnorm as pyln
from scipy.ndimage import correlate1d, minimum_filter1d, uniform_filter1d
from scipy.signal import sosfilt

from functions.audio_io import Audio

OVERSAMPLE = 4
_HALF_TAPS = 6  # 13 taps per phase: BS.1770-4's reference interpolator uses 12


@functools.cache
def _phase_filters() -> list[np.ndarray]:
    """Kaiser-windowed sinc taps for the 3 in-between phases of 4x interpolation."""
    j = np.arange(-_HALF_TAPS, _HALF_TAPS + 1)
    radius, beta = _HALF_TAPS + 1.0, 6.0
    taps = []
    for p in range(1, OVERSAMPLE):
        x = j - p / OVERSAMPLE  # distance from each input sample to the in-between point
        window = np.i0(beta * np.sqrt(np.clip(1.0 - (x / radius) ** 2, 0.0, 1.0))) / np.i0(beta)
        taps.append(np.sinc(x) * window)
    return taps


def oversampled_peak(samples: np.ndarray) -> np.ndarray:
    """Per-sample peak of ``(channels, n)`` samples over the 4x-interpolated signal, channels linked.

    Phase 0 of the interpolation is the samples themselves; the other three phases are short
    FIR interpolators, which is what a true-peak meter does, at a fraction of a full resampler's
    cost.
    """
    peak = np.abs(samples).max(axis=0)
    for taps in _phase_filters():
        between = correlate1d(samples, taps, axis=1, mode="constant")
        peak = np.maximum(peak, np.abs(between).max(axis=0))
    return peak


def true_peak_dbtp_fast(audio: Audio) -> float:
    peak = float(oversampled_peak(audio.samples).max())
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


@functools.cache
def _k_weighting_sos(sr: int) -> np.ndarray:
    # pyloudnorm's own K-weighting stages (shelf + high-pass), as second-order sections.
    meter = pyln.Meter(sr)
    return np.array([np.concatenate([st.b, st.a]) for st in meter._filters.values()])


def integrated_lufs_fast(audio: Audio) -> float:
    """BS.1770-4 gated loudness, vectorised (same blocks and gates as pyloudnorm's meter)."""
    sr = audio.sample_rate
    x = sosfilt(_k_weighting_sos(sr), audio.samples.astype(np.float64), axis=1)
    n = x.shape[1]
    block = 0.4
    num_blocks = int(np.round((n / sr - block) / (block * 0.25))) + 1
    if n < int(block * sr) or num_blocks < 1:
        return -math.inf
    j = np.arange(num_blocks)
    lo = (block * (j * 0.25) * sr).astype(int)
    hi = np.minimum((block * (j * 0.25 + 1) * sr).astype(int), n)
    hop = block * 0.25 * sr
    if hop == int(hop):
        # Blocks are four 100 ms hops: sum each hop once, then add neighbours.
        hop = int(hop)
        need = (num_blocks + 3) * hop  # the last block may run past the end: pad with silence
        sq = x[:, :need] ** 2
        if sq.shape[1] < need:
            sq = np.pad(sq, ((0, 0), (0, need - sq.shape[1])))
        hops = sq.reshape(x.shape[0], -1, hop).sum(axis=(0, 2))
        z = np.convolve(hops, np.ones(4), mode="valid")[:num_blocks] / (block * sr)
    else:
        power = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x**2, axis=1)], axis=1)
        z = ((power[:, hi] - power[:, lo]) / (block * sr)).sum(axis=0)  # channel gains are 1.0
    with np.errstate(divide="ignore"):
        blocks = -0.691 + 10.0 * np.log10(z)
    gated = z[blocks >= -70.0]
    if gated.size == 0:
        return -math.inf
    relative = -0.691 + 10.0 * np.log10(gated.mean()) - 10.0
    gated = z[(blocks > relative) & (blocks > -70.0)]
    return float(-0.691 + 10.0 * np.log10(gated.mean())) if gated.size else -math.inf


def _needed_gain(samples: np.ndarray, ceiling: float) -> np.ndarray:
    """Per-sample gain that keeps every channel's oversampled peak under ``ceiling``."""
    return np.minimum(1.0, ceiling / np.maximum(oversampled_peak(samples), 1e-12))


def limit_true_peak(audio: Audio, ceiling_dbtp: float = -1.0, lookahead_s: float = 0.002, hold_s: float = 0.05) -> tuple[Audio, float]:
    """Brick-wall limit ``audio`` to ``ceiling_dbtp``; returns (audio, deepest gain reduction dB)."""
    sr = audio.sample_rate
    ceiling = 10 ** (ceiling_dbtp / 20.0)
    need = _needed_gain(audio.samples, ceiling)
    if need.min() >= 1.0:
        return audio, 0.0
    w = max(1, int(lookahead_s * sr))
    hold = max(1, int(hold_s * sr))
    # Running minimum over [t - hold - w, t + w]; two w-wide averages then stay below the need.
    size = hold + 2 * w + 1
    origin = (size - 1) // 2 - w  # shifts the window so it reaches w ahead and hold + w behind
    g = minimum_filter1d(need, size=size, origin=origin, mode="nearest")
    g = uniform_filter1d(uniform_filter1d(g, w, mode="nearest"), w, mode="nearest")
    g = np.minimum(g, need)  # guard rounding at window edges
    out = (audio.samples * g[None, :]).astype(np.float32)
    return Audio(out, sr), float(-20.0 * math.log10(max(g.min(), 1e-12)))


def master_to_lufs(audio: Audio, target_lufs: float = -14.0, ceiling_dbtp: float = -1.0, passes: int = 3) -> tuple[Audio, dict]:
    """Gain to ``target_lufs`` and limit to ``ceiling_dbtp``; returns (audio, report).

    The report has ``loudness_lufs``, ``true_peak_dbtp``, ``gain_db`` and
    ``max_gain_reduction_db``. Silent input is returned unchanged.
    """
    current = integrated_lufs_fast(audio)
    if not math.isfinite(current):
        return audio, {"loudness_lufs": None, "true_peak_dbtp": None, "gain_db": 0.0, "max_gain_reduction_db": 0.0}
    total_gain_db, reduction_db = 0.0, 0.0
    out = audio
    margin_db = 0.3  # the limiter aims under the ceiling: the meter's filter rings a little
    for _ in range(passes):
        gain_db = target_lufs - current
        total_gain_db += gain_db
        out = Audio((out.samples * 10 ** (gain_db / 20.0)).astype(np.float32), out.sample_rate)
        out, red = limit_true_peak(out, ceiling_dbtp - margin_db)
        reduction_db = max(reduction_db, red)
        current = integrated_lufs_fast(out)
        if abs(current - target_lufs) < 0.1:
            break
    peak = true_peak_dbtp_fast(out)
    if peak > ceiling_dbtp:  # rare: a last static trim keeps the promise on peaks
        trim = 10 ** ((ceiling_dbtp - peak) / 20.0)
        out = Audio((out.samples * trim).astype(np.float32), out.sample_rate)
        current, peak = integrated_lufs_fast(out), true_peak_dbtp_fast(out)
    return out, {
        "loudness_lufs": round(current, 2),
        "true_peak_dbtp": round(peak, 2),
        "gain_db": round(total_gain_db, 2),
        "max_gain_reduction_db": round(reduction_db, 2),
    }
