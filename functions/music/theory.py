"""Music theory the engines share: keys, scales, roman-numeral chords and key estimation.

Offers:
- ``parse_key("Cm" | "F#" | "A minor" | "Bb major")`` -> :class:`Key` (raises ``BAD_KEY``).
- ``Key.scale_pcs``, ``Key.chord(numeral)`` -> :class:`Chord` (root and intervals in semitones).
- ``estimate_key(pitches_midi, weights)`` -> ``(Key, confidence)``: Krumhansl-Kessler key profiles
  correlated with a duration-weighted pitch-class histogram (used for hummed melodies).
- ``midi_to_hz``, ``pitch_name``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shared.errors import InvalidInput

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# Spelling for estimated keys: flats where musicians write flats (Bb major, not A# major).
_SPELL_MAJOR = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SPELL_MINOR = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor (aeolian)
}
PENTATONIC = {"major": (0, 2, 4, 7, 9), "minor": (0, 3, 5, 7, 10)}

Mode = Literal["major", "minor"]

_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*(#|♯|b|♭|sharp|flat)?\s*([A-Za-z]*)\s*$")
_MINOR_WORDS = ("min", "minor", "mi", "moll")
_MAJOR_WORDS = ("maj", "major", "ma", "dur")


@dataclass(frozen=True)
class Chord:
    """A chord as its root pitch class and the intervals (semitones) above it."""

    root_pc: int
    intervals: tuple[int, ...]
    symbol: str

    def pitches(self, octave_root_midi: int) -> list[int]:
        """MIDI pitches with the root placed at or above ``octave_root_midi``."""
        root = octave_root_midi + (self.root_pc - octave_root_midi) % 12
        return [root + iv for iv in self.intervals]


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class (0 = C), mode, and the tonic as the user spelled it."""

    tonic_pc: int
    mode: Mode
    tonic_name: str

    @property
    def name(self) -> str:
        return f"{self.tonic_name} {self.mode}"

    @property
    def short(self) -> str:
        """Chord-symbol style (``Cm``, ``F#``): what MIDI key signatures and prompts use."""
        return self.tonic_name + ("m" if self.mode == "minor" else "")

    @property
    def scale_pcs(self) -> tuple[int, ...]:
        return tuple((self.tonic_pc + s) % 12 for s in SCALES[self.mode])

    def pentatonic_pcs(self) -> tuple[int, ...]:
        return tuple((self.tonic_pc + s) % 12 for s in PENTATONIC[self.mode])

    def same_key(self, other: Key) -> bool:
        return self.tonic_pc == other.tonic_pc and self.mode == other.mode

    def chord(self, numeral: str) -> Chord:
        """The chord a roman numeral names in this key (see :func:`parse_numeral`)."""
        return parse_numeral(numeral, self)


def parse_key(text: str) -> Key:
    """Parse ``"Cm"``, ``"C#m"``, ``"F#"``, ``"A minor"``, ``"Bb major"``, ``"Ebmin"``, ``"D♭"``.

    A bare note is major; ``m``/``min``/``minor`` is minor, ``M``/``maj``/``major`` major.
    Raises InvalidInput ``BAD_KEY`` with an example of what works.
    """
    m = _KEY_RE.match(text or "")
    if not m:
        raise InvalidInput(
            f"Could not read the key '{text}'. Write it like 'Cm', 'F#', 'A minor' or 'Bb major'.",
            code="BAD_KEY",
            status=422,
        )
    letter, accidental, quality = m.group(1).upper(), (m.group(2) or ""), m.group(3)
    shift = {"#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1}.get(accidental.lower(), 0)
    mode: Mode
    # "m" is minor and "M" major (chord-symbol habit); spelled-out words in any case.
    if quality == "m" or quality.lower() in _MINOR_WORDS:
        mode = "minor"
    elif quality in ("", "M") or quality.lower() in _MAJOR_WORDS:
        mode = "major"
    else:
        raise InvalidInput(
            f"Could not read the key '{text}'. Write it like 'Cm', 'F#', 'A minor' or 'Bb major'.",
            code="BAD_KEY",
            status=422,
        )
    symbol = {1: "#", -1: "b"}.get(shift, "")
    return Key((_LETTER_PC[letter] + shift) % 12, mode, letter + symbol)


_NUMERAL_RE = re.compile(r"^(b|#)?(VII|VI|IV|V|III|II|I|vii|vi|iv|v|iii|ii|i)(.*)$")
_ROMAN = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}
# Suffix -> intervals above the root; the numeral's case picks the triad's third.
_SUFFIX = {
    "": None,
    "7": "seventh",
    "maj7": (0, 4, 7, 11),
    "9": "ninth",
    "ø7": (0, 3, 6, 10),
    "5": (0, 7, 12),
    "sus2": (0, 2, 7),
}


def parse_numeral(numeral: str, key: Key) -> Chord:
    """Roman numeral -> chord in ``key``: ``i``, ``VI``, ``iv7``, ``Imaj7``, ``V7``, ``iiø7``, ``i5``.

    Upper case is a major triad, lower case minor; ``7`` adds the minor seventh (the dominant
    seventh on a major numeral), ``maj7`` the major seventh, ``9`` a ninth chord, ``ø7`` the
    half-diminished seventh, ``5`` a power chord. Degrees follow the key's own scale.
    """
    m = _NUMERAL_RE.match(numeral)
    if not m or m.group(3) not in _SUFFIX:
        raise ValueError(f"bad roman numeral {numeral!r}")
    accidental, roman, suffix = m.groups()
    degree = _ROMAN[roman.lower()]
    root = (
        key.tonic_pc + SCALES[key.mode][degree] + {"b": -1, "#": 1}.get(accidental or "", 0)
    ) % 12
    major = roman.isupper()
    third = 4 if major else 3
    spec = _SUFFIX[suffix]
    if spec is None:
        intervals: tuple[int, ...] = (0, third, 7)
    elif spec == "seventh":
        intervals = (0, third, 7, 10)
    elif spec == "ninth":
        intervals = (0, third, 7, 10, 14)
    else:
        intervals = spec  # type: ignore[assignment]
    return Chord(root, intervals, numeral)


def midi_to_hz(midi: float | np.ndarray) -> float | np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def pitch_name(midi: int) -> str:
    """``60`` -> ``"C4"``."""
    return f"{NOTE_NAMES[int(midi) % 12]}{int(midi) // 12 - 1}"


# Krumhansl & Kessler (1982) probe-tone profiles, C as tonic.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def estimate_key(
    pitches_midi: np.ndarray | list[int], weights: np.ndarray | list[float] | None = None
) -> tuple[Key, float]:
    """The best-correlating of the 24 keys for a set of notes, with a 0..1 confidence.

    ``weights`` (e.g. note durations) scale each note's vote. The confidence is the margin
    between the best and second-best correlation, scaled to 0..1.
    """
    pitches = np.asarray(pitches_midi, dtype=int)
    w = np.ones(len(pitches)) if weights is None else np.asarray(weights, dtype=float)
    hist = np.zeros(12)
    np.add.at(hist, pitches % 12, w)
    if hist.sum() <= 0:
        raise InvalidInput("There are no notes to estimate a key from.", code="NO_MELODY")
    scores = []
    for mode, profile in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
        for tonic in range(12):
            r = np.corrcoef(hist, np.roll(profile, tonic))[0, 1]
            scores.append((0.0 if np.isnan(r) else float(r), tonic, mode))
    scores.sort(reverse=True)
    best, second = scores[0], scores[1]
    spelled = (_SPELL_MAJOR if best[2] == "major" else _SPELL_MINOR)[best[1]]
    confidence = float(np.clip((best[0] - second[0]) * 5.0, 0.0, 1.0))
    return Key(best[1], best[2], spelled), confidence  # type: ignore[arg-type]
