"""Composition for the procedural engine: sections, chords, bass line, lead and drums as notes.

``compose(genre, bpm, key, mood, duration_s, seed, melody=None)`` returns a :class:`Score`: the
section plan (intro, loop, variation, loop, outro, scaled to the duration), one chord per bar
from the genre's progression in the requested key, and note events per part (``drums``,
``bass``, ``chords``, ``lead``) on a sixteenth grid with the genre's swing. Everything random is
drawn from one ``numpy`` generator seeded by ``seed``, so a seed always gives the same score.
A given ``melody`` (transcribed hum, as :class:`MelodyNote` on the grid) replaces the generated
lead and the chords are chosen under it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from functions.genres import Genre
from functions.music.drums import GM_DRUMS, apply_swing, bar_pattern
from functions.music.theory import Chord, Key

# Moods that push density (rolls, ghost notes, busier leads) up or down.
_BUSY = {
    "hype",
    "aggressive",
    "energetic",
    "intense",
    "festival",
    "driving",
    "heavy",
    "upbeat",
    "anthemic",
    "euphoric",
}
_CALM = {
    "chill",
    "mellow",
    "dreamy",
    "smooth",
    "nostalgic",
    "deep",
    "romantic",
    "melancholic",
    "liquid",
    "sensual",
}
_DARK = {"dark", "menacing", "cold", "gritty", "industrial", "heavy", "aggressive", "melancholic"}


@dataclass(frozen=True)
class NoteEvent:
    start_s: float
    duration_s: float
    pitch: int  # MIDI note (General MIDI drum number for drums)
    velocity: float  # 0..1
    voice: str = ""  # drum piece for drums; empty for pitched parts
    glide_from: float | None = None  # 808 slides start from this MIDI pitch


@dataclass(frozen=True)
class MelodyNote:
    """A note on the sixteenth grid (a transcribed hum after quantisation)."""

    step: int
    length_steps: int
    pitch: int


@dataclass(frozen=True)
class Section:
    name: str  # intro, loop, variation, outro
    start_bar: int
    bars: int


@dataclass
class Score:
    genre: Genre
    bpm: float
    key: Key
    mood: str
    duration_s: float
    seed: int
    sections: list[Section]
    chords: list[Chord]  # one per bar
    parts: dict[str, list[NoteEvent]] = field(default_factory=dict)

    @property
    def step_s(self) -> float:
        return 60.0 / self.bpm / 4.0

    @property
    def bar_s(self) -> float:
        return 16 * self.step_s

    @property
    def density(self) -> float:
        return mood_density(self.mood)

    @property
    def brightness(self) -> float:
        return 0.3 if self.mood in _DARK else (0.45 if self.mood in _CALM else 0.65)


def mood_density(mood: str) -> float:
    return 1.0 if mood in _BUSY else (0.35 if mood in _CALM else 0.7)


def plan_sections(total_bars: int) -> list[Section]:
    """Intro, loop, variation, loop again, outro, in four-bar phrases where the length allows."""
    intro = 2 if total_bars >= 16 else (1 if total_bars >= 6 else 0)
    outro = 2 if total_bars >= 20 else (1 if total_bars >= 5 else 0)
    middle = total_bars - intro - outro
    if middle < 8:
        body = [("loop", middle)]
    elif middle < 16:
        first = 4 * math.ceil(middle / 8)
        body = [("loop", first), ("variation", middle - first)]
    else:
        third = 4 * max(1, round(middle / 12))
        body = [("loop", third), ("variation", third), ("loop", middle - 2 * third)]
    plan = [("intro", intro), *body, ("outro", outro)]
    sections, bar = [], 0
    for name, bars in plan:
        if bars > 0:
            sections.append(Section(name, bar, bars))
            bar += bars
    return sections


def _progression(genre: Genre, key: Key) -> list[Chord]:
    numerals = genre.progression_minor if key.mode == "minor" else genre.progression_major
    return [key.chord(n) for n in numerals]


def _voice_chord(chord: Chord, previous: list[int] | None, center: int) -> list[int]:
    """Choose the inversion nearest the previous voicing (smooth voice leading)."""
    base = chord.pitches(center - 6)
    options = []
    for inv in range(len(base)):
        v = sorted(base[inv:] + [p + 12 for p in base[:inv]])
        target = np.mean(previous) if previous else center
        options.append((abs(np.mean(v) - target), v))
    return min(options, key=lambda o: o[0])[1]


def _bass_root(chord: Chord, low: int) -> int:
    return low + (chord.root_pc - low) % 12


def _bass_bar(
    genre: Genre,
    chord: Chord,
    next_chord: Chord,
    kick_steps: list[float],
    rng: np.random.Generator,
) -> list[tuple[float, float, int, float | None]]:
    """(step, length in steps, MIDI pitch, glide_from) for one bar of the genre's bass."""
    style = genre.bass
    # Sub basses sit low; played basses (strings, saws) an octave where their fundamental
    # is heard (C2 up), which also keeps the root audible to a chroma analysis.
    low = 28 if style in ("808", "808-glide", "sub", "reese", "wobble", "rumble") else 36
    root = _bass_root(chord, low)
    fifth = root + 7
    if style in ("808", "808-glide"):
        steps = sorted(set(kick_steps)) or [0.0]
        notes = []
        for i, s in enumerate(steps):
            end = steps[i + 1] if i + 1 < len(steps) else 16.0
            pitch, glide = root, None
            if style == "808-glide" and i > 0 and rng.random() < 0.6:
                pitch, glide = root + int(rng.choice([12, 7, -2])), float(root)
            notes.append((s, end - s, pitch, glide))
        return notes
    if style == "sub":
        return [(0, 8, root, None), (8, 8, int(rng.choice([root, fifth])), None)]
    if style == "upright" and genre.feel == "swing":
        # Walking bass: root, two chord/scale tones, a chromatic approach into the next root.
        target = _bass_root(next_chord, low)
        third = root + chord.intervals[1]
        walk = [
            root,
            int(rng.choice([third, fifth])),
            int(rng.choice([fifth, third + 12 if third + 12 < 50 else third])),
            target + int(rng.choice([-1, 1])),
        ]
        return [(4 * i, 4, p, None) for i, p in enumerate(walk)]
    if style in ("upright", "picked") and genre.feel != "backbeat":
        return [(s, 3, root, None) for s in sorted(set(kick_steps))] + [
            (12, 2, fifth - 12 if fifth - 12 >= low else fifth, None)
        ]
    if style == "picked":  # driving eighths, accented on the beat
        return [(s, 2, root, None) for s in range(0, 16, 2)]
    if style == "saw":
        if genre.name == "edm":
            return [(s, 2, root, None) for s in range(0, 16, 2)]
        return [(s, 2, root + (12 if s == 14 else 0), None) for s in (2, 6, 10, 14)]
    if style == "rumble":
        return [(s, 1, root, None) for s in range(16) if s % 4 != 0]
    if style == "reese":
        return [(0, 8, root, None), (8, 8, int(rng.choice([root, fifth, root + 12])), None)]
    if style == "wobble":
        return [(0, 6, root, None), (8, 8, int(rng.choice([root, root + 12])), None)]
    raise ValueError(f"unknown bass style {style!r}")


_CHORD_RHYTHM = {
    "pad": [(0, 16)], "strings": [(0, 16)], "supersaw": [(0, 16)], "organ": [(0, 16)],
    "epiano": [(0, 8), (8, 8)], "stab": [(2, 2), (6, 2), (10, 2), (14, 2)],
    "piano": [(0, 4), (4, 4), (8, 4), (12, 4)], "guitar": [(s, 2) for s in range(0, 16, 2)],
}  # fmt: skip
_CHORD_CENTER = {"guitar": 52, "stab": 62, "supersaw": 62}


def _chord_rhythm(genre: Genre, rng: np.random.Generator) -> list[tuple[float, float]]:
    if genre.chords == "piano" and genre.feel == "swing":
        # Charleston comping plus one random push.
        return [(0, 3), (6, 2)] + ([(float(rng.choice([10, 14])), 2)] if rng.random() < 0.6 else [])
    if genre.chords == "piano" and genre.feel == "boom-bap":
        return [(0, 6), (6, 4), (12, 4)]
    return _CHORD_RHYTHM[genre.chords]


def _lead_motif(
    genre: Genre, chords: list[Chord], key: Key, rng: np.random.Generator, density: float
) -> list[MelodyNote]:
    """A phrase over ``len(chords)`` bars: chord tones on strong beats, steps between them."""
    busy = genre.lead in ("pluck", "saw", "square", "guitar")
    allowed = key.pentatonic_pcs() if genre.lead_scale == "pentatonic" else key.scale_pcs
    pool = [p for p in range(67, 87) if p % 12 in allowed]
    bars = len(chords)
    notes: list[MelodyNote] = []
    for half in range(0, bars, 2):
        grid = np.arange(0, 32, 1 if busy and density > 0.6 else 2)
        # Notes favour the beats, then the off-beat eighths, then sixteenths.
        weight = np.where(grid % 4 == 0, 3.0, np.where(grid % 2 == 0, 1.0, 0.4))
        count = int((5 + 5 * density) if busy else (3 + 3 * density))
        picks = rng.choice(grid, size=min(count, len(grid)), replace=False, p=weight / weight.sum())
        onsets = sorted({0, *picks.tolist()})
        idx = int(np.argmin([abs(p - 76) for p in pool]))
        for j, s in enumerate(onsets):
            end = onsets[j + 1] if j + 1 < len(onsets) else 32
            bar = half + s // 16
            if bar >= bars:
                break
            idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(pool) - 1))
            pitch = pool[idx]
            if s % 8 == 0:  # strong beats land on a chord tone
                chord_pcs = {(chords[bar].root_pc + i) % 12 for i in chords[bar].intervals}
                tones = [p for p in pool if p % 12 in chord_pcs]
                tonics = [p for p in tones if p % 12 == key.tonic_pc]
                if tonics and rng.random() < 0.5:  # lean on the tonic: the key should be clear
                    tones = tonics
                if tones:
                    pitch = min(tones, key=lambda p: abs(p - pitch))
                    idx = pool.index(pitch)
            notes.append(MelodyNote(half * 16 + int(s), int(max(1, min(end - s, 8))), pitch))
    return notes


def harmonize(melody: list[MelodyNote], key: Key, bars: int) -> list[Chord]:
    """One chord per bar chosen from the key's diatonic triads to fit the melody's notes."""
    numerals = (
        ("i", "iv", "v", "VI", "III", "VII")
        if key.mode == "minor"
        else ("I", "IV", "V", "vi", "ii", "iii")
    )
    candidates = [key.chord(n) for n in numerals]
    loop_bars = max(1, math.ceil(max(n.step + n.length_steps for n in melody) / 16))
    chords = []
    for b in range(bars):
        lb = b % loop_bars
        weight = np.zeros(12)
        for n in melody:
            overlap = min(n.step + n.length_steps, (lb + 1) * 16) - max(n.step, lb * 16)
            if overlap > 0:
                weight[n.pitch % 12] += overlap
        # Prefer the tonic (ties and empty bars) so the key stays clear.
        scores = [
            sum(weight[(c.root_pc + i) % 12] for i in c.intervals) + (0.5 if k == 0 else 0.0)
            for k, c in enumerate(candidates)
        ]
        chords.append(candidates[int(np.argmax(scores))])
    return chords


def compose(
    genre: Genre,
    bpm: float,
    key: Key,
    mood: str,
    duration_s: float,
    seed: int,
    melody: list[MelodyNote] | None = None,
) -> Score:
    """The full score of a beat: deterministic for ``seed`` (see module docstring)."""
    rng = np.random.default_rng(seed)
    step_s = 60.0 / bpm / 4.0
    total_bars = max(1, math.ceil(duration_s / (16 * step_s) - 1e-9))
    sections = plan_sections(total_bars) if melody is None else [Section("loop", 0, total_bars)]
    progression = _progression(genre, key)
    if melody is not None:
        chords = harmonize(melody, key, total_bars)
    else:
        chords = []
        for sec in sections:
            prog = progression[2:] + progression[:2] if sec.name == "variation" else progression
            for i in range(sec.bars):
                chords.append(progression[0] if sec.name == "outro" else prog[i % len(prog)])
    score = Score(genre, bpm, key, mood, duration_s, seed, sections, chords)
    density = score.density

    def at(bar: int, step: float) -> float:
        return (bar * 16 + apply_swing(step, genre.swing, genre.swing_unit)) * step_s

    parts: dict[str, list[NoteEvent]] = {"drums": [], "bass": [], "chords": [], "lead": []}
    motifs = {
        "loop": _lead_motif(genre, progression, key, rng, density),
        "variation": _lead_motif(genre, progression[2:] + progression[:2], key, rng, density),
    }
    previous_voicing: list[int] | None = None
    center = _CHORD_CENTER.get(genre.chords, 60)
    for sec in sections:
        for i in range(sec.bars):
            bar = sec.start_bar + i
            chord = chords[bar]
            next_chord = chords[bar + 1] if bar + 1 < len(chords) else chords[0]
            hits = bar_pattern(genre.feel, sec.name, i % 4, rng, density)
            for h in hits:
                jitter = (
                    rng.normal(0.0, 0.004)
                    if genre.feel in ("swing", "boom-bap") and h.voice != "kick"
                    else 0.0
                )
                vel = float(np.clip(h.velocity * rng.uniform(0.9, 1.0), 0.05, 1.0))
                parts["drums"].append(
                    NoteEvent(
                        max(0.0, at(bar, h.step) + jitter), step_s, GM_DRUMS[h.voice], vel, h.voice
                    )
                )
            kicks = [h.step for h in hits if h.voice == "kick"]
            # The bass plays softly through the intro, so the loop arrives as a lift, not a jolt.
            level = 0.5 if sec.name == "intro" else 1.0
            for s, length, pitch, glide in _bass_bar(genre, chord, next_chord, kicks, rng):
                vel = level * (0.9 if s % 4 == 0 else 0.6)  # on-beat notes lead the groove
                parts["bass"].append(
                    NoteEvent(at(bar, s), length * step_s * 0.95, pitch, vel, glide_from=glide)
                )
            voicing = _voice_chord(chord, previous_voicing, center)
            previous_voicing = voicing
            # The root again below the voicing, as a pianist's left hand (or a guitarist's
            # low string) plays it.
            voicing = [
                _bass_root(chord, center - (12 if genre.chords == "guitar" else 18)),
                *voicing,
            ]
            # The outro rings out on one chord; the intro already plays the loop's rhythm, softer.
            rhythm = [(0, 16)] if sec.name == "outro" else _chord_rhythm(genre, rng)
            soft = 0.6 if sec.name == "intro" else 1.0
            for s, length in rhythm:
                vel = soft * (0.75 if s % 4 == 0 or genre.chords == "stab" else 0.5)
                for p in voicing:
                    parts["chords"].append(NoteEvent(at(bar, s), length * step_s * 0.95, p, vel))
    # Lead: the hummed melody looped from bar 0, or the generated phrase in loop/variation.
    if melody is not None:
        loop_steps = 16 * max(1, math.ceil(max(n.step + n.length_steps for n in melody) / 16))
        for rep in range(math.ceil(total_bars * 16 / loop_steps)):
            for n in melody:
                parts["lead"].append(
                    NoteEvent(
                        at(0, rep * loop_steps + n.step), n.length_steps * step_s, n.pitch, 0.85
                    )
                )
    else:
        for sec in sections:
            motif = motifs.get(sec.name)
            if motif is None:
                continue
            for phrase in range(0, sec.bars, len(progression)):
                for n in motif:
                    if phrase * 16 + n.step < sec.bars * 16:
                        vel = float(rng.uniform(0.75, 0.95))
                        parts["lead"].append(
                            NoteEvent(
                                at(sec.start_bar + phrase, n.step),
                                n.length_steps * step_s,
                                n.pitch,
                                vel,
                            )
                        )
    score.parts = {
        name: [e for e in events if e.start_s < duration_s] for name, events in parts.items()
    }
    return score
