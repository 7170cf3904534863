"""``rfft`` and ``irfft`` along one axis: scipy's compiled pocketfft, without ``import scipy.fft``.

Importing ``scipy.fft`` costs about 0.3 s in a fresh process (it pulls in scipy.special and the
array-API layer), as much as the transforms of a whole song, and a cold ``soundstage analyze``
needs these two functions only. So the compiled module is loaded on its own, as
functions.loudness does for the section filter: the same code runs, with the same results
(``scipy.fft.rfft(x, axis=a)`` and ``scipy.fft.irfft(x, n, axis=a)``, default normalisation, one
thread). Where a scipy release has moved the module, scipy.fft stands in.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np

from functions.compiled_scipy import compiled_module

# pocketfft's normalisation codes: 0 = none (a forward transform), 2 = 1/n (its inverse).
_FORWARD, _INVERSE = 0, 2


@functools.cache
def _pocketfft() -> Any:
    """The compiled ``r2c``/``c2r`` (pocketfft), or an object offering them through scipy.fft."""
    name = "scipy.fft._pocketfft.pypocketfft"
    module = compiled_module("fft/_pocketfft/pypocketfft", name, "r2c", "c2r")
    if module is not None:
        return module
    import scipy.fft

    def r2c(x, axes, forward, inorm, out, workers):
        return scipy.fft.rfft(x, axis=axes[0])

    def c2r(x, axes, n, forward, inorm, out, workers):
        return scipy.fft.irfft(x, n=n, axis=axes[0])

    return SimpleNamespace(r2c=r2c, c2r=c2r)


def rfft(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``scipy.fft.rfft(x, axis=axis)`` for a real float32/float64 array."""
    return _pocketfft().r2c(np.asarray(x), (axis,), True, _FORWARD, None, 1)


def irfft(x: np.ndarray, n: int, axis: int = -1) -> np.ndarray:
    """``scipy.fft.irfft(x, n=n, axis=axis)`` for a complex64/complex128 array: ``x`` is cut
    or zero-padded to ``n // 2 + 1`` bins along ``axis`` first, as scipy does."""
    x = np.asarray(x)
    bins = n // 2 + 1
    have = x.shape[axis]
    if have > bins:
        index = [slice(None)] * x.ndim
        index[axis] = slice(0, bins)
        x = x[tuple(index)]
    elif have < bins:
        pad = [(0, 0)] * x.ndim
        pad[axis] = (0, bins - have)
        x = np.pad(x, pad)
    return _pocketfft().c2r(x, (axis,), n, False, _INVERSE, None, 1)
