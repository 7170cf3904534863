"""Mastering to a loudness target with a true-peak ceiling.

Offers:
- ``PRESETS``: ``streaming`` (-14 LUFS), ``cd`` (-9 LUFS), ``club`` (-8 LUFS), each with its glue
  compression ratio; a custom target uses the nearest preset's ratio.
- ``master_to_target(audio, target_lufs) -> MasteredAudio``: tonal balance (gentle shelves that
  pull the long-term spectral tilt toward a reference), glue compression, gain to target and a
  lookahead brick-wall limiter (pedalboard), iterated until the integrated loudness is within
  ``LOUDNESS_TOLERANCE_LU`` of the target and the 4x-oversampled true peak is at most the ceiling.

Loudness is measured with ``functions.loudness.integrated_lufs`` (pyloudnorm's K-weighting and
gates, vectorised): the control loop measures several times per master, and pyloudnorm's
per-block Python loop would dominate the run time; tests hold the two to 0.05 LU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from functions.audio_io import Audio
from functions.blas_threads import one_blas_thread
from functions.loudness import integrated_lufs, reconstructed_peak_dbtp
from functions.music.mastering import limiter_gain, oversampled_peak
from functions.real_fft import rfft
from shared.errors import InvalidAudio, InvalidInput

if TYPE_CHECKING:  # pedalboard loads on first use, not with the job registry
    import pedalboard as pb

CEILING_DBTP = -1.0
LOUDNESS_TOLERANCE_LU = 0.15  # the loop's aim; the promise to users is 0.5 LU
TARGET_RANGE_LUFS = (-24.0, -6.0)
REFERENCE_TILT_DB_PER_OCT = -4.5  # long-term spectral slope of typical commercial mixes
MAX_SHELF_DB = 3.0
# How far under the true-peak ceiling the limiter is set, by detector. The 4x-oversampled
# detector catches most inter-sample peaks but promises nothing about the reconstructed
# waveform; the sample-peak one (7x cheaper) lets through the ~0.5 dB a limited mix typically
# overshoots by. Either way the result's true peak is measured, and the ceiling tightened if
# it still passes.
LIMITER_MARGIN_DB = {"true_peak": 0.4, "sample_peak": 0.6}
# The last stage (``hold_true_peak``): its rider aims this far under the ceiling on the 4x
# envelope, and the reconstructed peak must end at least CEILING_MARGIN_DB under it, so
# ffmpeg's ebur128, a long-filter 4x resampler and BS.1770's meter all read at or below it.
TRUE_PEAK_SAFETY_DB = 0.35
CEILING_MARGIN_DB = 0.05
CLIP_HEADROOM_DB = 2.0  # the soft clipper's ceiling above the limiter's
CLIP_KNEE_DB = 3.0  # the clipper is linear up to this far under its ceiling
MAX_ITERATIONS = 8
# A gain step is at most this large: where the limiter holds the loudness down (a mix whose
# energy sits under the K-weighting's 38 Hz high pass), plain secant steps run off to infinity.
MAX_GAIN_STEP_DB = 12.0
# Stateful stages (filters, compressor, limiter) run on a track's two halves side by side
# (pedalboard releases the interpreter lock): the second half starts this early, so its
# compressor (150 ms release) and limiter (100 ms at most) have settled by the join, and the
# first runs this far past it, for the limiter's 5 ms look-ahead. Settled means within float
# rounding of one pass over the whole track (tests hold the two together).
PREROLL_S = 2.0
POSTROLL_S = 0.1


@dataclass(frozen=True)
class MasterPreset:
    target_lufs: float
    glue_ratio: float  # louder targets need more glue before the limiter
    limiter_release_ms: float
    # Loud targets from dynamic mixes need their transient tips rounded off before the limiter,
    # which otherwise pumps (and stops gaining loudness) long before the target. Clipping makes
    # inter-sample peaks of several dB, so those presets limit on a 4x-oversampled detector.
    soft_clip: bool


PRESETS: dict[str, MasterPreset] = {
    "streaming": MasterPreset(-14.0, 1.5, 100.0, False),  # Spotify / Apple Music / YouTube
    "cd": MasterPreset(-9.0, 2.5, 60.0, True),  # CD release
    "club": MasterPreset(-8.0, 3.0, 40.0, True),  # DJ / club playback
}


def preset_for_target(target_lufs: float) -> str:
    """The preset whose target is nearest ``target_lufs`` (its compression settings apply)."""
    return min(PRESETS, key=lambda k: abs(PRESETS[k].target_lufs - target_lufs))


def _lufs(samples: np.ndarray, sr: int, split: bool = True) -> float:
    """Integrated loudness, filtered on two threads (``integrated_lufs``'s ``split``) unless
    the caller already keeps the second core busy."""
    return integrated_lufs(Audio(samples, sr), split=split)


@dataclass
class MasteredAudio:
    audio: Audio
    target_lufs: float
    integrated_lufs: float  # as the control loop measured it
    true_peak_dbtp: float  # of the reconstructed waveform (``reconstructed_peak_dbtp``)
    chain: dict[str, Any]


def _welch(x: np.ndarray, sr: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch's power spectral density over back-to-back ``size``-sample Hann segments, each
    with its mean removed: ``scipy.signal.welch(x, sr, nperseg=size, noverlap=0)``, without
    its per-segment Python work."""
    count = len(x) // size
    if count == 0:
        from scipy.signal import welch

        return welch(x, fs=sr, nperseg=size)  # one segment: nothing to overlap or average
    # float32 transforms: twice as fast, and the band levels move by under 1e-5 dB.
    segments = np.asarray(x[: count * size], dtype=np.float32).reshape(count, size)
    segments = segments - segments.mean(axis=1, keepdims=True)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)  # periodic Hann
    spectrum = rfft(segments * window.astype(np.float32), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    psd = power.mean(axis=0, dtype=np.float64) / (sr * float(window @ window))
    psd[1 : -1 if size % 2 == 0 else None] *= 2.0  # one-sided: fold the negative frequencies
    return np.arange(len(psd)) * (sr / size), psd


def tonal_balance_db(audio: Audio) -> tuple[float, float, float]:
    """``(tilt_db_per_oct, low_shelf_db, high_shelf_db)``: the mix's long-term spectral tilt
    (60 Hz - 12 kHz, octave bands) and the shelves that pull half of its departure from the
    reference tilt back, each limited to +-3 dB."""
    sr = audio.sample_rate
    mono = audio.mono()
    freqs, psd = _welch(mono, sr, 8192)
    centres = 60.0 * 2.0 ** np.arange(0, 8)  # 60 Hz .. 7.7 kHz centres, bands up to ~11 kHz
    centres = centres[centres * math.sqrt(2) < sr / 2]
    levels = []
    for c in centres:
        band = (freqs >= c / math.sqrt(2)) & (freqs < c * math.sqrt(2))
        levels.append(10 * math.log10(max(float(psd[band].sum()), 1e-20)))
    if len(levels) < 3:
        return 0.0, 0.0, 0.0
    tilt = float(np.polyfit(np.log2(centres), levels, 1)[0])
    error_db = (tilt - REFERENCE_TILT_DB_PER_OCT) * math.log2(
        4000.0 / 150.0
    )  # over the shelves' span
    shelf = float(
        np.clip(-0.25 * error_db, -MAX_SHELF_DB, MAX_SHELF_DB)
    )  # half the error, split in two
    return tilt, round(-shelf, 2), round(shelf, 2)


def _glue_threshold_db(in_lufs: float) -> float:
    """6 dB over the programme's loudness: the compressor works on the loud moments only,
    whatever the input level, instead of on everything."""
    return min(-1.0, in_lufs + 6.0)


def _glue_chain(
    preset: MasterPreset, low_db: float, high_db: float, threshold_db: float
) -> pb.Pedalboard:
    import pedalboard as pb

    return pb.Pedalboard(
        [
            pb.HighpassFilter(
                cutoff_frequency_hz=25.0
            ),  # sub-sonic rumble costs headroom, adds nothing
            pb.LowShelfFilter(cutoff_frequency_hz=150.0, gain_db=low_db),
            pb.HighShelfFilter(cutoff_frequency_hz=4000.0, gain_db=high_db),
            pb.Compressor(
                threshold_db=threshold_db, ratio=preset.glue_ratio, attack_ms=30.0, release_ms=150.0
            ),
        ]
    )


def check_target(target_lufs: float) -> None:
    lo, hi = TARGET_RANGE_LUFS
    if not lo <= target_lufs <= hi:
        raise InvalidInput(
            f"The loudness target must be between {lo:g} and {hi:g} LUFS.", code="BAD_TARGET"
        )


def master_to_target(
    audio: Audio,
    target_lufs: float,
    *,
    ceiling_dbtp: float = CEILING_DBTP,
    preset: str | None = None,
) -> MasteredAudio:
    """Master ``audio`` to ``target_lufs`` with the true peak at most ``ceiling_dbtp``.

    Raises InvalidAudio for silent or too-short audio, InvalidInput for a target out of range.
    """
    check_target(target_lufs)
    with one_blas_thread():
        return _master(audio, target_lufs, ceiling_dbtp, preset)


def in_halves(
    process: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    sr: int,
    pre: int | None = None,
    post: int | None = None,
) -> np.ndarray:
    """``process(x)`` for a time-aligned ``process`` of ``(channels, n)`` float32 (its result
    ``(..., n)``), computed as two overlapping halves on two threads: the second starts
    ``pre`` samples early, the first runs ``post`` past the join (default: ``PREROLL_S`` and
    ``POSTROLL_S``, for stateful stages). A track under four ``pre`` long runs in one piece.
    ``process`` must build its own plugins per call."""
    n = x.shape[1]
    pre = int(PREROLL_S * sr) if pre is None else pre
    post = int(POSTROLL_S * sr) if post is None else post
    if n < 4 * max(pre, post, 1):
        return process(x)
    mid = n // 2
    with ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(process, x[:, mid - pre :])
        first = process(x[:, : mid + post])
        return np.concatenate([first[..., :mid], second.result()[..., pre:]], axis=-1)


def _master(
    audio: Audio, target_lufs: float, ceiling_dbtp: float, preset: str | None
) -> MasteredAudio:
    sr = audio.sample_rate
    x = np.ascontiguousarray(audio.samples, dtype=np.float32)
    with ThreadPoolExecutor(max_workers=1) as pool:  # two independent readings side by side
        balance = pool.submit(tonal_balance_db, audio)
        in_lufs = _lufs(x, sr)
        tilt, low_db, high_db = balance.result()
    if not math.isfinite(in_lufs):  # finite readings are over the -70 LUFS gate already
        raise InvalidAudio("The audio is silent or too short to master.", code="SILENT_AUDIO")
    chosen = PRESETS[preset or preset_for_target(target_lufs)]
    threshold_db = _glue_threshold_db(in_lufs)
    y = in_halves(
        lambda piece: _glue_chain(chosen, low_db, high_db, threshold_db)(piece, sr), x, sr
    )
    # The gain search runs on an excerpt; its loudness (a quarter of the work of the whole
    # track's) gives the first guess.
    probe = excerpt(y, sr)
    probe_lufs = _lufs(probe, sr)
    if not math.isfinite(probe_lufs):
        probe, probe_lufs = y, _lufs(y, sr)

    limiter_ceiling = (
        ceiling_dbtp - LIMITER_MARGIN_DB["true_peak" if chosen.soft_clip else "sample_peak"]
    )
    gain_db = _search_gain(
        probe, sr, target_lufs, target_lufs - probe_lufs, limiter_ceiling, chosen
    )
    tried: list[tuple[float, float]] = []  # (gain_db, loudness) for the secant steps
    iterations = 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        while iterations < MAX_ITERATIONS:
            iterations += 1
            out = _limit(y, sr, gain_db, limiter_ceiling, chosen)
            # The loudness is measured beside the 4x envelope the last stage needs: when this
            # pass lands on the target (usually the first), the envelope is ready for it.
            measured = pool.submit(_lufs, out, sr, split=False)
            # Each 4x point reads 6 samples either side: halves overlapping by 16 are exact.
            envelope = in_halves(oversampled_peak, out, sr, pre=16, post=16)
            out_lufs = measured.result()
            tried.append((gain_db, out_lufs))
            if abs(target_lufs - out_lufs) <= LOUDNESS_TOLERANCE_LU:
                break
            if _saturated(tried, target_lufs):  # out of reach: end on the loudest gain tried
                if _loudest(tried) == gain_db:
                    break
                gain_db = _loudest(tried)
                continue
            gain_db = _next_gain(tried, target_lufs)
    out, reduction_db, peak = hold_true_peak(out, sr, ceiling_dbtp, envelope=envelope)
    if reduction_db > 0.5:  # a few milliseconds under 0.5 dB move the loudness < 0.01 LU
        out_lufs = _lufs(out, sr)
    return MasteredAudio(
        audio=Audio(np.ascontiguousarray(out, dtype=np.float32), sr),
        target_lufs=target_lufs,
        integrated_lufs=round(out_lufs, 2),
        true_peak_dbtp=round(peak, 2),
        chain={
            "spectral_tilt_db_per_oct": round(tilt, 2),
            "low_shelf_150hz_db": low_db,
            "high_shelf_4khz_db": high_db,
            "glue_ratio": chosen.glue_ratio,
            "glue_threshold_dbfs": round(threshold_db, 1),
            "gain_db": round(gain_db, 2),
            "limiter_ceiling_dbtp": round(limiter_ceiling, 2),
            "limiter_release_ms": chosen.limiter_release_ms,
            "soft_clip": chosen.soft_clip,
            "limiter_detector": "true_peak_4x" if chosen.soft_clip else "sample_peak",
            "true_peak_safety_reduction_db": round(reduction_db, 2),
            "iterations": iterations,
        },
    )


def hold_true_peak(
    samples: np.ndarray,
    sr: int,
    ceiling_dbtp: float = CEILING_DBTP,
    *,
    envelope: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float]:
    """``samples`` with every inter-sample peak held under ``ceiling_dbtp`` by every common
    meter, the largest gain reduction it took (dB) and the reconstructed peak (dBTP).

    A look-ahead gain rider on the 4x-oversampled envelope set ``TRUE_PEAK_SAFETY_DB`` under
    the ceiling (the 4x grid can miss a few tenths of a dB between its points), then the
    reconstructed waveform's peak is measured (``reconstructed_peak_dbtp``); while it comes
    within ``CEILING_MARGIN_DB`` of the ceiling the rider aims lower (twice at most), then a
    static trim makes up what is left.
    Only the few peaks the limiter let through are touched: the loudness barely moves.
    ``envelope``: ``oversampled_peak(samples)`` when the caller already has it.
    """
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if envelope is None:
        envelope = oversampled_peak(x)
    allowed = ceiling_dbtp - CEILING_MARGIN_DB
    aim_db = ceiling_dbtp - TRUE_PEAK_SAFETY_DB
    for _attempt in range(3):
        g = limiter_gain(envelope, 1.0, 10 ** (aim_db / 20), sr)
        out = x * g[None, :]  # float32 times float32: no second copy
        # 0.0, not -0.0, when the rider does nothing (a report reads "-0.0" otherwise).
        reduction_db = max(0.0, -20.0 * math.log10(max(float(g.min()), 1e-12)))
        # The gain rides slowly (milliseconds), so the detector's envelope times the gain is
        # the output's 4x envelope to well within the screen's margin.
        peak = reconstructed_peak_dbtp(Audio(out, sr), screen=envelope * g)
        if peak <= allowed:
            return out, reduction_db, peak
        # Peaks between the 4x points (content near Nyquist) got through: aim lower.
        aim_db -= peak - allowed + 0.02
    out = out * np.float32(10 ** ((allowed - peak) / 20))
    reduction_db += peak - allowed
    return out, reduction_db, allowed


def excerpt(
    samples: np.ndarray, sr: int, chunk_s: float = 4.0, fraction: float = 0.25
) -> np.ndarray:
    """Evenly spaced ``chunk_s`` pieces covering ``fraction`` of a long track (whole if short).

    The gain search runs on this stand-in: compressor and limiter memories are well under a
    second, so each piece behaves as it does in place, at a quarter of the cost per try.
    """
    n = samples.shape[1]
    chunk = int(chunk_s * sr)
    count = int(n * fraction / chunk)
    if count < 8:
        return samples
    starts = np.linspace(0, n - chunk, count).astype(np.int64)
    return np.concatenate([samples[:, s : s + chunk] for s in starts], axis=1)


def _search_gain(
    probe: np.ndarray,
    sr: int,
    target_lufs: float,
    gain_db: float,
    ceiling_db: float,
    preset: MasterPreset,
) -> float:
    """The pre-limiter gain that brings ``probe`` to the target (secant steps, a few tries)."""
    tried: list[tuple[float, float]] = []
    for _ in range(MAX_ITERATIONS // 2):
        loudness = _lufs(_limit(probe, sr, gain_db, ceiling_db, preset), sr)
        tried.append((gain_db, loudness))
        if abs(target_lufs - loudness) <= LOUDNESS_TOLERANCE_LU / 2:
            return gain_db
        if _saturated(tried, target_lufs):
            return _loudest(tried)
        gain_db = _next_gain(tried, target_lufs)
    return gain_db


def soft_clip(samples: np.ndarray, ceiling: float, knee_db: float = CLIP_KNEE_DB) -> np.ndarray:
    """Linear up to ``knee_db`` under ``ceiling`` (linear amplitude), then a tanh curve that
    approaches the ceiling with a continuous slope: transient tips are rounded, not squared."""
    knee = ceiling * 10 ** (-knee_db / 20)
    span = ceiling - knee
    out = samples.copy()
    over = np.abs(samples) > knee
    tips = samples[over]
    out[over] = np.sign(tips) * (knee + span * np.tanh((np.abs(tips) - knee) / span))
    return out


def _limit(
    y: np.ndarray, sr: int, gain_db: float, ceiling_db: float, preset: MasterPreset
) -> np.ndarray:
    """Gain, the soft clipper where the preset has one, and the brick-wall limiter, run in
    halves (``in_halves``); ``_limit_piece`` is one pass."""
    return in_halves(lambda piece: _limit_piece(piece, sr, gain_db, ceiling_db, preset), y, sr)


def _limiter_input(
    piece: np.ndarray, gain_db: float, ceiling_db: float, preset: MasterPreset
) -> np.ndarray:
    """What the limiter is fed: ``piece`` with the gain, soft-clipped where the preset asks."""
    z = piece * np.float32(10 ** (gain_db / 20))
    if preset.soft_clip:
        z = soft_clip(z, 10 ** ((ceiling_db + CLIP_HEADROOM_DB) / 20))
    return z


def _limit_piece(
    piece: np.ndarray, sr: int, gain_db: float, ceiling_db: float, preset: MasterPreset
) -> np.ndarray:
    """``_limit`` in one pass over ``piece`` (a limiter of its own: pieces may run at once)."""
    import pedalboard as pb

    limiter = pb.BrickwallLimiter(
        ceiling_db=ceiling_db,
        release_ms=preset.limiter_release_ms,
        lookahead_ms=5.0,
        true_peak=preset.soft_clip,
    )
    return limiter(_limiter_input(piece, gain_db, ceiling_db, preset), sr)


def _next_gain(tried: list[tuple[float, float]], target_lufs: float) -> float:
    """Secant step on loudness(gain); limiting makes it sub-linear, so plain steps undershoot."""
    g1, l1 = tried[-1]
    if len(tried) < 2:
        return g1 + (target_lufs - l1)
    g0, l0 = tried[-2]
    slope = (l1 - l0) / (g1 - g0) if abs(g1 - g0) > 1e-6 else 1.0
    slope = min(1.0, max(0.1, slope))
    step = (target_lufs - l1) / slope
    return g1 + min(MAX_GAIN_STEP_DB, max(-MAX_GAIN_STEP_DB, step))


def _loudest(tried: list[tuple[float, float]]) -> float:
    """The gain of the loudest try."""
    return max(tried, key=lambda t: t[1])[0]


def _saturated(tried: list[tuple[float, float]], target_lufs: float) -> bool:
    """Whether the loudness is still short of the target and the last gain step moved it by
    under a twentieth of the gain: the limiter holds it, and the target is out of reach under
    the ceiling (the master is then as loud as it gets, and says how loud). Over the target a
    flat step only says the limiter is saturated: the gain goes on down."""
    if len(tried) < 2:
        return False
    (g0, l0), (g1, l1) = tried[-2:]
    return l1 < target_lufs and abs(g1 - g0) > 0.5 and (l1 - l0) / (g1 - g0) < 0.05
