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

import math

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import resample_poly

from functions.audio_io import Audio
from functions.loudness import integrated_lufs, true_peak_dbtp

OVERSAMPLE = 4


def _needed_gain(samples: np.ndarray, ceiling: float) -> np.ndarray:
    """Per-sample gain that keeps every channel's oversampled peak under ``ceiling``."""
    n = samples.shape[1]
    up = resample_poly(samples, OVERSAMPLE, 1, axis=1)
    peak = np.abs(up[:, : n * OVERSAMPLE]).reshape(samples.shape[0], n, OVERSAMPLE).max(axis=2).max(axis=0)
    peak = np.maximum(peak, np.abs(samples).max(axis=0))
    return np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))


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
    current = integrated_lufs(audio)
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
        current = integrated_lufs(out)
        if abs(current - target_lufs) < 0.1:
            break
    peak = true_peak_dbtp(out)
    if peak > ceiling_dbtp:  # rare: a last static trim keeps the promise on peaks
        trim = 10 ** ((ceiling_dbtp - peak) / 20.0)
        out = Audio((out.samples * trim).astype(np.float32), out.sample_rate)
        current, peak = integrated_lufs(out), true_peak_dbtp(out)
    return out, {
        "loudness_lufs": round(current, 2),
        "true_peak_dbtp": round(peak, 2),
        "gain_db": round(total_gain_db, 2),
        "max_gain_reduction_db": round(reduction_db, 2),
    }
