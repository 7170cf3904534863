"""Run the ``soundstage`` command through its real entry point in a fresh data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    home: Path, *args: str, timeout_s: float = 300, **env: str
) -> subprocess.CompletedProcess:
    """``python -m cli ARGS`` with its data and config under ``home``."""
    full_env = {
        **os.environ,
        "SOUNDSTAGE_DATA_DIR": str(home / "data"),
        "SOUNDSTAGE_CONFIG_DIR": str(home / "config"),
        "SOUNDSTAGE_LOG_LEVEL": "WARNING",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
