"""Where a music video may cut: beats merged with onsets, and beat-aligned clip slots.

Offers:
- ``merge_beats_with_onsets(beats_s, onsets_s, tolerance_s=0.05)``: one sorted list of cut
  candidates; an onset within 50 ms of a beat is the same event (the beat's time is kept).
- ``detect_onsets(audio)``: librosa's onset detector; its strongest onsets are the accents
  merged into the cut candidates (hits a beat tracker can miss, e.g. pushes ahead of the bar).
- ``beat_onset_agreement(beats_s, onsets_s)``: the share of beats an onset confirms: the beat
  confidence the 0.6 threshold applies to.
- ``tempo_grid(tempo_bpm, first_beat_s, duration_s)``: the fallback grid when beat confidence
  is low: beats from the tempo, boundaries every 4 beats.
- ``video_timing(audio, analysis)``: the ``audio_analysis`` stage's answer on top of
  ``functions.analysis.analyze_audio``: cut candidates, method, clip boundaries (4-8 s, at least
  3 clips) and the slots with the section each falls in.
- ``snap_to_beat(t, beats_s)``.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from functions.audio_io import Audio

# A video needs at least this many shots (slots, and clips that succeed).
MIN_CLIPS = 3

DUPLICATE_S = 0.05
LOW_CONFIDENCE = 0.6
MIN_CLIP_S = 4.0
MAX_CLIP_S = 8.0
ANALYSIS_SR = 22050
BEATS_VERSION = "v1"


def merge_beats_with_onsets(
    beats_s: list[float], onsets_s: list[float], tolerance_s: float = DUPLICATE_S
) -> list[float]:
    """Beats plus onsets, sorted, with events closer than ``tolerance_s`` counted once.

    A beat wins over an onset it duplicates (the grid is what the cuts follow); of two onsets
    closer than the tolerance the earlier stays.
    """
    tagged = sorted([(float(t), 0) for t in beats_s] + [(float(t), 1) for t in onsets_s])
    out: list[tuple[float, int]] = []
    for t, kind in tagged:
        if out and t - out[-1][0] < tolerance_s:
            if kind == 0 and out[-1][1] == 1:
                out[-1] = (t, 0)  # the beat replaces the onset it duplicates
            continue
        out.append((t, kind))
    return [round(t, 4) for t, _ in out]


def detect_onsets(
    audio: Audio, *, accent_percentile: float = 90.0
) -> tuple[list[float], list[float]]:
    """Onset times (s) from librosa's detector, and the accents among them: the onsets whose
    strength is in the top ``100 - accent_percentile`` % (drum hits, not hats)."""
    import librosa

    y = audio.mono().astype(np.float32)
    sr = audio.sample_rate
    # ~23 ms hop at any rate (512 at 22.05 kHz): no resampling pass needed.
    hop = int(2 ** round(np.log2(sr * 512 / ANALYSIS_SR)))
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop)
    if env.size == 0 or not np.any(env > 0):
        return [], []
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=hop, units="frames")
    if len(frames) == 0:
        return [], []
    strong = frames[env[frames] >= np.percentile(env[frames], accent_percentile)]

    def times(f: np.ndarray) -> list[float]:
        return [round(float(t), 4) for t in librosa.frames_to_time(f, sr=sr, hop_length=hop)]

    return times(frames), times(strong)


def beat_onset_agreement(
    beats_s: list[float], onsets_s: list[float], tolerance_s: float = DUPLICATE_S
) -> float:
    """Share of beats that an onset confirms within ``tolerance_s``: 0..1.

    Two independent detectors agreeing is what makes a beat safe to cut on; this is the
    confidence the 0.6 threshold applies to (the analysis' own ``beat_confidence`` measures how
    periodic the onset curve is, a different scale: ~0.5 even for a metronomic song).
    """
    if not beats_s or not onsets_s:
        return 0.0
    onsets = np.sort(np.asarray(onsets_s, dtype=float))
    beats = np.asarray(beats_s, dtype=float)
    i = np.searchsorted(onsets, beats)
    left = onsets[np.clip(i - 1, 0, len(onsets) - 1)]
    right = onsets[np.clip(i, 0, len(onsets) - 1)]
    nearest = np.minimum(np.abs(beats - left), np.abs(right - beats))
    return float(np.mean(nearest <= tolerance_s + 1e-9))


def tempo_grid(
    tempo_bpm: float, first_beat_s: float, duration_s: float
) -> tuple[list[float], list[float]]:
    """Beats every 60/tempo s from ``first_beat_s``, and "downbeats" every 4 of them."""
    period = 60.0 / max(30.0, float(tempo_bpm))
    start = float(first_beat_s) % period
    beats = np.arange(start, duration_s - 1e-6, period)
    return [round(float(b), 4) for b in beats], [round(float(b), 4) for b in beats[::4]]


def snap_to_beat(t: float, beats_s: list[float]) -> float:
    """The candidate nearest to ``t`` (``t`` itself when there are none)."""
    if not beats_s:
        return t
    i = bisect.bisect_left(beats_s, t)
    near = [beats_s[j] for j in (i - 1, i) if 0 <= j < len(beats_s)]
    return min(near, key=lambda b: abs(b - t))


def _section_at(t0: float, t1: float, sections: list[dict[str, Any]]) -> str:
    best, best_overlap = "", 0.0
    for s in sections:
        overlap = min(t1, float(s["end_s"])) - max(t0, float(s["start_s"]))
        if overlap > best_overlap:
            best, best_overlap = str(s.get("label", "")), overlap
    return best or "section"


def build_slots(
    boundaries_s: list[float], duration_s: float, sections: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Slots ``[{index, start_s, end_s, section}]`` covering 0..duration_s."""
    # Rounded and de-duplicated first: two cuts snapped to the same beat would otherwise make
    # a zero-length slot (a shot of no time).
    inner = sorted({round(float(b), 4) for b in boundaries_s if 0.5 < b < duration_s - 0.5})
    edges = [0.0, *inner, round(float(duration_s), 4)]
    return [
        {
            "index": i,
            "start_s": round(edges[i], 4),
            "end_s": round(edges[i + 1], 4),
            "section": _section_at(edges[i], edges[i + 1], sections),
        }
        for i in range(len(edges) - 1)
    ]


def add_slot_energy(audio: Audio, slots: list[dict[str, Any]]) -> None:
    """Set each slot's ``energy``: its RMS level in dB mapped to 0..1 across the song's slots."""
    y = audio.mono()
    sr = audio.sample_rate
    levels = []
    for s in slots:
        seg = y[int(s["start_s"] * sr) : int(s["end_s"] * sr)]
        rms = float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if seg.size else 0.0
        levels.append(20 * np.log10(max(rms, 1e-6)))
    lo, hi = min(levels), max(levels)
    for s, level in zip(slots, levels, strict=True):
        # A song whose slots are all equally loud sits in the middle, not at an extreme.
        s["energy"] = round((level - lo) / (hi - lo), 3) if hi - lo > 1.0 else 0.5


def video_timing(audio: Audio, analysis: dict[str, Any]) -> dict[str, Any]:
    """Cut candidates and clip slots for a video from ``analyze_audio``'s output.

    Beats are merged with strong onsets; below ``LOW_CONFIDENCE`` beat confidence the tempo
    grid replaces them and boundaries fall every 4 beats (confidence: ``beat_onset_agreement``). Boundaries come from the analysis
    module's ``clip_boundaries`` (4-8 s), with at least 3 slots.
    """
    from functions.analysis import clip_boundaries

    duration_s = float(analysis.get("duration_s") or audio.duration_s)
    beats = [float(b) for b in analysis.get("beats_s") or []]
    downbeats = [float(b) for b in analysis.get("downbeats_s") or []]
    tempo = float(analysis.get("tempo_bpm") or 120.0)
    onsets, accents = detect_onsets(audio)
    confidence = beat_onset_agreement(beats, onsets)
    if confidence >= LOW_CONFIDENCE and len(beats) >= 4:
        candidates = merge_beats_with_onsets(beats, accents)
        method = "beats+onsets"
        grid_downbeats = downbeats or beats[::4]
    else:
        candidates, grid_downbeats = tempo_grid(tempo, beats[0] if beats else 0.0, duration_s)
        accents = []
        method = "tempo grid (low beat confidence)"
    # 4-8 s clips, at least 3, on downbeats where possible (raises TOO_SHORT under 12 s).
    bounds = clip_boundaries(candidates, grid_downbeats, duration_s, MIN_CLIP_S, MAX_CLIP_S)
    sections = list(analysis.get("sections") or [])
    slots = build_slots([float(b) for b in bounds], duration_s, sections)
    add_slot_energy(audio, slots)
    return {
        "duration_s": round(duration_s, 4),
        "tempo_bpm": round(tempo, 2),
        "beat_confidence": round(confidence, 3),
        "analysis_beat_confidence": analysis.get("beat_confidence"),
        "method": method,
        "beats_s": beats,
        "accents_s": accents,
        "cut_candidates_s": candidates,
        "downbeats_s": grid_downbeats,
        "sections": sections,
        "key": analysis.get("key"),
        "slots": slots,
    }
