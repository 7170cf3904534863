"""Loudness measurement per ITU-R BS.1770-4 / EBU R128.

Offers ``loudness_report(audio)`` -> ``{integrated_lufs, lra_lu, true_peak_dbtp, sample_peak_dbfs}``
and the pieces: ``integrated_lufs`` (400 ms blocks, 75 % overlap, -70 LUFS absolute and -10 LU
relative gates), ``loudness_range_lu`` (EBU Tech 3342: 3 s short-term windows every 100 ms,
-70 LUFS absolute and -20 LU relative gates, 10th-95th percentile spread), ``true_peak_dbtp``
(4x oversampled peak, as BS.1770-4 Annex 2 asks) and ``sample_peak_dbfs``.

The K-weighting filter is pyloudnorm's (its meter's two biquads, designed here in numpy), run
once over all channels by scipy's compiled section loop and shared by the integrated and
short-term measurements; gating is vectorised over 100 ms hops instead of pyloudnorm's
per-block loop. The true-peak meters live in ``functions.true_peak`` (re-exported here).
Nothing here imports scipy.signal or pyloudnorm, whose imports alone cost more than
measuring a 3-minute track. ``tests/functions/test_loudness.py`` checks the
figures against pyloudnorm's meter.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from functions.audio_io import Audio
from functions.blas_threads import one_blas_thread
from functions.compiled_scipy import compiled_module
from functions.true_peak import (
    interpolator,
    oversampled_envelope,
    reconstructed_peak_dbtp,
    true_peak_dbtp,
)

__all__ = [
    "integrated_lufs",
    "interpolator",
    "k_weighted",
    "k_weighting_sos",
    "loudness_range_lu",
    "loudness_report",
    "oversampled_envelope",
    "reconstructed_peak_dbtp",
    "sample_peak_dbfs",
    "true_peak_dbtp",
]

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
    pulls in scipy.stats and scipy.interpolate), so the compiled module is loaded on its own
    (``compiled_module``); where a scipy release has moved it, the public ``sosfilt`` stands in.
    """
    module = compiled_module("signal/_sosfilt", "scipy.signal._sosfilt", "_sosfilt")
    if module is not None:
        return module._sosfilt
    from scipy.signal import sosfilt

    def kernel(sos, x, zi):
        # sosfilt's state is (sections, channels, 2), the compiled loop's (channels,
        # sections, 2): carried over, a long track filtered chunk by chunk stays continuous.
        x[...], state = sosfilt(sos, x, axis=-1, zi=zi.transpose(1, 0, 2))
        zi[...] = state.transpose(1, 0, 2)

    return kernel


def k_weighted(samples: np.ndarray, rate: int) -> np.ndarray:
    """``samples`` ``(channels, n)`` through the K-weighting filter, float64 (a pole sits
    close to 1: float32 state would drift)."""
    y = np.array(np.atleast_2d(samples), dtype=np.float64, order="C")
    sos = k_weighting_sos(rate)
    _sosfilt_kernel()(sos, y, np.zeros((y.shape[0], len(sos), 2)))
    return y


# How long the K-filter takes to forget its state (see ``_split_powers``), and the shortest
# track (in 100 ms hops) worth filtering on two threads.
SETTLE_S = 0.5
SPLIT_MIN_HOPS = 200
# The filter runs ~25 s at a time: bounded memory, and few enough calls that a thread running
# it beside other Python work is not kept waiting for the interpreter lock between them.
_HOPS_PER_CHUNK = 250


def _hop_powers(audio: Audio, *, split: bool = False) -> tuple[np.ndarray, int]:
    """Channel-weighted K-filtered energy summed per 100 ms hop, and the hop length.

    Both BS.1770 blocks (400 ms) and EBU short-term windows (3 s) start on 100 ms steps, so
    every window is a sum of whole hops: one pass over the samples serves both measurements.
    ``split``: filter the two halves of a long track on two threads (see ``_split_powers``).
    """
    hop = int(round(0.1 * audio.sample_rate))
    hops = audio.samples.shape[1] // hop
    sos = k_weighting_sos(audio.sample_rate)
    if split and hops >= SPLIT_MIN_HOPS:
        return _split_powers(audio.samples[:, : hops * hop], hop, sos), hop
    return _filtered_powers(audio.samples[:, : hops * hop], hop, sos)[0], hop


def _channel_gains(channels: int) -> np.ndarray:
    """BS.1770's weight per channel: 1.0 for the first three, 1.41 from the fourth on."""
    return np.array([CHANNEL_GAINS[min(c, len(CHANNEL_GAINS) - 1)] for c in range(channels)])


def _powers(y: np.ndarray, hop: int) -> np.ndarray:
    """Channel-weighted energy per ``hop`` samples of K-filtered ``y`` ``(channels, hops*hop)``."""
    y = y.reshape(y.shape[0], -1, hop)
    return _channel_gains(y.shape[0]) @ np.einsum("chi,chi->ch", y, y)


def _filtered_powers(
    samples: np.ndarray, hop: int, sos: np.ndarray, keep_hops: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hop powers of ``samples`` (whole hops) through the K-filter from rest, the filter's
    state after the last sample, and the first ``keep_hops`` hops' filtered samples."""
    channels = samples.shape[0]
    kernel, state = _sosfilt_kernel(), np.zeros((channels, len(sos), 2))
    hops = samples.shape[1] // hop
    powers = np.empty(hops)
    head = np.empty((channels, 0))
    chunk = _HOPS_PER_CHUNK * hop
    for start in range(0, hops * hop, chunk):
        stop = min(start + chunk, hops * hop)
        y = np.array(samples[:, start:stop], dtype=np.float64, order="C")
        kernel(sos, y, state)  # filters in place and carries the state to the next chunk
        if start == 0 and keep_hops:
            head = y[:, : keep_hops * hop].copy()
        powers[start // hop : stop // hop] = _powers(y, hop)
    return powers, state, head


def _split_powers(samples: np.ndarray, hop: int, sos: np.ndarray) -> np.ndarray:
    """``_filtered_powers`` of a long track, its halves filtered on two threads.

    The filter is linear: the second half's output is its own output from rest plus the
    filter's response to its state at the join, which dies out well within ``SETTLE_S`` (the
    38 Hz high-pass is the slowest part: under a loud 30 Hz tone, leaving the response out
    puts the first 100 ms hop 6 % off and the second 1e-10). So only the first ``settle`` hops
    of the second half are corrected: the powers equal one pass's to rounding.
    """
    settle = math.ceil(SETTLE_S / 0.1)  # in hops of 100 ms
    mid = (samples.shape[1] // hop) // 2 * hop
    with ThreadPoolExecutor(max_workers=1) as pool:
        later = pool.submit(_filtered_powers, samples[:, mid:], hop, sos, settle)
        first, state, _ = _filtered_powers(samples[:, :mid], hop, sos)
        second, _, head = later.result()
    carried = np.zeros_like(head)
    _sosfilt_kernel()(sos, carried, state)  # the response to the join's state alone
    second[:settle] = _powers(head + carried, hop)
    return np.concatenate([first, second])


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


def integrated_lufs(audio: Audio, *, split: bool = False) -> float:
    """Gated integrated loudness in LUFS (-inf for silence or audio shorter than 0.4 s).

    ``split``: a track of 20 s or more is filtered as two halves on two threads, for callers whose
    second core would otherwise wait (the same figure, to rounding)."""
    return _integrated_from(*_hop_powers(audio, split=split))


def loudness_range_lu(audio: Audio) -> float:
    """Loudness range (LRA) in LU per EBU Tech 3342; 0.0 when there is too little to measure."""
    return _lra_from(*_hop_powers(audio))


def sample_peak_dbfs(audio: Audio) -> float:
    x = audio.samples
    return _db(max(float(x.max()), -float(x.min()))) if x.size else -math.inf


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
