"""Song structure on the beat grid: sections and clip boundaries.

Offers:
- ``find_sections(beat_features, beats_s, downbeats_s, duration_s, beat_loudness_db)``:
  boundaries where beat-synchronous timbre and harmony change (a two-window mean-shift test
  over four bars each side), moved to the nearest downbeat; alike sections grouped and named.
- ``clip_boundaries(beats_s, downbeats_s, duration_s, min_s=4.0, max_s=8.0)``: cut points for
  the music video, every clip 4-8 s long and starting on a downbeat where possible.
"""

from __future__ import annotations

import numpy as np

from shared.errors import InvalidAudio

# Each side of a candidate boundary is compared over this many bars: four bars hold a whole
# cycle of the usual chord loop, so a loop that merely goes round does not look like a change.
WINDOW_BARS = 4
# A boundary needs the feature means on its two sides to differ by this many pooled standard
# deviations squared (averaged over features); a chord loop going round scores ~0.01, a new
# key or instrumentation 0.3 and up.
MIN_CHANGE = 0.2
# Sections whose features differ by less than this (same measure) are the same part.
SAME_PART = 0.2


def _change_score(a_mean, a_var, b_mean, b_var, floor) -> np.ndarray:
    """Squared mean difference over pooled variance, averaged over feature dimensions."""
    return np.mean((a_mean - b_mean) ** 2 / (a_var + b_var + floor), axis=0)


def change_curve(features: np.ndarray, window: int) -> np.ndarray:
    """Per beat, how much the ``window`` beats after it differ from the ``window`` before.

    ``features`` is ``(dims, beats)``; beats closer than ``window`` to either end score 0.
    A two-window mean-shift test normalised by the local spread: unlike a checkerboard
    kernel on a globally normalised self-similarity matrix, a homogeneous track scores near
    zero instead of having its smallest wobbles blown up.
    """
    d, n = features.shape
    out = np.zeros(n)
    if n < 2 * window:
        return out
    zero = np.zeros((d, 1))
    s1 = np.concatenate([zero, np.cumsum(features, axis=1)], axis=1)
    s2 = np.concatenate([zero, np.cumsum(features**2, axis=1)], axis=1)
    i = np.arange(window, n - window + 1)
    left_mean = (s1[:, i] - s1[:, i - window]) / window
    right_mean = (s1[:, i + window] - s1[:, i]) / window
    left_var = np.maximum(0.0, (s2[:, i] - s2[:, i - window]) / window - left_mean**2)
    right_var = np.maximum(0.0, (s2[:, i + window] - s2[:, i]) / window - right_mean**2)
    score = _change_score(left_mean, left_var, right_mean, right_var, _floor(features))
    out[i] = score
    return out


def _floor(features: np.ndarray) -> np.ndarray:
    # Variance floor (5% of each feature's spread) so a perfectly steady synthetic feature
    # cannot turn a rounding difference into an infinite score.
    return (0.05 * features.std(axis=1, keepdims=True)) ** 2 + 1e-12


def _pick_boundaries(score: np.ndarray, min_gap: int) -> list[int]:
    """Beat indices of the strongest change peaks above ``MIN_CHANGE``, ``min_gap`` apart."""
    n = len(score)
    is_peak = np.zeros(n, bool)
    is_peak[1:-1] = (score[1:-1] > score[:-2]) & (score[1:-1] >= score[2:])
    chosen: list[int] = []
    for i in np.flatnonzero(is_peak)[np.argsort(-score[is_peak], kind="stable")]:
        if score[i] < MIN_CHANGE:
            break
        if all(abs(i - j) >= min_gap for j in chosen):
            chosen.append(int(i))
    return sorted(chosen)


def _group_parts(features: np.ndarray, segment: np.ndarray, count: int) -> list[int]:
    """Group ids per section (numbered by first appearance); alike sections share one."""
    if count == 1:
        return [0]
    floor = _floor(features)
    stats = [
        (
            features[:, segment == k].mean(axis=1, keepdims=True),
            features[:, segment == k].var(axis=1, keepdims=True),
        )
        for k in range(count)
    ]
    dist = np.zeros((count, count))
    for a in range(count):
        for b in range(a + 1, count):
            dist[a, b] = dist[b, a] = float(_change_score(*stats[a], *stats[b], floor)[0])
    raw = average_linkage_clusters(dist, SAME_PART)
    order: dict[int, int] = {}
    return [order.setdefault(int(g), len(order)) for g in raw]


def average_linkage_clusters(dist: np.ndarray, threshold: float) -> list[int]:
    """Flat clusters of average-linkage (UPGMA) clustering cut at ``threshold``, as scipy's
    ``fcluster(linkage(..., "average"), threshold, "distance")`` forms them: the closest pair of
    clusters merges while their mean pairwise distance is at most ``threshold``. A cluster id
    per item; a few sections only, so the plain loop is instant."""
    n = len(dist)
    d = np.array(dist, dtype=np.float64)
    np.fill_diagonal(d, np.inf)
    size = np.ones(n)
    label = list(range(n))
    active = list(range(n))
    while len(active) > 1:
        sub = d[np.ix_(active, active)]
        i, j = divmod(int(np.argmin(sub)), len(active))
        if sub[i, j] > threshold:
            break
        a, b = active[i], active[j]
        merged = (size[a] * d[a] + size[b] * d[b]) / (size[a] + size[b])
        d[a], d[:, a] = merged, merged
        d[a, a] = np.inf
        size[a] += size[b]
        label = [a if g == b else g for g in label]
        active.remove(b)
    return label


def _name_sections(groups: list[int], loudness_db: list[float]) -> list[str]:
    """intro / verse / chorus / bridge / outro from repetition, position and loudness.

    The loudest part that comes back is the chorus; other parts that come back are verses;
    a one-off first or last part is the intro or outro; any other one-off is a bridge. With
    nothing repeated, the loudest part is the chorus and the others verses.
    """
    n = len(groups)
    if n == 1:
        return ["full"]
    counts = {g: groups.count(g) for g in groups}
    level = {
        g: np.mean([d for d, h in zip(loudness_db, groups, strict=True) if h == g]) for g in counts
    }
    repeated = [g for g in counts if counts[g] > 1]
    chorus = max(repeated or list(counts), key=lambda g: level[g])
    names = []
    for i, g in enumerate(groups):
        if g == chorus:
            names.append("chorus")
        elif counts[g] == 1 and repeated and i == 0:
            names.append("intro")
        elif counts[g] == 1 and repeated and i == n - 1:
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
    beats_per_bar: int = 4,
) -> list[dict]:
    """Sections ``[{start_s, end_s, label, group}]`` covering 0..duration_s.

    ``beat_features`` ``(dims, beats)`` are beat-synchronous (timbre and chroma). Boundaries
    are peaks of ``change_curve`` over ``WINDOW_BARS`` bars, moved to the nearest downbeat;
    neighbouring sections that turn out alike are merged. ``group`` is a letter shared by
    sections that sound alike; ``label`` names the part (see ``_name_sections``).
    """
    beats_s = np.asarray(beats_s, dtype=np.float64)
    window = WINDOW_BARS * beats_per_bar
    cuts: list[float] = []
    if len(beats_s) >= 2 * window:
        peaks = _pick_boundaries(change_curve(beat_features, window), window)
        cuts = [float(beats_s[i]) for i in peaks]
        if len(downbeats_s):
            db = np.asarray(downbeats_s, dtype=np.float64)
            cuts = sorted({float(db[np.argmin(np.abs(db - c))]) for c in cuts})
    bounds = [0.0, *[c for c in cuts if 0.0 < c < duration_s], float(duration_s)]
    segment = np.searchsorted(np.asarray(bounds[1:-1]), beats_s, side="right")
    if len(beats_s) and len(set(segment.tolist())) == len(bounds) - 1:
        groups = _group_parts(beat_features, segment, len(bounds) - 1)
        # A boundary between two alike neighbours marks no change of part: drop it.
        keep = [0] + [k for k in range(1, len(groups)) if groups[k] != groups[k - 1]]
        bounds = [bounds[k] for k in keep] + [float(duration_s)]
        groups = [groups[k] for k in keep]
        segment = np.searchsorted(np.asarray(bounds[1:-1]), beats_s, side="right")
        loud = [float(np.mean(beat_loudness_db[segment == k])) for k in range(len(groups))]
    else:
        bounds, groups, loud = [0.0, float(duration_s)], [0], [0.0]
    order: dict[int, int] = {}
    groups = [order.setdefault(g, len(order)) for g in groups]
    names = _name_sections(groups, loud)
    return [
        {"start_s": round(a, 3), "end_s": round(b, 3), "label": name, "group": chr(65 + g % 26)}
        for a, b, name, g in zip(bounds[:-1], bounds[1:], names, groups, strict=True)
    ]


# Clip boundary costs: a cut on a downbeat is free, on another beat costs this much, and off
# the beat grid (only where the grid leaves a gap, e.g. a silent break) costs far more.
_BEAT_CUT_COST = 2.0
_GRID_CUT_COST = 8.0
_GRID_STEP_S = 0.25


def _gap_fillers(beats_s: np.ndarray, duration_s: float) -> np.ndarray:
    """Off-grid cut candidates every ``_GRID_STEP_S`` inside gaps of the beat grid longer than
    a second (intro before the first beat, breaks, the tail), so a plan always exists."""
    edges = np.concatenate([[0.0], beats_s[(beats_s > 0) & (beats_s < duration_s)], [duration_s]])
    fill = [
        np.arange(a + _GRID_STEP_S, b, _GRID_STEP_S)
        for a, b in zip(edges[:-1], edges[1:], strict=True)
        if b - a > 1.0
    ]
    return np.concatenate(fill) if fill else np.zeros(0)


def clip_boundaries(
    beats_s, downbeats_s, duration_s: float, min_s: float = 4.0, max_s: float = 8.0
) -> list[float]:
    """Cut times ``[0, ..., duration_s]`` splitting the track into clips of ``min_s..max_s``.

    At least three clips. Cuts fall on downbeats where possible, else on beats, else (in
    gaps of the beat grid, or when the grid cannot be split at all) on a 0.25 s grid, and
    clips near the middle of the range are preferred; a dynamic programme over all candidate
    cuts finds the cheapest plan, so one always exists when the track is long enough.

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
    beats = np.asarray(beats_s, dtype=np.float64)
    downbeats = np.asarray(downbeats_s, dtype=np.float64)
    fillers = _gap_fillers(np.union1d(beats, downbeats), duration_s)
    cuts = _cheapest_plan(downbeats, beats, fillers, duration_s, min_s, max_s)
    if cuts is None:
        # The beat grid cannot be split into clips of this range (e.g. 12.0 s of 60 BPM
        # beats starting at 0.2 s): cut anywhere on the fine grid instead.
        full_grid = np.arange(_GRID_STEP_S, duration_s, _GRID_STEP_S)
        cuts = _cheapest_plan(downbeats, beats, full_grid, duration_s, min_s, max_s)
    if cuts is None:  # unreachable for duration_s >= 3 * min_s, kept as a clear error
        raise InvalidAudio("No plan of clips fits this track.", code="TOO_SHORT")
    return cuts


def _cheapest_plan(
    downbeats: np.ndarray,
    beats: np.ndarray,
    fillers: np.ndarray,
    duration_s: float,
    min_s: float,
    max_s: float,
) -> list[float] | None:
    """Dynamic programme over candidate cuts; None when no plan of >= 3 clips exists."""
    eps = 1e-6
    times, costs = [0.0, duration_s], [0.0, 0.0]
    for ts, cost in ((downbeats, 0.0), (beats, _BEAT_CUT_COST), (fillers, _GRID_CUT_COST)):
        ts = ts[(ts > 1e-3) & (ts < duration_s - 1e-3)]
        times.extend(ts.tolist())
        costs.extend([cost] * len(ts))
    order = np.lexsort((np.asarray(costs), np.asarray(times)))  # by time, cheapest first
    t, c = np.asarray(times)[order], np.asarray(costs)[order]
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
        return None
    cuts, i, k = [n - 1], n - 1, 2
    while i > 0:
        j = int(back[k, i])
        k = (2 if best[2, j] <= best[1, j] else 1) if k == 2 else k - 1
        cuts.append(j)
        i = j
    return [round(float(t[i]), 3) for i in reversed(cuts)]
