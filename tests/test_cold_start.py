"""A cold ``soundstage`` command starts fast: building the command line and the registry of job
kinds imports none of the heavy libraries, and the DSP analysis never loads torch.

Each check runs in a fresh interpreter, since this test process has long imported them all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Libraries that take tenths of a second or more to import; each loads inside the stage that
# needs it.
HEAVY = (
    "torch",
    "demucs",
    "beat_this",
    "librosa",
    "numba",
    "scipy.fft",
    "scipy.signal",
    "scipy.stats",
    "scipy.ndimage",
    "pedalboard",
    "openai",
    "replicate",
    "mido",
    "PIL",
    "modal",
)

REPORT = (
    "heavy = {heavy!r}\n"
    "print(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy)))\n"
)


def heavy_modules_after(code: str, **env: str) -> str:
    """The heavy modules loaded once ``code`` ran in a fresh interpreter, as a printed list."""
    out = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code + REPORT.format(heavy=HEAVY)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.strip().splitlines()[-1]


def test_the_registry_of_job_kinds_imports_no_heavy_library():
    assert heavy_modules_after("import functions.pipelines\n") == "[]"


def test_the_command_line_help_imports_no_heavy_library():
    code = "from cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    assert heavy_modules_after(code) == "[]"


def test_the_dsp_beat_engine_does_not_load_torch(tmp_path):
    code = (
        "from functions.pipelines import analyze\n"
        "assert analyze.beat_tracker() is None\n"
        "assert analyze.engine_name() == 'soundstage-dsp'\n"
    )
    env = {"SOUNDSTAGE_MODEL_DIR": str(tmp_path), "SOUNDSTAGE_BEAT_ENGINE": "auto"}
    assert heavy_modules_after(code, **env) == "[]"
