"""True-peak meters: BS.1770-4's 4x oversampled peak and a finer reconstructed-waveform peak.

Offers:
- ``true_peak_dbtp(audio)``: the 4x oversampled peak (48-tap interpolator, Annex 2's shape).
- ``reconstructed_peak_dbtp(audio, screen=None)``: the waveform's peak within a few
  hundredths of a dB, at or above what any common meter reads (the mastering ceiling's meter).
- ``oversampled_envelope(samples)``: per sample, the largest 4x point next to it (all
  channels): a limiter's true-peak detector.
- ``interpolator(oversample)``: the 4x filter's taps.

The 4x points are matrix products per block of samples (windows of samples times the
polyphase taps); blocks whose samples are too quiet to beat the peak found so far are skipped.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from functions.audio_io import Audio


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


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
    output samples). Column ``p * _GROUP + g`` is point ``p`` after sample ``i + g``."""
    h = interpolator(oversample)
    k = 11 - np.arange(12)
    branch = h[oversample * k[:, None] + np.arange(oversample)[None, :]]  # (12, oversample)
    out = np.zeros((_GROUP + 11, oversample * _GROUP), dtype=np.float32)
    for g in range(_GROUP):
        out[g : g + 12, g::_GROUP] = branch
    return out


def _branch_bound(oversample: int) -> float:
    """The largest L1 norm of one polyphase branch: no interpolated point exceeds the peak
    of the 12 samples it is made of times this."""
    return float(np.abs(_polyphase(oversample)[:12, ::_GROUP]).sum(axis=0).max())


def _oversampled(x: np.ndarray, start: int, stop: int, oversample: int = 4) -> np.ndarray:
    """The interpolated points after each sample of ``x[:, start:stop]`` (zeros outside the
    signal) as ``(channels, groups, oversample, _GROUP)``: point ``p`` after sample
    ``start + _GROUP * j + g`` is ``[:, j, p, g]``; the last group may run past ``stop``."""
    n = x.shape[1]
    length = -(-(stop - start) // _GROUP) * _GROUP
    a, b = max(0, start - 5), min(n, start + length + 6)
    seg = np.asarray(x[:, a:b], dtype=np.float32)
    if a != start - 5 or b != start + length + 6:
        seg = np.pad(seg, ((0, 0), (a - (start - 5), start + length + 6 - b)))
    windows = np.lib.stride_tricks.sliding_window_view(seg, _GROUP + 11, axis=1)[:, ::_GROUP]
    points = np.ascontiguousarray(windows) @ _polyphase(oversample)
    return points.reshape(x.shape[0], -1, oversample, _GROUP)


def _envelope(x: np.ndarray, start: int, stop: int, oversample: int) -> np.ndarray:
    """Per sample of ``x[:, start:stop]``, the largest magnitude of the points after it."""
    points = _oversampled(x, start, stop, oversample)
    np.abs(points, out=points)
    env = points[0, :, 0].copy()
    for c in range(points.shape[0]):  # slab by slab: numpy's reduction over two axes is slow
        for p in range(oversample):
            np.maximum(env, points[c, :, p], out=env)
    return env.reshape(-1)[: stop - start]


def _block_peaks(x: np.ndarray) -> np.ndarray:
    """The sample peak of each ``_TP_BLOCK`` block (all channels)."""
    n = x.shape[1]
    whole = n // _TP_BLOCK * _TP_BLOCK
    peaks = np.zeros(-(-n // _TP_BLOCK), dtype=np.float32)
    for channel in x:  # channel by channel, highs and lows: no full-size temporaries
        blocks = channel[:whole].reshape(-1, _TP_BLOCK)
        np.maximum(peaks[: len(blocks)], blocks.max(axis=1), out=peaks[: len(blocks)])
        np.maximum(peaks[: len(blocks)], -blocks.min(axis=1), out=peaks[: len(blocks)])
        if whole < n:
            peaks[-1] = max(peaks[-1], float(np.abs(channel[whole:]).max()))
    return peaks


def _reach(x: np.ndarray, oversample: int, peaks: np.ndarray | None = None) -> np.ndarray:
    """Per ``_TP_BLOCK`` block, the most any interpolated point in it can reach: the sample
    peak of the block and its neighbours (a point reads 6 samples either side) times the
    largest L1 norm of one polyphase branch. ``peaks``: ``_block_peaks(x)`` when known."""
    peaks = _block_peaks(x) if peaks is None else peaks
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
        yield start, _envelope(x, start, stop, oversample)


def _piece_peaks(x: np.ndarray) -> np.ndarray:
    """The sample peak (all channels) of each ``_PIECE`` samples; the last piece may be short."""
    env = _sample_envelope(x)
    n = len(env)
    whole = n // _PIECE * _PIECE
    peaks = np.empty(-(-n // _PIECE), dtype=np.float32)
    peaks[: whole // _PIECE] = env[:whole].reshape(-1, _PIECE).max(axis=1)
    if whole < n:
        peaks[-1] = env[whole:].max()
    return peaks


def _groups_peak(x: np.ndarray, groups: np.ndarray, oversample: int) -> float:
    """The largest magnitude of the points after the samples of ``groups`` (group ``j``: the
    ``_GROUP`` samples from ``_GROUP * j``; none past the signal's end), all channels."""
    n = x.shape[1]
    width = _GROUP + 11
    # Group j's window x[_GROUP * j - 5 : _GROUP * j + _GROUP + 6] lies inside the signal for
    # 1 <= j <= last: those are matrix rows; the few at either edge are padded one by one.
    last = (n - width + 5) // _GROUP
    inside = (groups >= 1) & (groups <= last)
    peak = 0.0
    for j in groups[~inside].tolist():
        start = _GROUP * j
        if start < n:
            peak = max(peak, float(_envelope(x, start, min(n, start + _GROUP), oversample).max()))
    rows = groups[inside] - 1  # window r starts at sample 3 + _GROUP * r
    if not len(rows):
        return peak
    bank = _polyphase(oversample)
    for channel in x:
        windows = np.lib.stride_tricks.sliding_window_view(channel[3:], width)[::_GROUP]
        for c in range(0, len(rows), _GROUPS_AT_ONCE):
            points = windows[rows[c : c + _GROUPS_AT_ONCE]] @ bank
            peak = max(peak, float(points.max()), -float(points.min()))
    return peak


def true_peak_dbtp(audio: Audio, oversample: int = 4) -> float:
    """Inter-sample peak in dBTP on a 4x oversampled signal (polyphase FIR).

    Exact, and most of the signal is never interpolated: a point reads the 12 samples around
    it, so a ``_PIECE`` of samples whose neighbourhood peak times the interpolator's largest
    branch gain (``_branch_bound``) stays under the sample peak cannot hold the true peak.
    """
    x = np.asarray(audio.samples, dtype=np.float32)
    if x.shape[1] == 0:
        return -math.inf
    pieces = _piece_peaks(x)
    peak = float(pieces.max())  # the sample peak: the true peak is at least that
    reach = pieces.copy()
    np.maximum(reach[1:], pieces[:-1], out=reach[1:])
    np.maximum(reach[:-1], pieces[1:], out=reach[:-1])
    candidates = np.flatnonzero(reach * _branch_bound(oversample) > peak)
    per_piece = _PIECE // _GROUP
    groups = (candidates[:, None] * per_piece + np.arange(per_piece)).reshape(-1)
    return _db(max(peak, _groups_peak(x, groups, oversample)))


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
# The 4x meter screens the signal in pieces of _PIECE samples (a multiple of _GROUP) and
# interpolates the groups of the pieces that pass _GROUPS_AT_ONCE at a time (bounded memory).
_PIECE = 64
_GROUPS_AT_ONCE = 1 << 15


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
        env = np.maximum(np.asarray(screen, dtype=np.float32), _sample_envelope(x))
    else:
        sample_peak = float(np.abs(x).max())
        env = _sample_envelope(x)
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


def _sample_envelope(x: np.ndarray) -> np.ndarray:
    """Per sample, the largest magnitude over the channels."""
    env = np.abs(x[0])
    for channel in x[1:]:
        np.maximum(env, np.abs(channel), out=env)
    return env


def oversampled_envelope(samples: np.ndarray, oversample: int = 4) -> np.ndarray:
    """Per sample ``n`` of ``(channels, n)`` samples, the largest magnitude of the sample and
    of the 4x points on either side of it (between ``n - 1`` and ``n + 1``), all channels."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    n = x.shape[1]
    env = _sample_envelope(x)
    after = np.zeros(n, dtype=np.float32)  # the points between n and n + 1
    for first, end in _runs(np.arange(-(-n // _TP_BLOCK))):
        start, stop = first * _TP_BLOCK, min(n, end * _TP_BLOCK)
        after[start:stop] = _envelope(x, start, stop, oversample)
    np.maximum(env, after, out=env)
    np.maximum(env[1:], after[:-1], out=env[1:])
    return env
