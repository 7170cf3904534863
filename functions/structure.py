"""Song structure on the beat grid: sections and clip boundaries.

Offers:
- ``find_sections(beat_features, beats_s, downbeats_s, duration_s, beat_loudness_db)``:
  boundaries where Foote's checkerboard novelty on a beat-synchronous self-similarity matrix
  peaks, moved to the nearest downbeat; sections grouped by similarity and named.
- ``clip_boundaries(beats_s, downbeats_s, duration_s, min_s=4.0, max_s=8.0)``: cut points for
  the music video, every clip 4-8 s long and starting on a downbeat where possible.
"""

from __future__ import annotations

import numpy as np

from shared.errors import InvalidAudio

MIN_SECTION_S = 6.0
# Half-width of the checkerboard kernel in beats: four bars of 4/4, the usual phrase length.
KERNEL_BEATS = 16
# Novelty (a correlation, -1..1) below this is timbre wobble, not a new section.
MIN_NOVELTY = 0.15
# Sections whose mean features are closer than this (cosine distance) are the same part.
SAME_PART_DISTANCE = 0.25


def _checkerboard(half: int) -> np.ndarray:
    """Gaussian-tapered checkerboard kernel ``(2*half, 2*half)`` whose absolute sum is 1."""
    x = np.arange(-half, half) + 0.5
    sign = np.sign(x)
    taper = np.exp(-0.5 * (x / (0.5 * half)) ** 2)
    kernel = np.outer(sign * taper, sign * taper)
    return kernel / np.abs(kernel).sum()


def novelty_curve(features: np.ndarray, half: int) -> np.ndarray:
    """Foote novelty per beat of ``features`` ``(dims, beats)`` (cosine self-similarity)."""
    unit = features / np.maximum(np.linalg.norm(features, axis=0, keepdims=True), 1e-9)
    ssm = unit.T @ unit
    n = ssm.shape[0]
    padded = np.pad(ssm, half, mode="edge")
    s0, s1 = padded.strides
    # Window i is padded[i:i+2h, i:i+2h]: the block centred on beat i of the original matrix.
    windows = np.lib.stride_tricks.as_strided(
        padded, shape=(n, 2 * half, 2 * half), strides=(s0 + s1, s0, s1), writeable=False
    )
    return np.einsum("ijk,jk->i", windows, _checkerboard(half))


def _pick_boundaries(novelty: np.ndarray, min_gap: int) -> list[int]:
    """Beat indices of the strongest novelty peaks, at least ``min_gap`` beats apart."""
    n = len(novelty)
    is_peak = np.zeros(n, bool)
    is_peak[1:-1] = (novelty[1:-1] > novelty[:-2]) & (novelty[1:-1] >= novelty[2:])
    chosen: list[int] = []
    for i in np.flatnonzero(is_peak)[np.argsort(-novelty[is_peak])]:
        if novelty[i] < MIN_NOVELTY:
            break
        if i >= min_gap and n - i >= min_gap and all(abs(i - j) >= min_gap for j in chosen):
            chosen.append(int(i))
    return sorted(chosen)


def _group_letters(means: np.ndarray) -> list[int]:
    """Cluster section feature means; group ids numbered in order of first appearance."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if means.shape[0] == 1:
        return [0]
    tree = linkage(means, method="average", metric="cosine")
    raw = fcluster(tree, t=SAME_PART_DISTANCE, criterion="distance")
    order: dict[int, int] = {}
    return [order.setdefault(int(g), len(order)) for g in raw]


def _name_sections(groups: list[int], loudness_db: list[float]) -> list[str]:
    """intro / verse / chorus / bridge / outro from repetition, position and loudness.

    The loudest part that comes back is the chorus; other parts that come back are verses;
    a one-off first or last part is the intro or outro; any other one-off is a bridge.
    """
    n = len(groups)
    if n == 1:
        return ["full"]
    counts = {g: groups.count(g) for g in groups}
    level = {g: np.mean([d for d, h in zip(loudness_db, groups, strict=True) if h == g]) for g in counts}
    repeated = [g for g in counts if counts[g] > 1]
    pool = repeated or list(counts)
    chorus = max(pool, key=lambda g: level[g])
    names = []
    for i, g in enumerate(groups):
        if g == chorus:
            names.append("chorus")
        elif counts[g] == 1 and i == 0 and n >= 3:
            names.append("intro")
        elif counts[g] == 1 and i == n - 1 and n >= 3:
            names.append("outro")
        elif counts[g] > 1 or not repeated:
            names.append("verse")
        else:
            names.append("bridge")
    return names


def find_sections(
    beat_features: np.ndarray,
    beats_s: np.ndarray,
    downbeats_s: np.ndarray,
    duration_s: float,
    beat_loudness_db: np.ndarray,
) -> list[dict]:
    """Sections ``[{start_s, end_s, label, group}]`` covering 0..duration_s.

    ``beat_features`` ``(dims, beats)`` are beat-synchronous (timbre and chroma); each dimension
    is standardised so that neither family dominates the similarity. ``group`` is a letter
    shared by sections that sound alike.
    """
    beats_s = np.asarray(beats_s, dtype=np.float64)
    n = len(beats_s)
    bounds_s = [0.0, float(duration_s)]
    if n >= 8:
        x = beat_features - beat_features.mean(axis=1, keepdims=True)
        x = x / np.maximum(x.std(axis=1, keepdims=True), 1e-9)
        half = max(2, min(KERNEL_BEATS, n // 4))
        beat_s = float(np.median(np.diff(beats_s)))
        min_gap = max(2, int(np.ceil(MIN_SECTION_S / beat_s)))
        cuts = [float(beats_s[i]) for i in _pick_boundaries(novelty_curve(x, half), min_gap)]
        if len(downbeats_s):
            db = np.asarray(downbeats_s, dtype=np.float64)
            cuts = [float(db[np.argmin(np.abs(db - c))]) for c in cuts]
        kept: list[float] = []
        for c in sorted(set(cuts)):
            if c - (kept[-1] if kept else 0.0) >= MIN_SECTION_S and duration_s - c >= MIN_SECTION_S:
                kept.append(c)
        bounds_s = [0.0, *kept, float(duration_s)]
    spans = list(zip(bounds_s[:-1], bounds_s[1:], strict=True))
    if n:
        seg = np.searchsorted(np.append(bounds_s[1:-1], np.inf), beats_s, side="right")
        means = np.stack(
            [
                beat_features[:, seg == k].mean(axis=1) if np.any(seg == k) else beat_features.mean(axis=1)
                for k in range(len(spans))
            ]
        )
        loud = [
            float(np.mean(beat_loudness_db[seg == k])) if np.any(seg == k) else -120.0
            for k in range(len(spans))
        ]
        groups = _group_letters(means)
    else:
        groups, loud = [0] * len(spans), [0.0] * len(spans)
    names = _name_sections(groups, loud)
    return [
        {"start_s": round(a, 3), "end_s": round(b, 3), "label": name, "group": chr(65 + g % 26)}
        for (a, b), name, g in zip(spans, names, groups, strict=True)
    ]


# Clip boundary costs: a cut on a downbeat is free, on another beat costs this much, and off
# the beat grid (only where the grid leaves a gap, e.g. a silent break) costs far more.
_BEAT_CUT_COST = 2.0
_GRID_CUT_COST = 8.0
_GRID_STEP_S = 0.25


def clip_boundaries(
    beats_s, downbeats_s, duration_s: float, min_s: float = 4.0, max_s: float = 8.0
) -> list[float]:
    """Cut times ``[0, ..., duration_s]`` splitting the track into clips of ``min_s..max_s``.

    At least three clips. Cuts fall on downbeats where possible, else on beats, else on a
    0.25 s grid, and clips near the middle of the range are preferred; a dynamic programme
    over all candidate cuts finds the cheapest plan, so one always exists when the track is
    long enough.

    Raises InvalidAudio ``TOO_SHORT`` when ``duration_s`` < ``3 * min_s`` (three clips cannot
    fit); callers that only want boundaries when possible (the analyze kind) catch it.
    """
    if not 0 < min_s <= max_s / 2 + 1e-9:
        raise ValueError("clip_boundaries needs 0 < min_s <= max_s / 2")
    duration_s = float(duration_s)
    if duration_s < 3 * min_s:
        raise InvalidAudio(
            f"The track is {duration_s:.1f} s long; at least {3 * min_s:.0f} s are needed "
            f"for three clips of {min_s:.0f}-{max_s:.0f} s.",
            code="TOO_SHORT",
        )
    eps = 1e-6
    times = [0.0, duration_s]
    costs = [0.0, 0.0]
    for ts, cost in (
        (downbeats_s, 0.0),
        (beats_s, _BEAT_CUT_COST),
        (np.arange(_GRID_STEP_S, duration_s, _GRID_STEP_S), _GRID_CUT_COST),
    ):
        ts = np.asarray(ts, dtype=np.float64)
        ts = ts[(ts > eps) & (ts < duration_s - eps)]
        times.extend(ts.tolist())
        costs.extend([cost] * len(ts))
    order = np.lexsort((np.asarray(costs), np.asarray(times)))  # by time, cheapest first
    t = np.asarray(times)[order]
    c = np.asarray(costs)[order]
    keep = np.concatenate([[True], np.diff(t) > 1e-3])  # one candidate per instant: the cheapest
    t, c = t[keep], c[keep]
    target, half_range = (min_s + max_s) / 2, (max_s - min_s) / 2
    n = len(t)
    # best[k, i]: cheapest plan reaching cut i with k+1 clips (k == 2 means 3 or more).
    best = np.full((3, n), np.inf)
    back = np.full((3, n), -1, dtype=np.int64)
    for i in range(1, n):
        lo = np.searchsorted(t, t[i] - max_s - eps, side="left")
        hi = np.searchsorted(t, t[i] - min_s + eps, side="right")
        if hi <= lo:
            continue
        j = np.arange(lo, hi)
        step = c[i] + ((t[i] - t[j] - target) / half_range) ** 2
        if lo == 0:
            best[0, i], back[0, i] = step[0], 0
        for k, prev in ((1, best[0, j]), (2, np.minimum(best[1, j], best[2, j]))):
            total = prev + step
            m = int(np.argmin(total))
            if np.isfinite(total[m]):
                best[k, i], back[k, i] = total[m], j[m]
    if not np.isfinite(best[2, -1]):
        raise InvalidAudio("No clip plan fits this track.", code="TOO_SHORT")
    cuts, i, k = [n - 1], n - 1, 2
    while i > 0:
        j = int(back[k, i])
        if k == 2:
            k = 2 if np.isfinite(best[2, j]) and best[2, j] <= best[1, j] else 1
        else:
            k -= 1
        cuts.append(j)
        i = j
    return [round(float(t[i]), 3) for i in reversed(cuts)]
