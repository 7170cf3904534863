"""Rhythm from an onset-strength curve: tempo, beats, downbeats and metre, with no JIT.

librosa's beat tracker compiles with numba on first use (tens of seconds in a cold process);
everything here is plain numpy so the first call costs what every call costs.

Offers:
- ``onset_strength(mel_db)``: spectral flux of a log-mel spectrogram, one value per frame.
- ``estimate_tempo(onset, frame_rate_hz, accent)``: the beat period: autocorrelation finds
  the pulse family, ``tempo_levels`` scores its levels (prior, periodicity, drum pattern).
- ``detect_beats(onset, frame_rate_hz, accent=, kick=)``: :class:`BeatTrack` from Ellis'
  dynamic-programming tracker, vectorised in blocks of half a beat, its phase checked
  against the kick drum (``_align_to_kicks``).
- ``tempo_from_beats(beats_s)``: tempo from a line fitted through beat times.
- ``tempo_prior_log(bpm)``: how much people favour tapping at ``bpm`` (log of the prior).
- ``beat_sync(features, frame_rate_hz, beats_s, duration_s)``: features averaged per beat.
- ``detect_downbeats(beats_s, low_onset, beat_chroma, frame_rate_hz)``: bar phase and beats per
  bar from where the bass hits and where the harmony changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from functions.running_extrema import running_max

MIN_BPM = 50.0
MAX_BPM = 220.0
# How people choose among the levels of one pulse family (see ``tempo_levels``): a log-normal
# prior around PRIOR_BPM, the level's own periodicity, and the drum pattern's offbeat ratio
# (half-way onsets over on-pulse onsets; above OFFBEAT_NEUTRAL the double is favoured).
PRIOR_BPM = 110.0
PRIOR_OCTAVES = 0.5
PERIODICITY_WEIGHT = 2.0
OFFBEAT_WEIGHT = 2.2
OFFBEAT_NEUTRAL = 0.45
# Beats sit where the kick drum is: the tracked phase is moved half a beat when a kick plays
# on at least this share of the half-way points, and on 1.5 times as many of them as of the
# beats (see ``_align_to_kicks``). Syncopated kicks (trap, drill) reach about half.
KICK_OFFBEAT_SHARE = 0.7
KICK_OFFBEAT_EXCESS = 1.5
# Swung eighths split each beat long-short: onsets on the beat and about two thirds of the way to
# the next. The tracked phase is moved onto the beat when the strongest onsets a fifth to 0.45
# of a beat after each tracked beat are at least SWING_EXCESS times the strongest 0.5 to 0.75
# of a beat after it, and at least SWING_SHARE of those on the tracked beats (see
# ``_align_to_swing``).
SWING_EXCESS = 3.0
SWING_SHARE = 0.4
# Onset curves here are band-averaged level rises in dB. Drum hits and note attacks rise by
# several dB; the wobble of a drone or of noise by about one. Beat confidence is scaled down
# when the typical beat lands on a rise smaller than this.
CLEAR_ONSET_DB = 3.0
# Other metrical families (see ``_family_lags``) are scored when their autocorrelation peak,
# weighted by the broad prior, reaches this share of the highest.
RIVAL_FAMILY_SHARE = 0.9
# Ellis' transition cost: how strictly consecutive beats keep the estimated period.
TIGHTNESS = 100.0


@dataclass
class BeatTrack:
    """Beats found in one onset curve."""

    tempo_bpm: float
    beats_s: np.ndarray
    # 0..1: how strongly the onset curve repeats at the beat period, scaled down when the
    # beats land on faint onsets (see ``_clarity``).
    confidence: float
    period_s: float
    # The scored levels of the pulse family (half, this, double...), see ``tempo_levels``.
    levels: list[TempoLevel] = field(default_factory=list)

    def candidates(self) -> list[dict]:
        """``[{bpm, confidence, relation}]``: the chosen level and its half and double."""
        return tempo_candidates(self.tempo_bpm, self.levels)


def onset_strength(mel_db: np.ndarray) -> np.ndarray:
    """Half-wave rectified frame-to-frame rise of a log-mel spectrogram ``(frames, bands)``.

    The rise of each band is taken against the previous frame's maximum over neighbouring
    bands (SuperFlux), so vibrato and slides do not read as onsets. Before the first frame
    the track is taken as silent (the spectrogram's floor), so a note at 0 s is an onset (but
    never stronger than the track's strongest).
    """
    if mel_db.shape[0] == 0 or mel_db.shape[1] == 0:
        return np.zeros(mel_db.shape[0], np.float32)
    floor = np.full((1, mel_db.shape[1]), float(mel_db.min()), dtype=mel_db.dtype)
    ref = running_max(np.concatenate([floor, mel_db]), 3, axis=1)
    rise = np.maximum(0.0, mel_db - ref[:-1])
    onset = rise.mean(axis=1).astype(np.float32)
    if len(onset) > 1:
        # Rising from the floor, the first frame of a dense mix reads as one enormous onset that
        # would dominate tempo estimation; keep it an onset, but no stronger than the track's
        # strongest ones.
        onset[0] = min(onset[0], float(np.percentile(onset[1:], 99)))
    return onset


def _autocorrelation(onset: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation (lag 0 == 1) of the mean-removed onset curve."""
    x = onset.astype(np.float64) - float(onset.mean())
    n = len(x)
    size = 1 << int(2 * n - 1).bit_length()  # zero-padded to a power of two: no wrap-around
    spec = np.fft.rfft(x, size)
    ac = np.fft.irfft(np.abs(spec) ** 2, size)[:n]
    return ac / ac[0] if ac[0] > 0 else np.zeros(n)


def _peak_lag(values: np.ndarray, lo: int, hi: int) -> float:
    """Lag of the largest value in ``values[lo:hi]``, refined by a parabola through its peak."""
    i = lo + int(np.argmax(values[lo:hi]))
    if 0 < i < len(values) - 1:
        a, b, c = values[i - 1], values[i], values[i + 1]
        den = a - 2 * b + c
        if den < 0:
            return i + 0.5 * (a - c) / den
    return float(i)


def _offbeat_ratio(accent: np.ndarray, period_frames: float) -> float:
    """Mean accent half a period after the best-aligned pulses, over the mean on them."""
    peaks = running_max(accent, 3)  # tolerate one frame of quantisation
    n = len(accent)
    count = max(1, int((n - 1 - 1.5 * period_frames) // period_frames) + 1)
    pulses = np.arange(0.0, period_frames, 1.0)[:, None] + period_frames * np.arange(count)
    on = peaks[np.minimum(np.round(pulses).astype(int), n - 1)].mean(axis=1)
    best = int(np.argmax(on))
    if on[best] <= 0:
        return 0.0
    off = peaks[np.minimum(np.round(pulses[best] + period_frames / 2).astype(int), n - 1)]
    return float(off.mean() / on[best])


@dataclass
class TempoLevel:
    """One metrical level of the track's pulse family (eighth, beat, half bar...)."""

    bpm: float
    periodicity: float  # autocorrelation at its period, 0..1
    offbeat_ratio: float  # onsets half-way between its pulses over those on them
    score: float
    confidence: float = 0.0  # softmax share among the family's levels


def tempo_prior_log(bpm: float) -> float:
    """Log of the log-normal tempo prior (``PRIOR_BPM``, ``PRIOR_OCTAVES``), 0 at its peak."""
    return -0.5 * (math.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2


def tempo_levels(
    ac: np.ndarray, views: list[np.ndarray], frame_rate_hz: float, family_lag: float
) -> list[TempoLevel]:
    """Score every level of the family of ``family_lag`` (its doublings and halvings within
    ``MIN_BPM..MAX_BPM``) as the beat people would tap.

    Three pieces of evidence, added as log-odds:
    - the prior: tappers favour ~``PRIOR_BPM`` (log-normal, ``PRIOR_OCTAVES`` wide), the shape of
      annotated tempo distributions (McKinney & Moelants' resonance near 2 Hz);
    - the periodicity at the level's own period (``PERIODICITY_WEIGHT``): a samba's beat repeats
      far more exactly than its sixteenth-note fills;
    - the drum pattern: going from a level to its double pays ``OFFBEAT_WEIGHT`` times
      (offbeat ratio - ``OFFBEAT_NEUTRAL``): kick on 1 and 3 with the snare on 2 and 4 makes
      the half-way points nearly as strong as the pulses (the double is the beat); hi-hat
      eighths between kick and snare beats leave them weak (the level is the beat). The ratio
      is the mean over ``views``, onset curves of: all bands (snares whose crack is mostly
      noise above 3 kHz), the bands under ~1.5 kHz (kick and snare bodies, no hi-hat) and
      under ~100 Hz (the kick or surdo that people feel as the beat).
    """
    levels_bpm = []
    bpm = 60.0 * frame_rate_hz / family_lag
    while bpm / 2 >= MIN_BPM:
        bpm /= 2
    while bpm <= MAX_BPM:
        if bpm >= MIN_BPM:
            levels_bpm.append(bpm)
        bpm *= 2
    out: list[TempoLevel] = []
    chain = 0.0
    for level in levels_bpm:
        centre = 60.0 * frame_rate_hz / level
        a = max(1, int(centre * 0.96))
        b = min(len(ac) - 1, int(np.ceil(centre * 1.04)) + 1)
        lag = _peak_lag(ac, a, b) if b - a >= 3 else centre
        # The best of the frames around the lag: a period of 18.5 frames has its hits
        # alternate between 18- and 19-frame gaps, so the autocorrelation splits its peak.
        near = ac[max(0, int(lag) - 1) : int(lag) + 3]
        periodicity = float(np.clip(near.max() if near.size else 0.0, 0.0, 1.0))
        bpm_here = 60.0 * frame_rate_hz / lag
        ratio = float(np.mean([_offbeat_ratio(v, lag) for v in views]))
        score = tempo_prior_log(bpm_here) + PERIODICITY_WEIGHT * periodicity + chain
        out.append(TempoLevel(bpm_here, periodicity, ratio, score))
        chain += OFFBEAT_WEIGHT * (ratio - OFFBEAT_NEUTRAL)
    if out:
        scores = np.array([lv.score for lv in out])
        share = np.exp(scores - scores.max())
        for lv, c in zip(out, share / share.sum(), strict=True):
            lv.confidence = float(c)
    return out


def estimate_tempo(
    onset: np.ndarray,
    frame_rate_hz: float,
    accent: np.ndarray | None = None,
    kick: np.ndarray | None = None,
) -> tuple[float, float, list[TempoLevel]]:
    """Global tempo in BPM, its periodicity (autocorrelation at the beat period, 0..1) and the
    scored levels of its family (see ``tempo_levels``; ``accent`` defaults to ``onset``,
    ``kick`` is left out of the vote when not given).

    Autocorrelation weighted by a broad log-normal preference around 120 BPM finds the
    metrical family; ``tempo_levels`` then chooses the level within it.
    """
    ac = _autocorrelation(onset)
    lo = max(1, int(60.0 * frame_rate_hz / MAX_BPM))
    hi = min(len(ac) - 1, int(np.ceil(60.0 * frame_rate_hz / MIN_BPM)) + 1)
    if hi - lo < 3:
        return 120.0, 0.0, []
    lags = np.arange(len(ac), dtype=np.float64)
    lags[0] = 1.0
    bpm = 60.0 * frame_rate_hz / lags
    prior = np.exp(-0.5 * (np.log2(bpm / 120.0) / 1.0) ** 2)
    weighted = ac * prior
    lag = _peak_lag(weighted, lo, hi)
    accent = onset if accent is None else np.asarray(accent, dtype=np.float64)
    views = [onset, accent] + ([np.asarray(kick, dtype=np.float64)] if kick is not None else [])
    families = [
        tempo_levels(ac, views, frame_rate_hz, f) for f in _family_lags(weighted, lo, hi, lag)
    ]
    families = [levels for levels in families if levels]
    if not families:
        return 60.0 * frame_rate_hz / lag, 0.0, []
    levels = max(families, key=lambda levels: max(lv.score for lv in levels))
    best = max(levels, key=lambda lv: lv.score)
    return best.bpm, best.periodicity, levels


def _family_lags(weighted: np.ndarray, lo: int, hi: int, lag: float) -> list[float]:
    """``lag`` (the weighted autocorrelation's peak), then the other peaks within
    ``RIVAL_FAMILY_SHARE`` of it that are no octave of a lag already taken: a shuffle's
    three-against-two makes the dotted beat's family peak nearly as high as the beat's, and the
    levels of both are then scored alike (``tempo_levels``)."""
    out = [lag]
    window = weighted[lo:hi]
    top = float(weighted[int(round(lag))])
    if top <= 0:
        return out
    inner = np.flatnonzero((window[1:-1] > window[:-2]) & (window[1:-1] >= window[2:])) + 1 + lo
    for i in inner[np.argsort(weighted[inner])[::-1]]:
        if weighted[i] < RIVAL_FAMILY_SHARE * top:
            break
        if all(abs(math.log2(i / f) - round(math.log2(i / f))) > 0.1 for f in out):
            out.append(_peak_lag(weighted, max(lo, i - 1), min(hi, i + 2)))
    return out


def _dp_beats(local: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Ellis (2007) dynamic programme: cumulative score and back-links per frame.

    A beat at ``t`` may follow one at ``t - lag`` for ``lag`` in [period/2, 2*period], paying
    ``TIGHTNESS * log(lag/period)**2``. Frames less than the shortest lag apart never depend
    on each other, so each block of that many frames is solved at once with array operations.
    """
    n = len(local)
    lag_min = max(1, int(round(period / 2)))
    lags = np.arange(lag_min, int(round(2 * period)) + 1)
    penalty = -TIGHTNESS * np.log(lags / period) ** 2
    cum = np.zeros(n)
    back = np.full(n, -1, dtype=np.int64)
    for start in range(0, n, lag_min):
        t = np.arange(start, min(n, start + lag_min))
        tau = t[:, None] - lags[None, :]
        cand = np.where(tau >= 0, cum[np.maximum(tau, 0)] + penalty, -np.inf)
        j = np.argmax(cand, axis=1)
        best = cand[np.arange(len(t)), j]
        has = np.isfinite(best)
        cum[t] = local[t] + np.where(has, best, 0.0)
        back[t] = np.where(has, tau[np.arange(len(t)), j], -1)
    return cum, back


def _last_beat(cum: np.ndarray, local: np.ndarray, period: float) -> int:
    """The frame the beat sequence ends on: the onset peak with the best cumulative score in
    the final two periods.

    The cumulative score grows along the track, so a weak off-beat after the last real beat
    (or the last frame, one period after it) can outscore it when all frames compete; only
    frames where the onset curve peaks may end the sequence.
    """
    n = len(cum)
    peaks = np.zeros(n, bool)
    peaks[1:-1] = (local[1:-1] > local[:-2]) & (local[1:-1] >= local[2:])
    peaks[: max(0, n - int(2 * period))] = False
    if not peaks.any():
        return int(np.argmax(cum))
    candidates = np.flatnonzero(peaks)
    return int(candidates[np.argmax(cum[candidates])])


def _trim_weak_ends(beats: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Drop leading and trailing beats whose onsets are weak next to the typical beat's.

    The tracker runs to both ends of the file, through silence or a fading tail; a beat
    there lands on nothing. Strengths are smoothed over five neighbouring beats and compared
    with half their root mean square, as librosa does.
    """
    if len(beats) < 3:
        return beats
    strength = np.convolve(local[beats], np.hanning(7)[1:-1], mode="same")
    threshold = 0.5 * float(np.sqrt(np.mean(strength**2)))
    strong = np.flatnonzero(strength > threshold)
    if len(strong) == 0:
        return beats[:0]
    return beats[strong[0] : strong[-1] + 1]


def _refine(frames: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Sub-frame beat positions: a parabola through each beat's onset peak."""
    f = frames.astype(np.float64)
    ok = (frames > 0) & (frames < len(curve) - 1)
    i = frames[ok]
    a, b, c = curve[i - 1], curve[i], curve[i + 1]
    den = a - 2 * b + c
    shift = np.where((den < 0) & (b >= a) & (b >= c), 0.5 * (a - c) / np.where(den < 0, den, -1), 0)
    f[ok] += np.clip(shift, -0.5, 0.5)
    return f


def tempo_from_beats(beats_s: np.ndarray) -> float | None:
    """Tempo in BPM from a least-squares line through beat times (index counts missed beats)."""
    if len(beats_s) < 4:
        return None
    ibi = np.diff(beats_s)
    typical = float(np.median(ibi))
    steps = np.maximum(1, np.round(ibi / typical))
    index = np.concatenate([[0.0], np.cumsum(steps)])
    slope = float(np.polyfit(index, beats_s, 1)[0])
    return 60.0 / slope if slope > 0 else None


def _align_to_kicks(beats_s: np.ndarray, kick: np.ndarray, frame_rate_hz: float) -> np.ndarray:
    """Move the beats half a beat when the kick drum plays between them rather than on them.

    Off-beat open hats and bass notes (house, garage) can carry more onset energy than a
    four-on-the-floor kick; the dynamic programme then locks onto the off-beats at the right
    tempo. A kick "plays" where the kick-band onset reaches half its 99th percentile.
    """
    if len(beats_s) < 4:
        return beats_s
    peaks = running_max(kick, 3)
    present = peaks >= 0.5 * float(np.percentile(peaks, 99))
    last = len(kick) - 1

    def share(times: np.ndarray) -> float:
        return float(present[np.clip(np.round(times * frame_rate_hz).astype(int), 0, last)].mean())

    mids = (beats_s[1:] + beats_s[:-1]) / 2
    on, off = share(beats_s), share(mids)
    if off < KICK_OFFBEAT_SHARE or off < KICK_OFFBEAT_EXCESS * on:
        return beats_s
    half = float(np.median(np.diff(beats_s))) / 2
    ends = [beats_s[-1] + half] if (beats_s[-1] + half) * frame_rate_hz <= last else []
    return np.concatenate([mids, ends])


def _align_to_swing(beats_s: np.ndarray, onset: np.ndarray, frame_rate_hz: float) -> np.ndarray:
    """Move the beats onto the beat when they sit on swung off-beats.

    Jazz and shuffle phrasing often accents the short, swung eighth (two thirds of the way
    through the beat); the dynamic programme then follows it at the right tempo. Seen from that
    note the next onset comes a third of a beat later (the beat) and nothing two thirds later;
    seen from the beat it is the other way round. The shift is where the onsets a fifth to 0.45
    of a beat later peak on average, so a 3:1 swing lands as well as a 2:1.
    """
    if len(beats_s) < 8:
        return beats_s
    period_s = float(np.median(np.diff(beats_s)))
    peaks = running_max(np.asarray(onset, dtype=np.float64), 3)
    last = len(peaks) - 1
    steps = np.arange(31)  # fortieths of a beat, 0 to 0.75
    at = np.round((beats_s[None, :] + steps[:, None] * (period_s / 40)) * frame_rate_hz)
    profile = peaks[np.clip(at.astype(int), 0, last)].mean(axis=1)  # mean onset per step
    # 0.2-0.45 of a beat on, and 0.5-0.75: a straight eighth half a beat on counts against
    # the move, so a gallop (an eighth and two sixteenths, onsets at 0, 1/4 and 1/2) stays.
    early, late = profile[8:19], profile[20:31]
    beat, swung = float(early.max()), float(late.max())
    shift = (8 + int(np.argmax(early))) / 40
    if beat < SWING_EXCESS * swung or beat < SWING_SHARE * profile[0]:
        return beats_s
    moved = beats_s + shift * period_s
    return moved[moved * frame_rate_hz <= last]


def detect_beats(
    onset: np.ndarray,
    frame_rate_hz: float,
    *,
    accent: np.ndarray | None = None,
    kick: np.ndarray | None = None,
) -> BeatTrack:
    """Track beats in an onset curve sampled at ``frame_rate_hz``.

    ``accent`` (an onset curve of the bands below ~1.5 kHz) helps decide which metrical level
    is the beat, see ``tempo_levels``; ``kick`` (the bands below ~100 Hz) fixes the phase, see
    ``_align_to_kicks``. Returns an empty ``beats_s`` when nothing pulses.
    """
    onset = np.asarray(onset, dtype=np.float64)
    tempo_bpm, periodicity, levels = estimate_tempo(onset, frame_rate_hz, accent, kick)
    period = 60.0 * frame_rate_hz / tempo_bpm
    std = float(onset.std())
    if std <= 0 or len(onset) < 2 * period:
        return BeatTrack(tempo_bpm, np.zeros(0), 0.0, 60.0 / tempo_bpm, levels)
    # Ellis' local score: onsets smoothed by a Gaussian a small fraction of a beat wide.
    x = np.arange(-int(period), int(period) + 1)
    local = np.convolve(onset / std, np.exp(-0.5 * (x * 32.0 / period) ** 2), mode="same")
    cum, back = _dp_beats(local, period)
    frames = [_last_beat(cum, local, period)]
    while back[frames[-1]] >= 0:
        frames.append(int(back[frames[-1]]))
    beat_frames = _trim_weak_ends(np.array(frames[::-1], dtype=np.int64), local)
    beats_s = np.maximum(0.0, _refine(beat_frames, local) / frame_rate_hz)
    if kick is not None:
        beats_s = _align_to_kicks(beats_s, np.asarray(kick, dtype=np.float64), frame_rate_hz)
    beats_s = _align_to_swing(beats_s, onset, frame_rate_hz)
    tempo = tempo_from_beats(beats_s)
    if tempo is None or abs(tempo / tempo_bpm - 1.0) > 0.1:
        tempo = tempo_bpm  # the beats drifted off the estimated period: trust the estimate
    confidence = periodicity * _clarity(onset, beats_s, frame_rate_hz)
    return BeatTrack(float(tempo), beats_s, confidence, 60.0 / float(tempo), levels)


def tempo_candidates(tempo_bpm: float, levels: list[TempoLevel]) -> list[dict]:
    """The reported tempo first, then its half and double with their confidence (the share
    each level got in ``tempo_levels``; 0 for a level outside ``MIN_BPM..MAX_BPM``)."""
    if tempo_bpm <= 0:
        return []
    out = []
    for relation, factor in (("beat", 1.0), ("half", 0.5), ("double", 2.0)):
        bpm = tempo_bpm * factor
        near = [lv for lv in levels if abs(math.log2(lv.bpm / bpm)) < 0.06]
        confidence = near[0].confidence if near else 0.0
        out.append({"bpm": round(bpm, 2), "confidence": round(confidence, 3), "relation": relation})
    return out


def _clarity(onset: np.ndarray, beats_s: np.ndarray, frame_rate_hz: float) -> float:
    """0..1: the median onset on the beats against ``CLEAR_ONSET_DB``."""
    if len(beats_s) == 0:
        return 0.0
    peaks = running_max(onset, 3)
    at = peaks[np.clip(np.round(beats_s * frame_rate_hz).astype(int), 0, len(onset) - 1)]
    return float(np.clip(np.median(at) / CLEAR_ONSET_DB, 0.0, 1.0))


def beat_sync(
    features: np.ndarray, frame_rate_hz: float, beats_s: np.ndarray, duration_s: float
) -> np.ndarray:
    """Mean of ``features`` ``(dims, frames)`` over each beat interval -> ``(dims, len(beats))``.

    Interval ``i`` runs from beat ``i`` to beat ``i+1`` (the last to the end of the track).
    """
    n = features.shape[1]
    edges = np.append(np.asarray(beats_s, dtype=np.float64), duration_s)
    idx = np.clip(np.round(edges * frame_rate_hz).astype(int), 0, n)
    idx[1:] = np.maximum(idx[1:], idx[:-1] + 1)
    idx = np.minimum(idx, n)
    csum = np.concatenate([np.zeros((features.shape[0], 1)), np.cumsum(features, axis=1)], axis=1)
    counts = np.maximum(1, idx[1:] - idx[:-1])
    return (csum[:, idx[1:]] - csum[:, idx[:-1]]) / counts


def _bar_periodicity(score: np.ndarray, per_bar: int) -> float:
    """Mean correlation of the per-beat ``score`` with itself one and two bars later."""
    out = []
    for lag in (per_bar, 2 * per_bar):
        if len(score) > lag + 2:
            a, b = score[:-lag], score[lag:]
            if a.std() > 0 and b.std() > 0:
                out.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(out)) if out else 0.0


def _bar_position_f(score: np.ndarray, per_bar: int) -> float:
    """How much the per-beat ``score`` depends on the beat's place in a bar of ``per_bar``.

    The one-way analysis-of-variance F: variance between the bar positions' means per degree
    of freedom (``per_bar - 1``) over the variance within them. The best position's lead alone
    grows with the number of positions by chance (four means of fewer beats each spread more
    than three), so it would favour four beats to the bar on a tie; F does not.
    """
    groups = [score[p::per_bar] for p in range(per_bar)]
    between = sum(len(g) * (g.mean() - score.mean()) ** 2 for g in groups) / (per_bar - 1)
    within = sum(float(((g - g.mean()) ** 2).sum()) for g in groups) / (len(score) - per_bar)
    if within > 0:
        return float(between / within)
    return math.inf if between > 0 else 0.0


def _zscore(x: np.ndarray) -> np.ndarray:
    s = float(x.std())
    return (x - x.mean()) / s if s > 0 else np.zeros_like(x)


def detect_downbeats(
    beats_s: np.ndarray,
    low_onset: np.ndarray,
    beat_chroma: np.ndarray,
    frame_rate_hz: float,
) -> tuple[np.ndarray, int]:
    """Downbeat times and beats per bar (3 or 4) from accents and harmonic change.

    Bars begin where the bass or kick drum hits hardest (``low_onset``: onset strength below
    ~200 Hz) and where chords change (cosine distance between consecutive beats'
    ``beat_chroma`` ``(12, beats)``). Each beat gets the sum of both z-scores. A bar of three
    needs that score to depend more on the beat's place in a bar of three than of four
    (``_bar_position_f``) and to repeat every three beats more than every four; otherwise the
    bar is 4/4. The phase is the bar position whose beats score highest.
    """
    n = len(beats_s)
    if n < 6:
        return np.asarray(beats_s[:1], dtype=np.float64), 4
    frames = np.clip(
        np.round(np.asarray(beats_s) * frame_rate_hz).astype(int), 0, len(low_onset) - 1
    )
    accent = running_max(low_onset, 5)[frames]
    unit = beat_chroma / np.maximum(np.linalg.norm(beat_chroma, axis=0, keepdims=True), 1e-9)
    change = np.concatenate([[0.0], 1.0 - np.sum(unit[:, 1:] * unit[:, :-1], axis=0)])
    change[0] = np.median(change[1:])
    score = _zscore(accent) + _zscore(change)
    placed = _bar_position_f(score, 3) > _bar_position_f(score, 4)
    # A bar of three also has to repeat as one: the accent-and-change sequence correlates
    # with itself three and six beats on more than four and eight beats on.
    triple = _bar_periodicity(score, 3) > _bar_periodicity(score, 4)
    per_bar = 3 if placed and triple else 4
    phase = int(np.argmax([float(score[p::per_bar].mean()) for p in range(per_bar)]))
    return np.asarray(beats_s[phase::per_bar], dtype=np.float64), per_bar
