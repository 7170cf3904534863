"""Running minimum, maximum and mean along one axis, in numpy.

``running_max(x, size, axis)`` / ``running_min``: the extreme over a centred window of ``size``
samples (odd), the window clipped at the ends (the edge value repeats, as in
``scipy.ndimage``'s ``mode="nearest"``); ``window_min(x, before, after)`` and
``window_mean(x, before, after)``: over ``[i - before, i + after]`` on a 1-D signal, edges
repeated the same way. The van Herk / Gil-Werman scheme costs a few passes whatever the size:
prefix extremes inside blocks of the window's length from either end, and each window is one
block's suffix joined to the next block's prefix; the mean is a difference of cumulative sums.
Kept apart so the analysis and mastering paths need no ``scipy.ndimage`` for these filters.
"""

from __future__ import annotations

import numpy as np


def _running(x: np.ndarray, before: int, after: int, axis: int, ufunc: np.ufunc) -> np.ndarray:
    x = np.moveaxis(np.asarray(x), axis, 0)
    n = x.shape[0]
    size = before + after + 1
    if size == 1 or n == 0:
        return np.moveaxis(x.copy(), 0, axis)
    if size <= 5:  # a few shifted comparisons beat the block scheme's passes
        out = x.copy()
        for shift in range(1, before + 1):
            ufunc(out[shift:], x[: n - shift], out=out[shift:])
        for shift in range(1, after + 1):
            ufunc(out[: n - shift], x[shift:], out=out[: n - shift])
        return np.moveaxis(out, 0, axis)
    blocks = -(-(n + before + after) // size)
    pad_end = blocks * size - n - before
    padded = np.concatenate(
        [np.repeat(x[:1], before, axis=0), x, np.repeat(x[-1:], pad_end, axis=0)], axis=0
    )
    shaped = padded.reshape(blocks, size, *x.shape[1:])
    forward = ufunc.accumulate(shaped, axis=1).reshape(padded.shape)
    backward = ufunc.accumulate(shaped[:, ::-1], axis=1)[:, ::-1].reshape(padded.shape)
    # Window [i, i + size) of the padded signal: the suffix of i's block, the prefix of the next.
    out = ufunc(backward[:n], forward[size - 1 : size - 1 + n])
    return np.moveaxis(out, 0, axis)


def _centred(size: int) -> int:
    if size < 1 or size % 2 == 0:
        raise ValueError("the window size must be odd and positive")
    return size // 2


def running_max(x: np.ndarray, size: int, axis: int = 0) -> np.ndarray:
    """Maximum over a centred window of ``size`` (odd) along ``axis``, clipped at the ends."""
    return _running(x, _centred(size), _centred(size), axis, np.maximum)


def running_min(x: np.ndarray, size: int, axis: int = 0) -> np.ndarray:
    """Minimum over a centred window of ``size`` (odd) along ``axis``, clipped at the ends."""
    return _running(x, _centred(size), _centred(size), axis, np.minimum)


def window_min(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """Minimum of a 1-D ``x`` over ``[i - before, i + after]``, edges repeated."""
    return _running(x, before, after, 0, np.minimum)


def window_mean(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """Mean of a 1-D ``x`` over ``[i - before, i + after]``, edges repeated (float64 sums,
    returned in ``x``'s dtype)."""
    x = np.asarray(x)
    n = len(x)
    if n == 0:
        return x.copy()
    padded = np.concatenate([np.repeat(x[:1], before), x, np.repeat(x[-1:], after)])
    sums = np.zeros(len(padded) + 1)
    np.cumsum(padded.astype(np.float64), out=sums[1:])
    size = before + after + 1
    return ((sums[size : size + n] - sums[:n]) / size).astype(x.dtype)
