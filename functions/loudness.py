"""Loudness measurement per ITU-R BS.1770-4 / EBU R128.

Offers ``loudness_report(audio)`` -> ``{integrated_lufs, lra_lu, true_peak_dbtp, sample_peak_dbfs}``
and the pieces: ``integrated_lufs`` (400 ms blocks, 75 % overlap, -70 LUFS absolute and -10 LU
relative gates), ``loudness_range_lu`` (EBU Tech 3342: 3 s short-term windows every 100 ms,
-70 LUFS absolute and -20 LU relative gates, 10th-95th percentile spread), ``true_peak_dbtp``
(4x oversampled peak, as BS.1770-4 Annex 2 asks) and ``sample_peak_dbfs``.

The K-weighting filter is pyloudnorm's (its meter's two biquads, designed here in numpy), run
once over all channels by scipy's compiled section loop and shared by the integrated and
short-term measurements; gating is vectorised over 100 ms hops instead of pyloudnorm's
per-block loop. The 4x true peak is a matrix product per block (windows of 12 samples times
the 12 x 4 polyphase taps), visiting the loudest blocks first and skipping those that cannot
beat the peak found. Nothing here imports scipy.signal or pyloudnorm, whose imports alone
cost more than measuring a 3-minute track. ``tests/functions/test_loudness.py`` checks the
figures against pyloudnorm's meter.
"""

from __future__ import annotations

import functools
import glob
import importlib.machinery
import importlib.util
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from functions.audio_io import Audio
from functions.blas_threads import one_blas_thread

ABSOLUTE_GATE_LUFS = -70.0
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs (BS.1770-4 table 3)


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def _biquad(kind: str, gain_db: float, q: float, fc: float, rate: int) -> np.ndarray:
    """``[b0, b1, b2, 1, a1, a2]`` of an RBJ cookbook high shelf or high pass, as pyloudnorm
    designs the K-weighting stages for any sample rate."""
    big_a = 10 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * fc / rate
    cos, alpha = math.cos(w0), math.sin(w0) / (2.0 * q)
    if kind == "high_shelf":
        root = 2 * math.sqrt(big_a) * alpha
        b = [
            big_a * ((big_a + 1) + (big_a - 1) * cos + root),
            -2 * big_a * ((big_a - 1) + (big_a + 1) * cos),
            big_a * ((big_a + 1) + (big_a - 1) * cos - root),
        ]
        a = [
            (big_a + 1) - (big_a - 1) * cos + root,
            2 * ((big_a - 1) - (big_a + 1) * cos),
            (big_a + 1) - (big_a - 1) * cos - root,
        ]
    else:
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    return np.array(b + a, dtype=np.float64) / a[0]


@functools.cache
def k_weighting_sos(rate: int) -> np.ndarray:
    """The two K-weighting biquads (BS.1770's shelf, then its high pass) at ``rate``, as
    second-order sections: the coefficients pyloudnorm's meter uses."""
    return np.stack(
        [
            _biquad("high_shelf", 4.0, 1 / math.sqrt(2), 1500.0, rate),
            _biquad("high_pass", 0.0, 0.5, 38.0, rate),
        ]
    )


@functools.cache
def _sosfilt_kernel():
    """scipy's compiled second-order-section loop, ``kernel(sos, x, zi)`` filtering the rows of
    a C-contiguous ``x`` in place.

    Importing ``scipy.signal`` for it costs more than filtering a whole song (the package
    pulls in scipy.stats and scipy.interpolate), so the compiled module is loaded on its own;
    where a scipy release has moved it, the public ``sosfilt`` stands in.
    """
    spec = importlib.util.find_spec("scipy")
    found = glob.glob(os.path.join(os.path.dirname(spec.origin), "signal", "_sosfilt.*"))
    try:
        loader = importlib.machinery.ExtensionFileLoader("scipy.signal._sosfilt", found[0])
        module = importlib.util.module_from_spec(
            importlib.util.spec_from_loader("scipy.signal._sosfilt", loader)
        )
        loader.exec_module(module)
        return module._sosfilt
    except (IndexError, ImportError, AttributeError):
        from scipy.signal import sosfilt

        def kernel(sos, x, zi):
            x[...] = sosfilt(sos, x, axis=-1)

        return kernel


def k_weighted(samples: np.ndarray, rate: int) -> np.ndarray:
    """``samples`` ``(channels, n)`` through the K-weighting filter, float64 (a pole sits
    close to 1: float32 state would drift)."""
    y = np.array(np.atleast_2d(samples), dtype=np.float64, order="C")
    sos = k_weighting_sos(rate)
    _sosfilt_kernel()(sos, y, np.zeros((y.shape[0], len(sos), 2)))
    return y


# The filter runs ~25 s at a time: bounded memory, and few enough calls that a thread running
# it beside other Python work is not kept waiting for the interpreter lock between them.
_HOPS_PER_CHUNK = 250


def _hop_powers(audio: Audio) -> tuple[np.ndarray, int]:
    """Channel-weighted K-filtered energy summed per 100 ms hop, and the hop length.

    Both BS.1770 blocks (400 ms) and EBU short-term windows (3 s) start on 100 ms steps, so
    every window is a sum of whole hops: one pass over the samples serves both measurements.
    """
    hop = int(round(0.1 * audio.sample_rate))
    channels, hops = audio.channels, audio.samples.shape[1] // hop
    gains = np.array([CHANNEL_GAINS[min(c, len(CHANNEL_GAINS) - 1)] for c in range(channels)])
    sos = k_weighting_sos(audio.sample_rate)
    kernel, state = _sosfilt_kernel(), np.zeros((channels, len(sos), 2))
    powers = np.empty(hops)
    chunk = _HOPS_PER_CHUNK * hop
    for start in range(0, hops * hop, chunk):
        stop = min(start + chunk, hops * hop)
        y = np.array(audio.samples[:, start:stop], dtype=np.float64, order="C")
        kernel(sos, y, state)  # filters in place and carries the state to the next chunk
        y = y.reshape(channels, -1, hop)
        powers[start // hop : stop // hop] = gains @ np.einsum("chi,chi->ch", y, y)
    return powers, hop


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
    at the original Nyquist, gain ``oversample`` so the passband keeps its level: a
    Hamming-windowed sinc normalised to unity DC gain (``scipy.signal.firwin``'s design)."""
    taps = 12 * oversample
    m = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(m / oversample) * np.hamming(taps)
    return (h / h.sum() * oversample).astype(np.float32)


# Interpolated points are computed _GROUP samples at a time: a window of _GROUP + 11 samples
# times a (_GROUP + 11, 4 * _GROUP) matrix, so BLAS sees one dense product per block instead
# of a 12-tap product per sample (twice as fast, with the windows copied out).
_GROUP = 8


@functools.cache
def _polyphase(oversample: int) -> np.ndarray:
    """``(_GROUP + 11, oversample * _GROUP)``: a window ``x[i-5 .. i+_GROUP+5]`` times this
    gives, for each of the ``_GROUP`` samples from ``i``, the interpolator's ``oversample``
    points after it (at ``+ (p + 0.5) / oversample``: the 48-tap filter's delay is 23.5
    output samples)."""
    h = interpolator(oversample)
    k = 11 - np.arange(12)
    branch = h[oversample * k[:, None] + np.arange(oversample)[None, :]]  # (12, oversample)
    out = np.zeros((_GROUP + 11, oversample * _GROUP), dtype=np.float32)
    for g in range(_GROUP):
        out[g : g + 12, oversample * g : oversample * (g + 1)] = branch
    return out


def _branch_bound(oversample: int) -> float:
    """The largest L1 norm of one polyphase branch: no interpolated point exceeds the peak
    of the 12 samples it is made of times this."""
    return float(np.abs(_polyphase(oversample)[:12, :oversample]).sum(axis=0).max())


def _oversampled(x: np.ndarray, start: int, stop: int, oversample: int = 4) -> np.ndarray:
    """``(channels, stop - start, oversample)``: the interpolated points after each sample of
    ``x[:, start:stop]`` (zeros outside the signal)."""
    n = x.shape[1]
    length = -(-(stop - start) // _GROUP) * _GROUP
    a, b = max(0, start - 5), min(n, start + length + 6)
    seg = np.asarray(x[:, a:b], dtype=np.float32)
    if a != start - 5 or b != start + length + 6:
        seg = np.pad(seg, ((0, 0), (a - (start - 5), start + length + 6 - b)))
    windows = np.lib.stride_tricks.sliding_window_view(seg, _GROUP + 11, axis=1)[:, ::_GROUP]
    points = np.ascontiguousarray(windows) @ _polyphase(oversample)
    return points.reshape(x.shape[0], length, oversample)[:, : stop - start]


def _block_peaks(x: np.ndarray) -> np.ndarray:
    """The sample peak of each ``_TP_BLOCK`` block (all channels)."""
    n = x.shape[1]
    whole = n // _TP_BLOCK * _TP_BLOCK
    peaks = np.abs(x[:, :whole]).reshape(x.shape[0], -1, _TP_BLOCK).max(axis=(0, 2))
    if whole < n:
        peaks = np.append(peaks, np.abs(x[:, whole:]).max())
    return peaks


def _reach(x: np.ndarray, oversample: int) -> np.ndarray:
    """Per ``_TP_BLOCK`` block, the most any interpolated point in it can reach: the sample
    peak of the block and its neighbours (a point reads 6 samples either side) times the
    largest L1 norm of one polyphase branch."""
    peaks = _block_peaks(x)
    if len(peaks) > 1:
        peaks = np.maximum(peaks, np.maximum(np.append(peaks[1:], 0), np.append(0, peaks[:-1])))
    return peaks * _branch_bound(oversample)


def _runs(blocks: np.ndarray, longest: int = 16) -> list[tuple[int, int]]:
    """Sorted block indices as ``(first, end)`` runs of consecutive blocks, ``longest`` at most:
    each run is one matrix product."""
    out: list[tuple[int, int]] = []
    for b in np.sort(blocks).tolist():
        if out and out[-1][1] == b and b - out[-1][0] < longest:
            out[-1] = (out[-1][0], b + 1)
        else:
            out.append((b, b + 1))
    return out


def _oversampled_blocks(x: np.ndarray, oversample: int, floor: float):
    """Yield ``(start, per-sample peak of the 4x signal)`` for each run of ``_TP_BLOCK`` blocks
    of ``x`` that could reach ``floor``; blocks that cannot are skipped: most blocks of a
    dynamic mix are."""
    n = x.shape[1]
    for first, end in _runs(np.flatnonzero(_reach(x, oversample) > floor)):
        start, stop = first * _TP_BLOCK, min(n, end * _TP_BLOCK)
        yield start, np.abs(_oversampled(x, start, stop, oversample)).max(axis=(0, 2))


def true_peak_dbtp(audio: Audio, oversample: int = 4) -> float:
    """Inter-sample peak in dBTP on a 4x oversampled signal (polyphase FIR), block by block.

    The loudest blocks are measured first; then only the blocks that could still beat that
    peak (see ``_reach``): exact, and most blocks of a dynamic mix are skipped.
    """
    x = audio.samples
    n = x.shape[1]
    if n == 0:
        return -math.inf
    reach = _reach(x, oversample)
    peak = max(float(x.max()), -float(x.min()))
    for pass_ in range(2):
        if pass_ == 0:
            blocks = np.argsort(-reach, kind="stable")[:4]
        else:
            blocks = np.flatnonzero(reach > peak)
        for first, end in _runs(blocks):
            points = _oversampled(x, first * _TP_BLOCK, min(n, end * _TP_BLOCK), oversample)
            peak = max(peak, float(points.max()), -float(points.min()))
        reach[blocks] = 0.0
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
    with one_blas_thread(), ThreadPoolExecutor(max_workers=1) as pool:
        weighted = pool.submit(_hop_powers, audio)
        peak = true_peak_dbtp(audio)
        hops, hop = weighted.result()
    return {
        "integrated_lufs": _finite(_integrated_from(hops, hop)),
        "lra_lu": round(_lra_from(hops, hop), 2),
        "true_peak_dbtp": _finite(peak),
        "sample_peak_dbfs": _finite(sample_peak_dbfs(audio)),
    }
