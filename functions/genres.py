"""The one definition of Soundstage's 14 genres, read by the API, the CLI and both music engines.

Each :class:`Genre` carries what a user sees (``bpm_range``, ``default_bpm``, ``characteristics``,
``moods``) and the template the engines play from: the drum ``feel`` and kit, the swing, the bass,
chord and lead voices, a chord progression per mode (roman numerals, one chord per bar) and the
instrument words MusicGen's prompt is built from.

Offers ``GENRES`` (name -> Genre, in catalog order), ``get_genre(name)`` (accepts common spellings
such as ``"lofi"``, ``"dnb"``, ``"rnb"``; raises ``UNKNOWN_GENRE``) and ``catalog()`` (the public,
JSON-ready list served at ``GET /api/v1/genres``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import InvalidInput


@dataclass(frozen=True)
class Genre:
    """A genre: the catalog entry users see plus the template the engines play from."""

    name: str
    bpm_range: tuple[int, int]
    default_bpm: int
    characteristics: tuple[str, ...]
    moods: tuple[str, ...]
    # Template: how the procedural engine plays it (see functions/music/drums.py, voices.py).
    feel: str  # drum pattern family: half-time, drill, boom-bap, four-on-the-floor, ...
    kit: str  # drum sound family: 808, dusty, boom-bap, 909, breaks, acoustic, jazz, ...
    swing: float  # delay of off-beat subdivisions, as a fraction of one subdivision (1/3 = triplet)
    swing_unit: int  # 16: swung sixteenths, 8: swung eighths
    bass: str  # bass voice: 808, sub, saw, reese, wobble, upright, picked, ...
    chords: str  # chord voice: pad, epiano, piano, stab, supersaw, guitar, strings, organ
    lead: str  # lead voice: bell, pluck, saw, square, sine, vibes, guitar
    progression_minor: tuple[str, ...]  # roman numerals, one chord per bar
    progression_major: tuple[str, ...]
    lead_scale: str  # pentatonic or diatonic: which notes the generated lead may use
    default_key: str
    instruments: tuple[str, ...]  # words for the MusicGen prompt
    aliases: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    def public(self) -> dict:
        """The catalog entry as the API serves it (no engine internals)."""
        return {
            "name": self.name,
            "slug": self.slug,
            "bpm_range": list(self.bpm_range),
            "default_bpm": self.default_bpm,
            "characteristics": list(self.characteristics),
            "moods": list(self.moods),
            "default_key": self.default_key,
        }


# A table reads better one genre per block than one argument per line.
# fmt: off
_ALL = (
    Genre(
        name="trap", bpm_range=(140, 160), default_bpm=150,
        characteristics=("hi-hat rolls", "808 bass", "snare rolls", "half-time snare"),
        moods=("dark", "hype", "aggressive", "menacing"),
        feel="half-time", kit="808", swing=0.0, swing_unit=16,
        bass="808", chords="pad", lead="bell",
        progression_minor=("i", "VI", "i", "VII"), progression_major=("I", "vi", "I", "IV"),
        lead_scale="pentatonic", default_key="C minor",
        instruments=("808 bass", "crisp hi-hats", "dark bells", "synth pad"),
    ),
    Genre(
        name="lo-fi", bpm_range=(70, 90), default_bpm=80,
        characteristics=("vinyl crackle", "jazz chords", "dusty swung drums", "warm tape tone"),
        moods=("chill", "nostalgic", "dreamy", "melancholic"),
        feel="boom-bap", kit="dusty", swing=0.25, swing_unit=16,
        bass="sub", chords="epiano", lead="sine",
        progression_minor=("i7", "iv7", "i7", "VIImaj7"), progression_major=("Imaj7", "vi7", "Imaj7", "IVmaj7"),
        lead_scale="pentatonic", default_key="D minor",
        instruments=("rhodes electric piano", "dusty drums", "vinyl crackle", "soft bass"),
        aliases=("lofi", "lo fi", "lofi hip hop"),
    ),
    Genre(
        name="boom bap", bpm_range=(80, 100), default_bpm=90,
        characteristics=("hard-hitting drums", "vinyl samples", "swung sixteenths", "chopped piano"),
        moods=("gritty", "nostalgic", "confident", "raw"),
        feel="boom-bap", kit="boom-bap", swing=0.2, swing_unit=16,
        bass="upright", chords="piano", lead="pluck",
        progression_minor=("i", "iv", "i", "v"), progression_major=("I", "IV", "I", "V"),
        lead_scale="pentatonic", default_key="A minor",
        instruments=("punchy kick and snare", "sampled piano", "upright bass", "vinyl texture"),
        aliases=("boombap", "boom-bap"),
    ),
    Genre(
        name="house", bpm_range=(120, 130), default_bpm=125,
        characteristics=("four-on-the-floor kick", "off-beat open hats", "piano stabs", "claps on 2 and 4"),
        moods=("uplifting", "groovy", "euphoric", "deep"),
        feel="four-on-the-floor", kit="909", swing=0.08, swing_unit=16,
        bass="saw", chords="stab", lead="pluck",
        progression_minor=("i", "VII", "i", "VI"), progression_major=("I", "vi", "I", "IV"),
        lead_scale="diatonic", default_key="F minor",
        instruments=("909 drums", "piano stabs", "rolling bassline", "plucked synth"),
    ),
    Genre(
        name="drill", bpm_range=(135, 145), default_bpm=140,
        characteristics=("sliding 808s", "dark melodies", "syncopated snares", "triplet hi-hats"),
        moods=("dark", "menacing", "cold", "aggressive"),
        feel="drill", kit="808", swing=0.0, swing_unit=16,
        bass="808-glide", chords="strings", lead="bell",
        progression_minor=("i", "VI", "i", "V"), progression_major=("I", "IV", "I", "V"),
        lead_scale="diatonic", default_key="F# minor",
        instruments=("sliding 808", "dark strings", "bell melody", "triplet hi-hats"),
        aliases=("uk drill", "ny drill"),
    ),
    Genre(
        name="drum and bass", bpm_range=(160, 180), default_bpm=170,
        characteristics=("fast breakbeats", "deep sub bass", "two-step drums", "rolling energy"),
        moods=("energetic", "dark", "liquid", "intense"),
        feel="two-step", kit="breaks", swing=0.0, swing_unit=16,
        bass="reese", chords="pad", lead="pluck",
        progression_minor=("i", "VI", "i", "VII"), progression_major=("I", "V", "I", "IV"),
        lead_scale="diatonic", default_key="E minor",
        instruments=("breakbeat drums", "reese bass", "atmospheric pads", "plucks"),
        aliases=("dnb", "d&b", "drum & bass", "drum n bass", "drumnbass"),
    ),
    Genre(
        name="techno", bpm_range=(125, 135), default_bpm=130,
        characteristics=("driving kick", "hypnotic loops", "rumbling bass", "industrial percussion"),
        moods=("hypnotic", "dark", "driving", "industrial"),
        feel="four-on-the-floor", kit="909", swing=0.0, swing_unit=16,
        bass="rumble", chords="stab", lead="square",
        progression_minor=("i", "i", "VI", "i"), progression_major=("I", "I", "IV", "I"),
        lead_scale="pentatonic", default_key="A minor",
        instruments=("pounding kick", "rumble bass", "metallic percussion", "hypnotic synth loop"),
    ),
    Genre(
        name="hip hop", bpm_range=(85, 95), default_bpm=90,
        characteristics=("boom bap drums", "groovy bass", "soulful samples", "head-nod swing"),
        moods=("groovy", "chill", "confident", "soulful"),
        feel="boom-bap", kit="boom-bap", swing=0.15, swing_unit=16,
        bass="sub", chords="epiano", lead="sine",
        progression_minor=("i", "iv7", "i", "v7"), progression_major=("I", "IVmaj7", "I", "V7"),
        lead_scale="pentatonic", default_key="G minor",
        instruments=("boom bap drums", "soulful keys", "warm bass", "soft flute"),
        aliases=("hiphop", "hip-hop", "rap"),
    ),
    Genre(
        name="r&b", bpm_range=(75, 95), default_bpm=85,
        characteristics=("smooth drums", "melodic bass", "lush extended chords", "finger snaps"),
        moods=("smooth", "romantic", "sensual", "mellow"),
        feel="rnb", kit="rnb", swing=0.12, swing_unit=16,
        bass="sub", chords="epiano", lead="saw",
        progression_minor=("i", "iv7", "i", "VImaj7"), progression_major=("I", "IVmaj7", "I", "V7"),
        lead_scale="diatonic", default_key="Eb major",
        instruments=("smooth rhodes", "finger snaps", "melodic sub bass", "silky synth lead"),
        aliases=("rnb", "r and b", "rhythm and blues"),
    ),
    Genre(
        name="pop", bpm_range=(100, 130), default_bpm=115,
        characteristics=("catchy drums", "bright synths", "four-chord progression", "clean mix"),
        moods=("happy", "uplifting", "energetic", "romantic"),
        feel="backbeat", kit="pop", swing=0.0, swing_unit=16,
        bass="picked", chords="piano", lead="saw",
        progression_minor=("i", "VI", "i", "VII"), progression_major=("I", "V", "I", "IV"),
        lead_scale="diatonic", default_key="C major",
        instruments=("punchy pop drums", "bright piano", "synth lead", "claps"),
    ),
    Genre(
        name="edm", bpm_range=(125, 130), default_bpm=128,
        characteristics=("big drops", "synth leads", "sidechained supersaws", "build-ups"),
        moods=("euphoric", "energetic", "festival", "uplifting"),
        feel="four-on-the-floor", kit="909", swing=0.0, swing_unit=16,
        bass="saw", chords="supersaw", lead="saw",
        progression_minor=("i", "VI", "i", "VII"), progression_major=("I", "V", "I", "IV"),
        lead_scale="diatonic", default_key="G minor",
        instruments=("supersaw chords", "festival kick", "synth lead", "sidechain pumping"),
        aliases=("electronic dance music", "big room"),
    ),
    Genre(
        name="dubstep", bpm_range=(135, 145), default_bpm=140,
        characteristics=("wobble bass", "heavy drops", "half-time snare", "sub pressure"),
        moods=("heavy", "aggressive", "dark", "energetic"),
        feel="half-time", kit="dubstep", swing=0.0, swing_unit=16,
        bass="wobble", chords="pad", lead="square",
        progression_minor=("i", "VI", "i", "VII"), progression_major=("I", "IV", "I", "V"),
        lead_scale="pentatonic", default_key="F minor",
        instruments=("wobble bass", "half-time drums", "sub bass", "dark pad"),
    ),
    Genre(
        name="jazz", bpm_range=(100, 140), default_bpm=120,
        characteristics=("swing ride cymbal", "walking bass", "extended seventh chords", "brushed snare"),
        moods=("smooth", "sophisticated", "mellow", "upbeat"),
        feel="swing", kit="jazz", swing=0.33, swing_unit=8,
        bass="upright", chords="piano", lead="vibes",
        progression_minor=("i", "iv7", "iiø7", "V7"), progression_major=("I", "ii7", "I", "V7"),
        lead_scale="diatonic", default_key="Bb major",
        instruments=("upright bass", "jazz piano", "ride cymbal", "vibraphone"),
    ),
    Genre(
        name="rock", bpm_range=(110, 140), default_bpm=125,
        characteristics=("live drums", "distorted guitars", "crunchy guitar chords", "driving eighth-note bass"),
        moods=("energetic", "aggressive", "anthemic", "raw"),
        feel="backbeat", kit="acoustic", swing=0.0, swing_unit=16,
        bass="picked", chords="guitar", lead="guitar",
        progression_minor=("i", "VI", "i", "VII"), progression_major=("I", "IV", "I", "V"),
        lead_scale="pentatonic", default_key="E minor",
        instruments=("live drum kit", "distorted electric guitars", "bass guitar", "crash cymbals"),
    ),
)
# fmt: on

GENRES: dict[str, Genre] = {g.name: g for g in _ALL}


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.strip().lower())


_LOOKUP: dict[str, Genre] = {}
for _g in _ALL:
    for _alias in (_g.name, _g.slug, *_g.aliases):
        _LOOKUP[_norm(_alias)] = _g


def get_genre(name: str) -> Genre:
    """The genre called ``name`` (case, spaces, dashes and common aliases forgiven).

    Raises InvalidInput ``UNKNOWN_GENRE`` listing the 14 genres.
    """
    genre = _LOOKUP.get(_norm(name or ""))
    if genre is None:
        raise InvalidInput(
            f"Unknown genre '{name}'. Choose one of: {', '.join(GENRES)}.",
            code="UNKNOWN_GENRE",
            status=422,
            details={"genres": list(GENRES)},
        )
    return genre


def catalog() -> list[dict]:
    """Every genre's public entry, in catalog order."""
    return [g.public() for g in _ALL]
