"""Decoding a rendered video back to pixels, for the video tests' checks of what is on screen."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from functions.ffmpeg_command import ffmpeg_exe


def grey_frames(path: Path, w: int, h: int, scale_flags: str | None = None) -> np.ndarray:
    """Every frame of ``path`` scaled to ``w`` x ``h`` grey, as float ``(frames, h, w)``."""
    scale = f"scale={w}:{h}" + (f":flags={scale_flags}" if scale_flags else "")
    raw = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-vf",
            scale,
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w).astype(float)
