"""Loudness normalisation with a true-peak-safe limiter, for the generation engines' output.

``master_to_lufs(audio, target_lufs=-14.0, ceiling_dbtp=-1.0)`` gains the track to the target
integrated loudness (BS.1770, via ``functions.loudness``) and limits its inter-sample peaks so
the result measures at or below ``ceiling_dbtp`` on any common true-peak meter (its
reconstructed waveform's peak, ``functions.loudness.reconstructed_peak_dbtp``, is checked). This is the small
finishing step generated beats need; the ``master`` job (functions/master.py) is the full chain.

The limiter is a look-ahead brick wall: the gain needed at each sample (from the 4x oversampled
peak, both channels linked, with the same interpolator as the project's true-peak meter) is
spread backwards over the look-ahead with a running minimum and smoothed by two moving averages
that stay inside that window, so the gain never exceeds what a sample needs and never jumps (no
clicks). Loudness lost to limiting is made up in a further pass; the peak envelope is measured
once, since a static gain scales it exactly.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.ndimage import correlate1d, minimum_filter1d, uniform_filter1d
from scipy.signal import upfirdn

from functions.audio_io import Audio
from functions.loudness import integrated_lufs, interpolator, reconstructed_peak_dbtp

OVERSAMPLE = 4
CEILING_MARGIN_DB = 0.05  # the reconstructed peak ends at least this far under the ceiling
_TAP_RADIUS = 6  # input samples either side that a 48-tap, 4x interpolator reaches


@functools.cache
def _phase_filters() -> list[np.ndarray]:
    """Per-phase taps of the 4x interpolator ``functions.loudness`` meters true peak with
    (48 taps, BS.1770-4 Annex 2's shape), read off its impulse response so the limiter and
    the meter see the same inter-sample peaks."""
    h = interpolator(OVERSAMPLE).astype(np.float64)
    delay = (len(h) - 1) // 2
    centre = 2 * _TAP_RADIUS
    impulse = np.zeros(2 * centre + 1)
    impulse[centre] = 1.0
    response = np.pad(upfirdn(h, impulse, up=OVERSAMPLE), (0, 4 * OVERSAMPLE * _TAP_RADIUS))
    k = np.arange(-_TAP_RADIUS, _TAP_RADIUS + 1)
    # Output sample 4n + p + delay is sum_k taps_p[k] * x[n - k]; correlate1d reads x[n + j],
    # hence the reversal.
    taps = []
    for p in range(OVERSAMPLE):
        idx = OVERSAMPLE * (centre + k) + p + delay
        taps.append(
            np.where(
                (idx >= 0) & (idx < len(response)),
                response[np.clip(idx, 0, len(response) - 1)],
                0.0,
            )[::-1].copy()
        )
    return taps


def oversampled_peak(samples: np.ndarray) -> np.ndarray:
    """Per-sample peak of ``(channels, n)`` samples over the 4x-interpolated signal, channels linked.

    Each of the four phases is a short FIR (one thread per channel), a fraction of a full
    resampler's cost.
    """

    def channel(x: np.ndarray) -> np.ndarray:
        peak = np.abs(x)
        for taps in _phase_filters():
            np.maximum(peak, np.abs(correlate1d(x, taps, mode="constant")), out=peak)
        return peak

    with ThreadPoolExecutor(max_workers=2) as pool:
        peaks = list(pool.map(channel, samples))
    return np.max(peaks, axis=0)


def limiter_gain(
    peak: np.ndarray,
    static_gain: float,
    ceiling: float,
    sr: int,
    lookahead_s: float = 0.002,
    hold_s: float = 0.05,
) -> np.ndarray:
    """Smooth per-sample gain keeping ``static_gain * peak`` under ``ceiling`` (see module doc)."""
    need = np.minimum(1.0, ceiling / np.maximum(static_gain * peak, 1e-12)).astype(np.float32)
    if need.min() >= 1.0:
        return np.ones_like(need)
    w = max(1, int(lookahead_s * sr))
    hold = max(1, int(hold_s * sr))
    # Running minimum over [t - hold - w, t + w]; two w-wide averages then stay below the need.
    size = hold + 2 * w + 1
    origin = (size - 1) // 2 - w  # shifts the window so it reaches w ahead and hold + w behind
    g = minimum_filter1d(need, size=size, origin=origin, mode="nearest")
    g = uniform_filter1d(uniform_filter1d(g, w, mode="nearest"), w, mode="nearest")
    return np.minimum(g, need)  # guard rounding at window edges


def master_to_lufs(
    audio: Audio, target_lufs: float = -14.0, ceiling_dbtp: float = -1.0, passes: int = 4
) -> tuple[Audio, dict]:
    """Gain to ``target_lufs`` and limit to ``ceiling_dbtp``; returns (audio, report).

    The report has ``loudness_lufs``, ``true_peak_dbtp``, ``gain_db`` (the static gain; the
    limiter's reduction comes on top) and ``max_gain_reduction_db``. The input's peak
    envelope is measured once: a static gain scales it exactly, so each pass that corrects the
    loudness lost to limiting only redoes the cheap parts. Silent input is returned unchanged.
    """
    current = integrated_lufs(audio)
    if not math.isfinite(current):
        return audio, {
            "loudness_lufs": None,
            "true_peak_dbtp": None,
            "gain_db": 0.0,
            "max_gain_reduction_db": 0.0,
        }
    sr = audio.sample_rate
    envelope = oversampled_peak(audio.samples)
    aim_db = ceiling_dbtp - 0.3  # a little under: the gain ripple adds a hair
    allowed = ceiling_dbtp - CEILING_MARGIN_DB
    base_gain_db = target_lufs - current
    for _attempt in range(3):
        ceiling = 10 ** (aim_db / 20.0)
        gain_db = base_gain_db
        for _ in range(passes):
            static = 10 ** (gain_db / 20.0)
            g = limiter_gain(envelope, static, ceiling, sr)
            out = Audio((audio.samples * (static * g)[None, :]).astype(np.float32), sr)
            current = integrated_lufs(out)
            if abs(current - target_lufs) < 0.1:
                break
            gain_db += target_lufs - current
        # The reconstructed waveform has the last word: no common meter reads above it. Its
        # peaks can sit higher than the 4x envelope's (content near Nyquist): aim lower.
        peak = reconstructed_peak_dbtp(out)
        if peak <= allowed:
            break
        aim_db -= peak - allowed + 0.02
        base_gain_db = gain_db
    if peak > allowed:  # rare: a last static trim keeps the promise on peaks
        trim_db = allowed - peak
        out = Audio((out.samples * 10 ** (trim_db / 20.0)).astype(np.float32), sr)
        gain_db += trim_db
        current, peak = integrated_lufs(out), reconstructed_peak_dbtp(out)
    return out, {
        "loudness_lufs": round(current, 2),
        "true_peak_dbtp": round(peak, 2),
        "gain_db": round(gain_db, 4),
        "max_gain_reduction_db": round(float(-20.0 * math.log10(max(float(g.min()), 1e-12))), 2),
    }
