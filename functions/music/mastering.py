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

import math

import numpy as np

from functions.audio_io import Audio
from functions.loudness import integrated_lufs, oversampled_envelope, reconstructed_peak_dbtp
from functions.running_extrema import window_mean, window_min

OVERSAMPLE = 4
CEILING_MARGIN_DB = 0.05  # the reconstructed peak ends at least this far under the ceiling


def oversampled_peak(samples: np.ndarray) -> np.ndarray:
    """Per-sample peak of ``(channels, n)`` samples over the 4x-interpolated signal, channels
    linked: the project's true-peak meter's interpolator (``functions.true_peak``), each
    sample taking the larger of the points on either side of it."""
    return oversampled_envelope(samples, OVERSAMPLE)


def limiter_gain(
    peak: np.ndarray,
    static_gain: float,
    ceiling: float,
    sr: int,
    lookahead_s: float = 0.002,
    hold_s: float = 0.05,
) -> np.ndarray:
    """Smooth per-sample gain keeping ``static_gain * peak`` under ``ceiling`` (see module doc).

    The gain differs from 1 only within a hold and a few look-aheads of a sample that needs
    less than 1, so the filters run on those stretches alone (exactly as over the whole track:
    around each stretch the need is 1): a limiter that catches a few peaks costs little.
    """
    need = np.minimum(1.0, ceiling / np.maximum(static_gain * peak, 1e-12)).astype(np.float32)
    low = np.flatnonzero(need < 1.0)
    if len(low) == 0:
        return np.ones_like(need)
    w = max(1, int(lookahead_s * sr))
    hold = max(1, int(hold_s * sr))
    reach = hold + 4 * w  # how far a low need moves the gain, with room for the filters' edges
    gaps = np.flatnonzero(np.diff(low) > 2 * reach)
    firsts = np.maximum(0, low[np.concatenate([[0], gaps + 1])] - reach)
    lasts = np.minimum(len(need), low[np.concatenate([gaps, [len(low) - 1]])] + reach + 1)
    g = np.ones_like(need)
    for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
        g[a:b] = _smoothed_gain(need[a:b], w, hold)
    return g


def _smoothed_gain(need: np.ndarray, w: int, hold: int) -> np.ndarray:
    # Running minimum over [t - hold - w, t + w]; two w-wide averages then stay below the need.
    g = window_min(need, hold + w, w)
    ahead, behind = w - 1 - w // 2, w // 2
    g = window_mean(window_mean(g, behind, ahead), behind, ahead)
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
