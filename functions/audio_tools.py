"""The audio operations the infrastructure needs (``shared.audio_port.AudioTools``), built from
``audio_io``, ``audio_stream`` and ``loudness``. Composers hand ``AUDIO_TOOLS`` to
``open_services(audio=...)``; ``shared`` never imports this module."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from functions.audio_io import Audio, inspect_audio, load_audio, probe, sniff_format
from functions.audio_stream import CONTENT_TYPES, match_channels
from functions.loudness import integrated_lufs
from shared.audio_port import FileLoudness, LoudnessDifference


class FileAudioTools:
    """Reads audio files with libsndfile, or ffmpeg for what libsndfile can't read."""

    def sniff_format(self, path: Path) -> str | None:
        return sniff_format(path)

    def probe(self, path: Path) -> dict[str, Any]:
        return probe(path)

    def inspect_audio(self, path: Path) -> dict[str, Any]:
        return inspect_audio(path)

    def content_type(self, fmt: str) -> str | None:
        return CONTENT_TYPES.get(fmt)

    def file_loudness(self, path: Path) -> FileLoudness:
        audio = load_audio(path)
        return FileLoudness(integrated_lufs(audio), audio.duration_s)

    def difference_loudness(self, a: Path, b: Path) -> LoudnessDifference:
        xa = load_audio(a)
        xb = load_audio(b, sr=xa.sample_rate)
        ch = max(xa.channels, xb.channels)
        da, db = match_channels(xa.samples, ch), match_channels(xb.samples, ch)
        n = max(da.shape[1], db.shape[1])
        diff = np.zeros((ch, n), dtype=np.float32)
        diff[:, : db.shape[1]] += db
        diff[:, : da.shape[1]] -= da
        rms = float(np.sqrt(np.mean(diff.astype(np.float64) ** 2))) if n else 0.0
        rms_dbfs = 20 * math.log10(rms) if rms > 0 else -math.inf
        return LoudnessDifference(integrated_lufs(Audio(diff, xa.sample_rate)), rms_dbfs)


AUDIO_TOOLS = FileAudioTools()
