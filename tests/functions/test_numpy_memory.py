"""Importing the job code turns numpy's huge-page advice off (see ``functions/__init__``),
whichever of the two was imported first, and leaves a setting the operator made alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The setter returns the setting it replaces: True when huge pages were still advised.
PROBE = "from numpy._core import multiarray as m; print(m._set_madvise_hugepage(True))"


def _advised(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    done = subprocess.run(
        [sys.executable, "-c", f"{code}; {PROBE}"],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize("code", ["import functions, numpy", "import numpy, functions"])
def test_importing_the_job_code_turns_huge_page_advice_off(code):
    assert _advised("import numpy") == "True"  # numpy's own default, for comparison
    assert _advised(code) == "False"


def test_an_operators_setting_is_left_alone():
    assert _advised("import functions, numpy", NUMPY_MADVISE_HUGEPAGE="1") == "True"


# A fresh 100 MB array, touched, freed; then another: how many page faults the second one took.
REUSE_PROBE = """
import resource, numpy as np
def touched():
    a = np.empty(100 * 2**20, dtype=np.uint8)
    a[::4096] = 1
    del a
touched()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touched()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_array_faults(code: str, **env: str) -> int:
    clean = {
        k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")
    }
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{REUSE_PROBE}"],
        cwd=ROOT,
        # 4 KiB pages throughout, as the job code has them (see the tests above).
        env=clean | {"NUMPY_MADVISE_HUGEPAGE": "0"} | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_memory_is_kept_for_the_next_large_array():
    # 100 MB is 25 600 pages of 4 KiB: by default each array is mapped afresh and faults
    # them all in again; kept, the second array reuses the first one's pages.
    assert _second_array_faults("import numpy") > 20_000
    assert _second_array_faults("import functions") < 2_000
    # An operator's own allocator settings are left as they are.
    assert _second_array_faults("import functions", MALLOC_ARENA_MAX="4") > 20_000
