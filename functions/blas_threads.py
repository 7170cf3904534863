"""``one_blas_thread()``: hold numpy's BLAS to one thread inside a block of audio work.

The analysis and mastering paths make thousands of mid-sized matrix products (STFT blocks
times the mel filterbank, sample windows times the 4x interpolator) while their own threads
already run beside one another (the loudness pass beside the rhythm and pitch work). BLAS
threads on top of that oversubscribe the cores: on a busy machine they spin waiting for one
another and a warm analysis took several times its single-threaded time. The limit is the
process's, restored when the block ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without it BLAS keeps its own threads: slower, same results
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
