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
