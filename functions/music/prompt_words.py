"""Reading a free-text music prompt: which genre, mood and instruments its words ask for.

The procedural engine needs a genre template, one of the genre's moods and its voices; a person
writes "warm lo-fi piano with vinyl crackle". This module bridges the two with a small, explicit
vocabulary (no model), and says for every choice which words led to it, so a result can report
what was inferred instead of pretending the prompt was understood in full.

Offers:
- ``infer_genre(prompt, bpm)`` -> :class:`Inferred` (a genre named in the prompt, else one its
  words suggest, else the genre whose tempo range holds ``bpm``, else pop).
- ``nearest_mood(genre, text)`` -> :class:`Inferred` (a mood of the genre: the text itself when
  it is one, else the genre mood nearest the text's words on a valence/energy plane).
- ``infer_instruments(prompt)`` -> ``{"chords": "piano", ...}``: voices the prompt names.
- ``mood_words(prompt)``: the mood words a prompt holds (for a prompt-only request).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from functions.genres import _LOOKUP, GENRES, Genre, get_genre
from shared.errors import InvalidInput

DEFAULT_GENRE = "pop"


@dataclass(frozen=True)
class Inferred:
    """A choice and why: ``how`` is ``given``, ``named``, ``suggested``, ``nearest``,
    ``tempo`` or ``default``; ``words`` are the prompt words behind it."""

    value: str
    how: str
    words: tuple[str, ...] = field(default_factory=tuple)

    def report(self) -> dict:
        return {"value": self.value, "how": self.how, "words": list(self.words)}


# Every genre mood on a (valence, energy) plane, each axis -1..1: the "nearest mood" is the
# genre mood closest to where a free-text word sits. Rough placements after Russell's
# circumplex of affect; enough to send "sad" to melancholic and "sunny" to happy.
MOOD_PLANE: dict[str, tuple[float, float]] = {
    "aggressive": (-0.5, 0.9), "anthemic": (0.6, 0.7), "chill": (0.4, -0.7),
    "cold": (-0.5, -0.1), "confident": (0.5, 0.4), "dark": (-0.6, 0.2), "deep": (0.0, -0.1),
    "dreamy": (0.3, -0.6), "driving": (0.1, 0.7), "energetic": (0.5, 0.8),
    "euphoric": (0.9, 0.8), "festival": (0.8, 0.9), "gritty": (-0.3, 0.4),
    "groovy": (0.6, 0.3), "happy": (0.9, 0.4), "heavy": (-0.4, 0.8), "hype": (0.5, 0.9),
    "hypnotic": (0.0, 0.2), "industrial": (-0.5, 0.6), "intense": (-0.2, 0.9),
    "liquid": (0.4, 0.2), "melancholic": (-0.6, -0.5), "mellow": (0.4, -0.6),
    "menacing": (-0.8, 0.5), "nostalgic": (0.0, -0.4), "raw": (-0.2, 0.6),
    "romantic": (0.7, -0.3), "sensual": (0.5, -0.3), "smooth": (0.5, -0.4),
    "sophisticated": (0.4, -0.2), "soulful": (0.4, -0.2), "upbeat": (0.8, 0.6),
    "uplifting": (0.8, 0.5),
}  # fmt: skip

# Everyday mood words that are not a genre mood, placed on the same plane.
MOOD_WORDS: dict[str, tuple[float, float]] = {
    "sad": (-0.8, -0.5), "sorrowful": (-0.8, -0.5), "lonely": (-0.6, -0.5),
    "gloomy": (-0.7, -0.4), "moody": (-0.3, -0.2), "emotional": (-0.2, -0.3),
    "haunting": (-0.5, -0.2), "eerie": (-0.7, 0.1), "ominous": (-0.8, 0.3),
    "sinister": (-0.8, 0.4), "scary": (-0.8, 0.5), "spooky": (-0.6, 0.3),
    "angry": (-0.7, 0.9), "furious": (-0.8, 1.0), "hard": (-0.3, 0.8), "epic": (0.4, 0.8),
    "triumphant": (0.8, 0.7), "joyful": (0.9, 0.5), "cheerful": (0.9, 0.4),
    "sunny": (0.8, 0.3), "bright": (0.7, 0.4), "playful": (0.7, 0.4), "fun": (0.8, 0.5),
    "party": (0.8, 0.8), "warm": (0.5, -0.3), "cozy": (0.5, -0.5), "calm": (0.3, -0.8),
    "relaxed": (0.4, -0.7), "relaxing": (0.4, -0.7), "peaceful": (0.5, -0.8),
    "laid back": (0.4, -0.6), "lazy": (0.2, -0.8), "sleepy": (0.1, -0.9),
    "sexy": (0.5, -0.2), "love": (0.7, -0.3), "mysterious": (-0.1, -0.2),
    "ethereal": (0.3, -0.6), "chilled": (0.4, -0.7), "hopeful": (0.6, 0.1),
}  # fmt: skip

# Words that point at a genre without naming it (the genre's own names and aliases come first).
GENRE_HINTS: dict[str, str] = {
    "vinyl": "lo-fi", "crackle": "lo-fi", "tape": "lo-fi", "dusty": "lo-fi", "study": "lo-fi",
    "808": "trap", "hi hat rolls": "trap", "sliding 808": "drill", "wobble": "dubstep",
    "breakbeat": "drum and bass", "jungle": "drum and bass", "reese": "drum and bass",
    "saxophone": "jazz", "sax": "jazz", "bebop": "jazz", "walking bass": "jazz",
    "swing": "jazz", "distorted": "rock", "riff": "rock", "riffs": "rock",
    "disco": "house", "rave": "techno", "warehouse": "techno", "drop": "edm",
    "supersaw": "edm", "chopped": "boom bap", "soul sample": "hip hop", "neo soul": "r&b",
}  # fmt: skip

# Instrument words -> the procedural engine's voice for a part (functions/music/voices.py).
INSTRUMENT_WORDS: dict[str, tuple[str, str]] = {
    "electric piano": ("chords", "epiano"), "e piano": ("chords", "epiano"),
    "rhodes": ("chords", "epiano"), "wurlitzer": ("chords", "epiano"),
    "piano": ("chords", "piano"), "keys": ("chords", "piano"), "organ": ("chords", "organ"),
    "strings": ("chords", "strings"), "violin": ("chords", "strings"),
    "cello": ("chords", "strings"), "orchestral": ("chords", "strings"),
    "pad": ("chords", "pad"), "pads": ("chords", "pad"), "guitar": ("chords", "guitar"),
    "supersaw": ("chords", "supersaw"), "stabs": ("chords", "stab"),
    "bell": ("lead", "bell"), "bells": ("lead", "bell"), "flute": ("lead", "sine"),
    "vibraphone": ("lead", "vibes"), "vibes": ("lead", "vibes"), "pluck": ("lead", "pluck"),
    "plucks": ("lead", "pluck"), "synth lead": ("lead", "saw"),
    "808": ("bass", "808"), "upright bass": ("bass", "upright"),
    "double bass": ("bass", "upright"), "sub bass": ("bass", "sub"),
    "wobble": ("bass", "wobble"), "reese": ("bass", "reese"),
}  # fmt: skip


def _norm(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9&]+", " ", (text or "").lower()).strip() + " "


def _find(text: str, phrases) -> list[str]:
    """Phrases present as whole words, longest first; a shorter phrase inside a longer match
    ("piano" in "electric piano") is not counted twice."""
    found, taken = [], text
    for phrase in sorted(phrases, key=len, reverse=True):
        needle = f" {phrase} "
        if needle in taken:
            found.append(phrase)
            taken = taken.replace(needle, " | ")
    return found


def infer_genre(prompt: str, bpm: float | None = None) -> Inferred:
    """The genre a prompt asks for (see module docstring for the order of evidence)."""
    text = _norm(prompt)
    named = _find(text, _LOOKUP)
    if named:
        # The earliest mention wins when a prompt names two genres.
        first = min(named, key=lambda w: text.index(f" {w} "))
        return Inferred(get_genre(first).name, "named", (first,))
    hints = _find(text, GENRE_HINTS)
    if hints:
        votes: dict[str, list[str]] = {}
        for w in hints:
            votes.setdefault(GENRE_HINTS[w], []).append(w)
        genre, words = max(votes.items(), key=lambda kv: len(kv[1]))
        return Inferred(genre, "suggested", tuple(words))
    if bpm is not None:
        fits = [g for g in GENRES.values() if g.bpm_range[0] <= bpm <= g.bpm_range[1]]
        if fits:
            best = min(fits, key=lambda g: abs(g.default_bpm - bpm))
            return Inferred(best.name, "tempo", ())
    return Inferred(DEFAULT_GENRE, "default", ())


def mood_words(prompt: str) -> list[str]:
    """Mood words (genre moods or everyday ones) found in the prompt, longest first."""
    return _find(_norm(prompt), {**MOOD_PLANE, **MOOD_WORDS})


def nearest_mood(genre: Genre, text: str | None, *, prompt: str = "") -> Inferred:
    """One of ``genre``'s moods for free text; raises ``UNKNOWN_MOOD`` when no word is known.

    Without ``text``: a mood word in ``prompt`` if any, else the genre's first mood.
    """
    if text is None or not text.strip():
        words = mood_words(prompt)
        if not words:
            return Inferred(genre.moods[0], "default", ())
        return _nearest(genre, words)
    m = " ".join(text.strip().lower().split())
    if m in genre.moods:
        return Inferred(m, "given", (m,))
    words = mood_words(m)
    if not words:
        raise InvalidInput(
            f"'{text}' is not a mood we know; choose one of {genre.name}'s moods: "
            f"{', '.join(genre.moods)}, or describe it in everyday words (sad, warm, angry...).",
            code="UNKNOWN_MOOD",
            status=422,
            details={"moods": list(genre.moods)},
        )
    return _nearest(genre, words)


def _nearest(genre: Genre, words: list[str]) -> Inferred:
    for w in words:  # a word that is itself one of the genre's moods needs no plane
        if w in genre.moods:
            return Inferred(w, "named" if len(words) == 1 else "nearest", tuple(words))
    points = [MOOD_PLANE.get(w) or MOOD_WORDS[w] for w in words]
    v = sum(p[0] for p in points) / len(points)
    e = sum(p[1] for p in points) / len(points)
    best = min(genre.moods, key=lambda m: math.dist(MOOD_PLANE[m], (v, e)))
    return Inferred(best, "nearest", tuple(words))


def infer_instruments(prompt: str) -> dict[str, Inferred]:
    """Part -> voice for the instruments a prompt names (the first mention per part wins)."""
    text = _norm(prompt)
    found = _find(text, INSTRUMENT_WORDS)
    found.sort(key=lambda w: text.index(f" {w} ") if f" {w} " in text else len(text))
    out: dict[str, Inferred] = {}
    for w in found:
        part, voice = INSTRUMENT_WORDS[w]
        out.setdefault(part, Inferred(voice, "named", (w,)))
    return out
