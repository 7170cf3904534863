"""Meters other than ours, for checking our figures against references that share no code with
them: ffmpeg's ``ebur128=peak=true`` on the written file, a long-filter 4x polyphase resampler
(``scipy.signal.resample_poly``, Kaiser window beta 10) and pyloudnorm's BS.1770 meter.

scipy.signal and pyloudnorm (which imports it) are imported where they are used: together
they take longer to import than most tests of the loudness and master modules take to run,
and a mutation run starts one interpreter per mutant.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from functions.audio_io import Audio
from functions.ffmpeg_command import ffmpeg_exe


def ffmpeg_true_peak_dbtp(path: Path) -> float:
    """ffmpeg's own true-peak reading of a file (the summary's ``Peak``, dBFS = dBTP)."""
    return ffmpeg_ebur128(path)["peak"]


def resampled_peak_dbtp(audio: Audio, factor: int = 4) -> float:
    """Peak of the signal upsampled ``factor`` times by a long polyphase filter."""
    from scipy.signal import resample_poly

    up = resample_poly(audio.samples.astype(np.float64), factor, 1, axis=1, window=("kaiser", 10.0))
    return float(20 * np.log10(np.abs(up).max()))


def pyloudnorm_lufs(audio: Audio) -> float:
    """pyloudnorm's integrated loudness (BS.1770-4) of ``audio``."""
    import pyloudnorm as pyln

    samples = audio.samples.T.astype(np.float64)
    return float(pyln.Meter(audio.sample_rate).integrated_loudness(samples))


def ffmpeg_ebur128(path: Path) -> dict:
    """ffmpeg's summary (I, LRA, true peak) and its per-100 ms short-term readings by time."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path)]
        + ["-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    err = proc.stderr
    summary = err[err.rindex("Summary:") :]
    frames = re.findall(r"t:\s*([\d.]+)\s+TARGET:\S+ LUFS\s+M:\s*(-?[\d.]+) S:\s*(-?[\d.]+)", err)
    return {
        "I": float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)),
        "LRA": float(re.search(r"LRA:\s+(-?[\d.]+) LU", summary).group(1)),
        "peak": float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1)),
        "short_term": {round(float(t) * 10): float(s) for t, _, s in frames},
    }
