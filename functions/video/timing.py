"""Where a music video may cut: beats merged with onsets, and beat-aligned clip slots.

Offers:
- ``merge_beats_with_onsets(beats_s, onsets_s, tolerance_s=0.05)``: one sorted list of cut
  candidates; an onset within 50 ms of a beat is the same event (the beat's time is kept).
- ``detect_accents(audio)``: strong onsets (librosa's onset detector, peak-picked on the
  onset-strength envelope) that a beat tracker can miss, e.g. pushes ahead of the bar.
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

DUPLICATE_S = 0.05
LOW_CONFIDENCE = 0.6
MIN_CLIP_S = 4.0
MAX_CLIP_S = 8.0
MIN_SLOTS = 3
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


def detect_accents(audio: Audio, *, percentile: float = 90.0) -> list[float]:
    """Onset times (s) whose strength is in the top ``100 - percentile`` %: hits, not hats."""
    import librosa

    y = audio.mono().astype(np.float32)
    sr = audio.sample_rate
    # ~23 ms hop at any rate (512 at 22.05 kHz): no resampling pass needed.
    hop = int(2 ** round(np.log2(sr * 512 / ANALYSIS_SR)))
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop)
    if env.size == 0 or not np.any(env > 0):
        return []
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=hop, units="frames")
    if len(frames) == 0:
        return []
    threshold = np.percentile(env[frames], percentile)
    strong = frames[env[frames] >= threshold]
    return [round(float(t), 4) for t in librosa.frames_to_time(strong, sr=sr, hop_length=hop)]


def tempo_grid(tempo_bpm: float, first_beat_s: float, duration_s: float) -> tuple[list[float], list[float]]:
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


def _ensure_min_slots(bounds: list[float], candidates: list[float], minimum: int) -> list[float]:
    """Split the longest slot on its middle candidate until there are ``minimum`` slots."""
    bounds = sorted(set(bounds))
    while len(bounds) - 1 < minimum:
        spans = [(bounds[i + 1] - bounds[i], i) for i in range(len(bounds) - 1)]
        _, i = max(spans)
        lo, hi = bounds[i], bounds[i + 1]
        inner = [c for c in candidates if lo + 0.5 < c < hi - 0.5]
        mid = snap_to_beat((lo + hi) / 2, inner) if inner else (lo + hi) / 2
        if not lo < mid < hi:
            break
        bounds.insert(i + 1, round(mid, 4))
    return bounds


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
    inner = sorted(b for b in boundaries_s if 0.5 < b < duration_s - 0.5)
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
    grid replaces them and boundaries fall every 4 beats. Boundaries come from the analysis
    module's ``clip_boundaries`` (4-8 s), with at least 3 slots.
    """
    from functions.analysis import clip_boundaries

    duration_s = float(analysis.get("duration_s") or audio.duration_s)
    beats = [float(b) for b in analysis.get("beats_s") or []]
    downbeats = [float(b) for b in analysis.get("downbeats_s") or []]
    confidence = float(analysis.get("beat_confidence") or 0.0)
    tempo = float(analysis.get("tempo_bpm") or 120.0)
    if confidence >= LOW_CONFIDENCE and len(beats) >= 4:
        accents = detect_accents(audio)
        candidates = merge_beats_with_onsets(beats, accents)
        method = "beats+onsets"
        grid_downbeats = downbeats or beats[::4]
        bounds = clip_boundaries(candidates, grid_downbeats, duration_s, MIN_CLIP_S, MAX_CLIP_S)
    else:
        first = beats[0] if beats else 0.0
        candidates, grid_downbeats = tempo_grid(tempo, first, duration_s)
        accents = []
        method = "tempo grid (low beat confidence)"
        bounds = clip_boundaries(candidates, grid_downbeats, duration_s, MIN_CLIP_S, MAX_CLIP_S)
    bounds = [float(b) for b in bounds]
    inner = [b for b in bounds if 0.5 < b < duration_s - 0.5]
    inner = _ensure_min_slots([0.0, *inner, duration_s], candidates, MIN_SLOTS)[1:-1]
    sections = list(analysis.get("sections") or [])
    slots = build_slots(inner, duration_s, sections)
    add_slot_energy(audio, slots)
    return {
        "duration_s": round(duration_s, 4),
        "tempo_bpm": round(tempo, 2),
        "beat_confidence": round(confidence, 3),
        "method": method,
        "beats_s": beats,
        "accents_s": accents,
        "cut_candidates_s": candidates,
        "downbeats_s": grid_downbeats,
        "sections": sections,
        "key": analysis.get("key"),
        "slots": slots,
    }
