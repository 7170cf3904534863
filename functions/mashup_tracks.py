"""What a mashup decision needs to know about each track, measured from its signal and analysis.

Offers:
- ``TrackInfo``: one track's tempo (and its octave candidates), key, downbeats, metre,
  duration, energy, how much of it is voice and drums, and where the voice enters.
- ``describe_track(index, filename, analysis, mix_rms=, stem_rms=, voice_entry_s=)``: a
  ``TrackInfo`` from ``analyze_audio``'s result and the levels below.
- ``file_rms(path)``: the RMS level of a file, read block by block.
- ``vocal_entry_s(vocals)``: where the voice's level first gets going.

The decisions themselves are ``functions.mashup``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from functions.audio_io import Audio
from functions.audio_stream import BlockReader
from functions.music.theory import Key, parse_key


@dataclass
class TrackInfo:
    index: int
    filename: str
    tempo_bpm: float
    key: Key
    downbeats_s: list[float]
    duration_s: float
    energy: float  # 0..1: tempo and how much of the track is drums
    vocal_share: float  # RMS of the vocal stem over RMS of the mix
    drum_share: float
    vocal_entry_s: float  # where the voice first gets going
    # The analysis' tempo candidates [(bpm, confidence)]: the tempo, its half and double.
    tempo_candidates: list[tuple[float, float]] = field(default_factory=list)
    beats_per_bar: int = 4

    def tempo_levels(self) -> list[tuple[float, float]]:
        """``[(bpm, confidence)]``: the reported tempo first, then its plausible octaves."""
        levels = [(self.tempo_bpm, 1.0)]
        for bpm, conf in self.tempo_candidates:
            if conf > 0.0 and abs(math.log2(bpm / self.tempo_bpm)) > 0.5:
                levels.append((bpm, conf))
        return levels


def file_rms(path: str | Path) -> float:
    """RMS level of an audio file, read block by block (stems of long tracks stay on disk)."""
    total, frames = 0.0, 0
    with BlockReader(path) as reader:
        step = 30 * reader.sample_rate
        for start in range(0, reader.frames, step):
            block = reader.read(start, min(reader.frames, start + step)).astype(np.float64)
            total += float(np.sum(block**2)) / block.shape[0]
            frames += block.shape[1]
    return (total / max(1, frames)) ** 0.5


def vocal_entry_s(vocals: Audio, threshold_ratio: float = 0.3, window_s: float = 0.5) -> float:
    """First time the voice's short-term level reaches ``threshold_ratio`` of its loudest."""
    mono = vocals.mono()
    hop = max(1, int(window_s * vocals.sample_rate))
    frames = mono[: len(mono) // hop * hop].reshape(-1, hop)
    if frames.size == 0:
        return 0.0
    level = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    above = np.nonzero(level >= threshold_ratio * level.max())[0]
    return float(above[0] * hop / vocals.sample_rate) if above.size else 0.0


def describe_track(
    index: int,
    filename: str,
    analysis: dict,
    *,
    mix_rms: float,
    stem_rms: dict[str, float],
    voice_entry_s: float,
) -> TrackInfo:
    """The facts the decisions use: ``analyze_audio``'s result, the RMS of the track and of its
    stems (how much of it is voice, how much drums) and where the voice enters."""
    mix_rms = mix_rms or 1e-9
    drum_share = stem_rms.get("drums", 0.0) / mix_rms
    vocal_share = stem_rms.get("vocals", 0.0) / mix_rms
    tempo = float(analysis["tempo_bpm"]) or 120.0
    energy = float(
        np.clip(0.5 * (tempo - 70.0) / 90.0 + 0.5 * min(1.0, drum_share / 0.6), 0.0, 1.0)
    )
    return TrackInfo(
        index=index,
        filename=filename,
        tempo_bpm=tempo,
        key=parse_key(analysis["key"]),
        downbeats_s=[float(t) for t in analysis.get("downbeats_s") or [0.0]],
        duration_s=float(analysis["duration_s"]),
        energy=round(energy, 3),
        vocal_share=round(vocal_share, 3),
        drum_share=round(drum_share, 3),
        vocal_entry_s=voice_entry_s,
        tempo_candidates=[
            (float(c["bpm"]), float(c["confidence"])) for c in analysis.get("tempo_candidates", [])
        ],
        beats_per_bar=int(str(analysis.get("time_signature", "4/4")).split("/")[0] or 4),
    )
