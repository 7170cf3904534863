"""functions.real_fft: scipy's compiled pocketfft loaded on its own gives scipy.fft's results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.fft

from functions.real_fft import irfft, rfft

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_rfft_is_scipys(dtype, axis):
    x = np.random.default_rng(3).standard_normal((37, 1001)).astype(dtype)
    ours = rfft(x, axis=axis)
    assert ours.dtype == scipy.fft.rfft(x, axis=axis).dtype
    assert np.array_equal(ours, scipy.fft.rfft(x, axis=axis))


@pytest.mark.parametrize("n", [100, 511, 512, 4096])
def test_irfft_cuts_or_pads_to_n_as_scipy_does(n):
    spectrum = scipy.fft.rfft(np.random.default_rng(4).standard_normal((9, 1024)), axis=1)
    low = spectrum[:, :200].astype(np.complex64)
    assert np.array_equal(irfft(low, n=n, axis=1), scipy.fft.irfft(low, n=n, axis=1))


def test_scipy_fft_still_imports_after_the_standalone_module():
    code = (
        "import sys, numpy as np\n"
        "from functions.real_fft import rfft\n"
        "x = np.arange(16.0)\n"
        "ours = rfft(x)\n"
        "assert 'scipy.fft' not in sys.modules\n"
        "import scipy.fft\n"
        "assert np.array_equal(ours, scipy.fft.rfft(x))\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
