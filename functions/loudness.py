"""Loudness measurement per ITU-R BS.1770-4 / EBU R128.

Offers ``loudness_report(audio)`` -> ``{integrated_lufs, lra_lu, true_peak_dbtp, sample_peak_dbfs}``
and the pieces: ``integrated_lufs``, ``loudness_range_lu`` (EBU Tech 3342: 3 s short-term
windows, -70 LUFS absolute and -20 LU relative gates, 10th-95th percentile spread),
``true_peak_dbtp`` (4x oversampled peak, as BS.1770-4 Annex 2 asks) and ``sample_peak_dbfs``.
Integrated loudness is pyloudnorm's meter; the K-weighting for LRA reuses its filters.
"""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm as pyln
from scipy.signal import resample_poly

from functions.audio_io import Audio

SILENCE_LUFS = -70.0


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def integrated_lufs(audio: Audio) -> float:
    """Gated integrated loudness in LUFS (-inf for silence or audio shorter than 0.4 s)."""
    data = audio.samples.T.astype(np.float64)
    if data.shape[0] < int(0.4 * audio.sample_rate) + 1:
        return -math.inf
    return float(pyln.Meter(audio.sample_rate).integrated_loudness(data))


def loudness_range_lu(audio: Audio) -> float:
    """Loudness range (LRA) in LU per EBU Tech 3342; 0.0 when there is too little to measure."""
    sr = audio.sample_rate
    meter = pyln.Meter(sr)
    x = audio.samples.astype(np.float64).copy()
    for stage in meter._filters.values():  # the meter's own K-weighting stages
        x = np.stack([stage.apply_filter(ch) for ch in x])
    win, hop = int(3.0 * sr), int(0.1 * sr)
    if x.shape[1] < win:
        return 0.0
    # Mean square per 3 s window, hop 100 ms, summed over channels (L/R gain 1.0).
    power = np.cumsum(np.concatenate([np.zeros((x.shape[0], 1)), x**2], axis=1), axis=1)
    starts = np.arange(0, x.shape[1] - win + 1, hop)
    ms = ((power[:, starts + win] - power[:, starts]) / win).sum(axis=0)
    st = -0.691 + 10 * np.log10(np.maximum(ms, 1e-20))
    st = st[st > SILENCE_LUFS]
    if st.size < 2:
        return 0.0
    rel = -0.691 + 10 * np.log10(np.mean(10 ** ((st + 0.691) / 10))) - 20.0
    st = st[st > rel]
    if st.size < 2:
        return 0.0
    lo, hi = np.percentile(st, [10, 95])
    return float(hi - lo)


def true_peak_dbtp(audio: Audio, oversample: int = 4) -> float:
    """Inter-sample peak in dBTP, measured on a 4x oversampled signal (polyphase FIR)."""
    up = resample_poly(audio.samples, oversample, 1, axis=1)
    peak = max(float(np.max(np.abs(up))), float(np.max(np.abs(audio.samples))))
    return _db(peak)


def sample_peak_dbfs(audio: Audio) -> float:
    return _db(float(np.max(np.abs(audio.samples))))


def _finite(x: float, floor: float = -120.0) -> float:
    return round(x, 2) if math.isfinite(x) else floor


def loudness_report(audio: Audio) -> dict:
    """All four figures, rounded to 0.01; silence reads as -120 rather than -inf (JSON-safe)."""
    return {
        "integrated_lufs": _finite(integrated_lufs(audio)),
        "lra_lu": round(loudness_range_lu(audio), 2),
        "true_peak_dbtp": _finite(true_peak_dbtp(audio)),
        "sample_peak_dbfs": _finite(sample_peak_dbfs(audio)),
    }
