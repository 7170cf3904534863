"""Running minimum and maximum along one axis, in numpy.

``running_max(x, size, axis)`` / ``running_min``: the extreme over a centred window of ``size``
samples (odd), the window clipped at the ends (the edge value repeats, as in
``scipy.ndimage``'s ``mode="nearest"``). The van Herk / Gil-Werman scheme costs a few passes
whatever the size: prefix extremes inside blocks of ``size`` samples from either end, and each
window is one block's suffix joined to the next block's prefix. Kept apart so the analysis
path needs no ``scipy.ndimage`` import for two filters.
"""

from __future__ import annotations

import numpy as np


def _running(x: np.ndarray, size: int, axis: int, ufunc: np.ufunc) -> np.ndarray:
    if size < 1 or size % 2 == 0:
        raise ValueError("the window size must be odd and positive")
    x = np.moveaxis(np.asarray(x), axis, 0)
    n = x.shape[0]
    if size == 1 or n == 0:
        return np.moveaxis(x.copy(), 0, axis)
    half = size // 2
    blocks = -(-(n + 2 * half) // size)
    pad_end = blocks * size - n - half
    padded = np.concatenate(
        [np.repeat(x[:1], half, axis=0), x, np.repeat(x[-1:], pad_end, axis=0)], axis=0
    )
    shaped = padded.reshape(blocks, size, *x.shape[1:])
    forward = ufunc.accumulate(shaped, axis=1).reshape(padded.shape)
    backward = ufunc.accumulate(shaped[:, ::-1], axis=1)[:, ::-1].reshape(padded.shape)
    # Window [i, i + size) of the padded signal: the suffix of i's block, the prefix of the next.
    out = ufunc(backward[:n], forward[size - 1 : size - 1 + n])
    return np.moveaxis(out, 0, axis)


def running_max(x: np.ndarray, size: int, axis: int = 0) -> np.ndarray:
    """Maximum over a centred window of ``size`` (odd) along ``axis``, clipped at the ends."""
    return _running(x, size, axis, np.maximum)


def running_min(x: np.ndarray, size: int, axis: int = 0) -> np.ndarray:
    """Minimum over a centred window of ``size`` (odd) along ``axis``, clipped at the ends."""
    return _running(x, size, axis, np.minimum)
