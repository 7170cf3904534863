"""True-peak meters other than ours, for checking that a ceiling holds whatever a user measures
with: ffmpeg's ``ebur128=peak=true`` on the written file and a long-filter 4x polyphase
resampler (``scipy.signal.resample_poly``, Kaiser window beta 10)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from functions.audio_io import Audio
from functions.ffmpeg_command import ffmpeg_exe


def ffmpeg_true_peak_dbtp(path: Path) -> float:
    """ffmpeg's own true-peak reading of a file (the summary's ``Peak``, dBFS = dBTP)."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path)]
        + ["-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.findall(r"Peak:\s+(-?[\d.]+|-inf) dBFS", proc.stderr)
    assert found, proc.stderr[-500:]
    return float(found[-1])


def resampled_peak_dbtp(audio: Audio, factor: int = 4) -> float:
    """Peak of the signal upsampled ``factor`` times by a long polyphase filter."""
    up = resample_poly(audio.samples.astype(np.float64), factor, 1, axis=1, window=("kaiser", 10.0))
    return float(20 * np.log10(np.abs(up).max()))
