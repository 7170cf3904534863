"""The mashup's decisions: who gives what, at which tempo and key, from where.

Offers:
- ``VIBES``: each vibe's mix profile, stem gains and master target, in one place.
- ``key_shift_semitones(src, dst)``, ``tempo_factor(src_bpm, dst_bpm)``,
  ``match_tempo(src, dst)``, ``fifths_distance(a, b)``: key and tempo matching. Tempo matching
  is octave-consistent: each track's tempo candidates (its tempo, half and double, as the
  analysis reports them) are paired and the pairing whose stretch is closest to 1 wins, so a
  track analysed at double time is not stretched by a third to fit.
- ``plan_mashup(tracks, vibe, ...) -> MashupPlan``: the base (instrumental) track, the vocal
  track, the stems each track gives, and for each track its stretch, pitch shift and offset
  (its first vocal phrase on a phrase start of the base). No track is stretched by more than
  ``COMFORT_STRETCH`` (12 %): when the vocal track and the base are further apart than that,
  both meet at the tempo between them (each moves by the square root of the ratio), and only
  when that is still too far is the pairing refused. A track in another metre (3/4 over 4/4)
  is said so in the report. Every choice is recorded with its reason in ``plan.report()``.

The facts each decision reads (``TrackInfo``, measured by ``functions.mashup_tracks``) come in;
a ``MashupPlan`` of ``TrackPart`` goes out, which ``functions.mashup_align`` renders.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.mashup_tracks import TrackInfo
from functions.music.theory import Key
from shared.errors import InvalidInput

PHRASE_BARS = 4
# Time-stretching by more than ~12 % is audible on real recordings (transients smear, voices
# change character): no track is stretched further than this.
COMFORT_STRETCH = 1.12
# Two tracks this far apart (after half/double time) can still meet in the middle, each
# stretched by at most COMFORT_STRETCH; beyond it the pairing is refused.
MAX_STRETCH = COMFORT_STRETCH**2
# Pair costs, each 0..1, weighted: a vocal shifted a tritone or stretched 30 % sounds worse than
# a vibe mismatch, so key and tempo weigh most.
COST_WEIGHTS = {"key": 0.3, "tempo": 0.3, "vocals": 0.2, "energy": 0.2}


@dataclass(frozen=True)
class Vibe:
    profile: str  # a functions.mix profile
    stem_gain_db: dict[str, float]
    master_lufs: float
    wants_energy: bool  # prefer the more energetic track as the base
    description: str


VIBES: dict[str, Vibe] = {
    "energetic": Vibe(
        "bright",
        {"vocals": 0.0, "drums": 2.0, "bass": 1.0, "other": -1.0},
        -9.0,
        True,
        "drums forward, bright, loud",
    ),
    "upbeat": Vibe(
        "bright",
        {"vocals": 1.0, "drums": 1.0, "bass": 0.0, "other": 0.0},
        -10.0,
        True,
        "vocal-led, bright, lively",
    ),
    "chill": Vibe(
        "warm",
        {"vocals": 0.0, "drums": -4.0, "bass": -1.0, "other": 1.0},
        -14.0,
        False,
        "soft drums, warm, dynamic",
    ),
    "dark": Vibe(
        "bass-heavy",
        {"vocals": -1.0, "drums": 0.0, "bass": 2.0, "other": -2.0},
        -12.0,
        False,
        "heavy low end, instruments pulled back",
    ),
}


def key_shift_semitones(src: Key, dst: Key) -> int:
    """Semitones (-6..+5) that put ``src``'s notes into ``dst``'s scale: onto its tonic in the
    same mode, onto its relative key across modes (A minor over C major needs no shift)."""
    target = dst.tonic_pc
    if src.mode != dst.mode:
        target = (dst.tonic_pc + (9 if dst.mode == "major" else 3)) % 12
    return (target - src.tonic_pc + 6) % 12 - 6


def fifths_distance(a: Key, b: Key) -> int:
    """Steps between two keys on the circle of fifths (relative keys share a position), 0..6."""

    def position(k: Key) -> int:
        major_pc = k.tonic_pc if k.mode == "major" else (k.tonic_pc + 3) % 12
        return (major_pc * 7) % 12

    d = abs(position(a) - position(b))
    return min(d, 12 - d)


def tempo_factor(src_bpm: float, dst_bpm: float) -> float:
    """Speed factor taking ``src`` to ``dst`` (Rubber Band's ``stretch_factor``: >1 is faster),
    allowing half and double time, whichever is nearest 1."""
    ratio = dst_bpm / src_bpm
    return min((ratio, ratio * 2.0, ratio / 2.0), key=lambda r: abs(math.log2(r)))


@dataclass(frozen=True)
class TempoMatch:
    """How ``src`` is fitted to ``dst``: the octave levels paired and the speed factor."""

    factor: float  # Rubber Band's stretch_factor taking src to dst (> 1 is faster)
    src_bpm: float  # the level of src that is matched (its tempo, half or double)
    dst_bpm: float
    # Beats of src per beat of dst once fitted: 1, or 1.5 / 2/3 for a 3:2 metric relation.
    relation: float = 1.0


# Two tempi can be up to half an octave apart at their nearest octaves (95 and 135 BPM), which
# half-way stretching cannot bridge within COMFORT_STRETCH. Two beats of one against three of
# the other can: with these relations no pairing needs more than ~11 % from each track.
METRIC_RELATIONS = (1.5, 2.0 / 3.0)


def match_tempo(
    src: TrackInfo, dst: TrackInfo, relations: tuple[float, ...] = (1.0,)
) -> TempoMatch:
    """The level of ``src``'s tempo (its tempo, half or double) whose stretch onto ``dst``'s
    tempo is closest to 1: the base keeps its own beat; only the other track changes level.

    Only levels the analysis found plausible take part (a candidate with confidence 0 is
    outside the tapping range); between equally close levels the confident one wins.
    ``relations``: beats of ``src`` per beat of ``dst`` to consider (see METRIC_RELATIONS).
    """
    best: tuple[float, TempoMatch] | None = None
    for relation in relations:
        for s_bpm, s_conf in src.tempo_levels():
            factor = dst.tempo_bpm * relation / s_bpm
            cost = abs(math.log2(factor)) + 0.01 * (1.0 - s_conf)
            if best is None or cost < best[0]:
                best = (cost, TempoMatch(factor, s_bpm, dst.tempo_bpm, relation))
    assert best is not None
    return best[1]


def _fit_lead(lead: TrackInfo, base: TrackInfo) -> TempoMatch:
    """The lead's match to the base: at an octave when the two can meet half-way within
    COMFORT_STRETCH each, else at a 3:2 relation when that stretches less."""
    m = match_tempo(lead, base)
    if abs(math.log2(m.factor)) <= math.log2(MAX_STRETCH):
        return m
    metric = match_tempo(lead, base, METRIC_RELATIONS)
    return metric if abs(math.log2(metric.factor)) < abs(math.log2(m.factor)) else m


def _relation_note(m: TempoMatch, octave_factor: float, t: TrackInfo) -> str:
    faster = m.relation > 1  # three of its beats to two of the base's, else two to three
    return (
        f"metric relation {'3:2' if faster else '2:3'}: at every octave {t.tempo_bpm:.1f} and "
        f"the base's {m.dst_bpm:.1f} BPM are {_stretch_pct(octave_factor)} apart, too far to "
        f"stretch; so {'three' if faster else 'two'} of its beats span "
        f"{'two' if faster else 'three'} of the base's (its 4-bar phrases span "
        f"{4 / m.relation:.3g} of the base's bars)"
    )


@dataclass
class TrackPart:
    """What one track gives the mashup and how it is fitted to the base."""

    index: int
    role: str  # base | vocals | layer
    stems: list[str]
    stretch_factor: float = 1.0
    pitch_shift_semitones: int = 0
    offset_s: float = 0.0  # where the stretched track's time 0 lands on the base timeline
    notes: list[str] = field(default_factory=list)


@dataclass
class MashupPlan:
    vibe: str
    base: TrackInfo
    vocals: TrackInfo | None
    parts: list[TrackPart]
    tracks: list[TrackInfo]
    pair_costs: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    target_tempo_bpm: float | None  # None: the base's own tempo

    @property
    def base_stretch(self) -> float:
        """The base's own stretch factor (1 unless it meets the vocal track half-way)."""
        return next(p.stretch_factor for p in self.parts if p.role == "base")

    def report(self) -> dict[str, Any]:
        """Every decision and its figures, for the user and the job result."""
        vibe = VIBES[self.vibe]
        by_index = {t.index: t for t in self.tracks}
        parts = []
        for p in self.parts:
            t = by_index[p.index]
            shifted_pc = (t.key.tonic_pc + p.pitch_shift_semitones) % 12
            names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
            parts.append(
                {
                    "track": p.index,
                    "filename": t.filename,
                    "role": p.role,
                    "stems": p.stems,
                    "tempo_bpm": round(t.tempo_bpm, 2),
                    "tempo_change": f"{t.tempo_bpm:.1f} -> {t.tempo_bpm * p.stretch_factor:.1f} BPM",
                    "stretch_factor": round(p.stretch_factor, 4),
                    "key": t.key.name,
                    "time_signature": f"{t.beats_per_bar}/4",
                    "pitch_shift_semitones": p.pitch_shift_semitones,
                    "key_change": f"{t.key.name} -> {names[shifted_pc]} {t.key.mode}",
                    "offset_s": round(p.offset_s, 3),
                    "energy": t.energy,
                    "vocal_share": t.vocal_share,
                    "drum_share": t.drum_share,
                    "notes": p.notes,
                }
            )
        return {
            "vibe": self.vibe,
            "vibe_description": vibe.description,
            "base_track": self.base.index,
            "vocal_track": self.vocals.index if self.vocals else None,
            "target_tempo_bpm": round(self.target_tempo_bpm or self.base.tempo_bpm, 2),
            "target_key": self.base.key.name,
            "parts": parts,
            "pair_costs": self.pair_costs,
            "left_out": self.skipped,
            "mix": {"profile": vibe.profile, "stem_gain_db": vibe.stem_gain_db},
            "master_target_lufs": vibe.master_lufs,
        }


def pair_cost(vocal: TrackInfo, base: TrackInfo, vibe: Vibe) -> dict[str, Any]:
    """How well ``vocal``'s voice sits over ``base``'s instrumental (lower is better)."""
    shift = key_shift_semitones(vocal.key, base.key)
    factor = match_tempo(vocal, base).factor
    costs = {
        "key": abs(shift) / 6.0,
        "tempo": min(1.0, abs(math.log2(factor)) / math.log2(MAX_STRETCH)),
        "vocals": 1.0 - min(1.0, vocal.vocal_share / 0.3),
        "energy": 1.0 - base.energy if vibe.wants_energy else base.energy,
    }
    total = sum(COST_WEIGHTS[k] * v for k, v in costs.items())
    # A pairing that cannot be fitted, or crosses metres (3/4 over 4/4), loses to any that can.
    total += 1.0 if abs(math.log2(factor)) > math.log2(MAX_STRETCH) else 0.0
    total += 0.5 if vocal.beats_per_bar != base.beats_per_bar else 0.0
    return {
        "vocals": vocal.index,
        "base": base.index,
        "cost": round(total, 4),
        "pitch_shift_semitones": shift,
        "stretch_factor": round(factor, 4),
        "fifths_distance": fifths_distance(vocal.key, base.key),
        **{f"{k}_cost": round(v, 3) for k, v in costs.items()},
    }


def _phrase_offset_s(
    part_track: TrackInfo, factor: float, base: TrackInfo, base_factor: float
) -> tuple[float, str]:
    """Offset putting the track's first vocal phrase on a phrase start of the base.

    The phrase holding the voice's entry starts on the track's downbeat ``4k``; it lands on the
    base's second phrase when the base has one (four bars of instrumental first), else its first.
    Times are on the output timeline: each track's own divided by its stretch factor.
    """
    downbeats = np.asarray(part_track.downbeats_s) / factor
    entry = part_track.vocal_entry_s / factor
    before = np.nonzero(downbeats <= entry + 0.05)[0]
    bar = int(before[-1]) if before.size else 0
    phrase_bar = bar - bar % PHRASE_BARS
    base_bars = [t / base_factor for t in base.downbeats_s]
    landing = PHRASE_BARS if len(base_bars) > 2 * PHRASE_BARS else 0
    offset = base_bars[landing] - float(downbeats[phrase_bar]) if len(downbeats) else 0.0
    return offset, f"bar {phrase_bar + 1} (voice enters in bar {bar + 1}) on base bar {landing + 1}"


def _stretch_pct(factor: float) -> str:
    return f"{abs(factor - 1.0) * 100:.1f} %"


def plan_mashup(
    tracks: list[TrackInfo],
    vibe: str,
    *,
    stem_choice: dict[int, list[str]] | None = None,
    base_track: int | None = None,
) -> MashupPlan:
    """Decide the mashup. ``stem_choice`` maps track index -> stems it gives (tracks left out
    give nothing); without it the base gives drums, bass and other, the vocal track its vocals
    and any further track its ``other`` stem as a layer. Raises InvalidInput for a bad choice
    (``TEMPO_MISMATCH`` when the vocal track cannot meet the base within ``COMFORT_STRETCH``
    each)."""
    if vibe not in VIBES:
        raise InvalidInput(
            f"Unknown vibe '{vibe}'; choose from {', '.join(VIBES)}.", code="BAD_VIBE"
        )
    v = VIBES[vibe]
    indices = [t.index for t in tracks]
    for i in [*(stem_choice or {}), *([base_track] if base_track is not None else [])]:
        if i not in indices:
            raise InvalidInput(
                f"There is no track {i}; tracks are numbered 0-{len(tracks) - 1}.", code="BAD_TRACK"
            )
    by_index = {t.index: t for t in tracks}
    pairs = [pair_cost(a, b, v) for a, b in itertools.permutations(tracks, 2)]
    if stem_choice:
        givers = [i for i, stems in stem_choice.items() if stems]
        vocal_givers = [i for i in givers if "vocals" in stem_choice[i]]
        instrumental = [i for i in givers if set(stem_choice[i]) - {"vocals"}]
        if base_track is None:  # the track giving drums sets the groove; else any instrumental
            instrumental.sort(key=lambda i: "drums" not in stem_choice[i])
            base_track = instrumental[0] if instrumental else givers[0]
        vocal_idx = next((i for i in vocal_givers if i != base_track), None)
        choice = {i: list(s) for i, s in stem_choice.items() if s}
    else:
        if len(tracks) == 1:
            base_track, vocal_idx = tracks[0].index, None
        else:
            ok = [p for p in pairs if base_track is None or p["base"] == base_track]
            best = min(ok, key=lambda p: p["cost"])
            base_track, vocal_idx = best["base"], best["vocals"]
        choice = {
            base_track: ["drums", "bass", "other"] + (["vocals"] if vocal_idx is None else [])
        }
        if vocal_idx is not None:
            choice[vocal_idx] = ["vocals"]
        for t in tracks:
            choice.setdefault(t.index, ["other"])
    base = by_index[base_track]
    # The vocal track and the base set the tempo: the base's own, unless the two are further
    # apart than one comfortable stretch; then they meet half-way (in log tempo).
    base_factor = 1.0
    tempo_note = "the base's tempo"
    lead = by_index.get(vocal_idx) if vocal_idx is not None else None
    if lead is None and len(choice) > 1:
        lead = by_index[next(i for i in choice if i != base_track)]
    lead_match = _fit_lead(lead, base) if lead is not None else None
    if lead is not None:
        m = lead_match
        if abs(math.log2(m.factor)) > math.log2(COMFORT_STRETCH):
            base_factor = 1.0 / math.sqrt(m.factor)
            where = "at any octave" if m.relation == 1.0 else "even at a 3:2 relation"
            tempo_note = (
                f"{lead.tempo_bpm:.1f} and {base.tempo_bpm:.1f} BPM are more than "
                f"{_stretch_pct(COMFORT_STRETCH)} apart {where}: both move half-way "
                f"({_stretch_pct(base_factor)} each) rather than one by "
                f"{_stretch_pct(m.factor)}"
            )
    target_bpm = base.tempo_bpm * base_factor
    parts: list[TrackPart] = []
    skipped: list[dict[str, Any]] = []
    for i, stems in choice.items():
        if i == base_track:
            notes = ["sets the key and timeline", f"tempo: {tempo_note}"]
            parts.append(TrackPart(i, "base", stems, base_factor, notes=notes))
            continue
        t = by_index[i]
        m = lead_match if lead is not None and i == lead.index else match_tempo(t, base)
        factor = m.factor * base_factor
        if abs(math.log2(factor)) > math.log2(COMFORT_STRETCH) * 1.001:
            if stem_choice is None and i != vocal_idx:  # an optional layer: leave it out
                skipped.append(
                    {"track": i, "reason": f"{t.tempo_bpm:.0f} BPM is too far to stretch"}
                )
                continue
            raise InvalidInput(
                f"Track {i} ({t.tempo_bpm:.0f} BPM) is too far from the base's "
                f"{base.tempo_bpm:.0f} BPM: fitting it would stretch it by {_stretch_pct(factor)} "
                f"(at most {_stretch_pct(COMFORT_STRETCH)} keeps it sounding like itself); "
                "choose other tracks or stems.",
                code="TEMPO_MISMATCH",
            )
        part = TrackPart(
            i,
            "vocals" if i == vocal_idx else "layer",
            stems,
            factor,
            key_shift_semitones(t.key, base.key),
        )
        part.offset_s, where = _phrase_offset_s(t, factor, base, base_factor)
        part.notes.append(f"phrase alignment: {where}")
        if m.relation != 1.0:
            part.notes.append(_relation_note(m, match_tempo(t, base).factor, t))
        if abs(math.log2(m.src_bpm / t.tempo_bpm)) > 0.5:
            relation = "half" if m.src_bpm < t.tempo_bpm else "double"
            part.notes.append(
                f"matched at {relation} time ({m.src_bpm:.1f} BPM), the octave closest to "
                f"{target_bpm:.1f} BPM"
            )
        if t.beats_per_bar != base.beats_per_bar:
            part.notes.append(
                f"metre: this track is in {t.beats_per_bar}/4 and the base in "
                f"{base.beats_per_bar}/4; its bars do not line up with the base's beyond the "
                "first downbeat"
            )
        parts.append(part)
    vocals = by_index.get(vocal_idx) if vocal_idx is not None else None
    return MashupPlan(vibe, base, vocals, parts, tracks, pairs, skipped, target_bpm)
