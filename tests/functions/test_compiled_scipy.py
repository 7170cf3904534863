"""scipy's compiled modules loaded on their own (``functions.compiled_scipy``): found, refused
when missing or incomplete, and loaded once when many threads ask at the same moment."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy.signal import sosfilt

from functions import compiled_scipy
from functions.loudness import k_weighting_sos


@pytest.fixture(autouse=True)
def fresh_cache():
    compiled_scipy._load.cache_clear()
    yield
    compiled_scipy._load.cache_clear()


def test_the_section_filter_is_scipys_own():
    module = compiled_scipy.compiled_module("signal/_sosfilt", "scipy.signal._sosfilt", "_sosfilt")
    sos = k_weighting_sos(44100)
    x = np.random.default_rng(0).standard_normal((2, 3000))
    y = x.copy()
    module._sosfilt(sos, y, np.zeros((2, len(sos), 2)))
    np.testing.assert_allclose(y, sosfilt(sos, x, axis=-1), atol=1e-12)


def test_a_missing_file_or_attribute_gives_none():
    assert compiled_scipy.compiled_module("signal/_no_such_module", "scipy.signal._x") is None
    missing = compiled_scipy.compiled_module(
        "signal/_sosfilt", "scipy.signal._sosfilt", "_sosfilt", "no_such_function"
    )
    assert missing is None


def _ask_at_once(threads: int) -> list[object]:
    start = threading.Barrier(threads)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(
            compiled_scipy.compiled_module(
                "fft/_pocketfft/pypocketfft", "scipy.fft._pocketfft.pypocketfft", "r2c", "c2r"
            )
        )

    running = [threading.Thread(target=ask) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    return got


def test_threads_asking_at_once_all_get_the_loaded_module():
    # Unlocked, about one round in two hundred gave a thread a half-initialised module.
    for _ in range(100):
        compiled_scipy._load.cache_clear()
        got = _ask_at_once(4)
        assert len(got) == 4 and got[0] is not None and all(m is got[0] for m in got)
