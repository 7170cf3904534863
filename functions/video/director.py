"""A music-video director's working knowledge, as data both planners use.

The LLM gets it as its system prompt (``system_prompt``); the rule-based planner looks things up
in the same tables, so the two planners speak one visual language: moods with their palettes
and lighting, visual metaphors for common lyric and prompt words, camera moves by energy,
transitions by what happens in the music, and what each part of a song is for.

Both planners also read the music through it: ``detect_mood`` (prompt words first, tempo and
energy to break ties), ``palette_for`` (colours named in the prompt, then the mood's) and
``mean_slot_energy`` (of the timing's slots).
"""

from __future__ import annotations

import re
from typing import Any

MOODS: dict[str, dict[str, object]] = {
    "euphoric": {
        "words": {
            "party",
            "dance",
            "club",
            "celebrate",
            "joy",
            "summer",
            "festival",
            "happy",
            "bright",
        },
        "palette": ["#ff3d7f", "#ffb400", "#00d4ff", "#7b2ff7"],
        "lighting": "strobing club light, saturated colour washes, lens flares",
    },
    "melancholic": {
        "words": {"rain", "lonely", "tears", "sad", "goodbye", "lost", "memory", "grey", "winter"},
        "palette": ["#2b3a55", "#5c6b8a", "#a3b1c6", "#e0e6ef"],
        "lighting": "overcast soft light, wet reflections, low contrast",
    },
    "dark": {
        "words": {"night", "shadow", "dark", "fear", "storm", "city", "noir", "danger", "ghost"},
        "palette": ["#0b0c10", "#1f2833", "#c3073f", "#66fcf1"],
        "lighting": "hard low-key light, neon edges, deep shadows",
    },
    "dreamy": {
        "words": {"dream", "float", "cloud", "space", "stars", "ocean", "moon", "slow", "sky"},
        "palette": ["#b8c0ff", "#ffd6ff", "#c8b6ff", "#e7c6ff"],
        "lighting": "hazy backlight, bloom, pastel gradients",
    },
    "romantic": {
        "words": {"love", "heart", "kiss", "together", "sunset", "rose", "forever", "you"},
        "palette": ["#ff6f61", "#ffb3a7", "#ffd6a5", "#6b4e71"],
        "lighting": "golden hour, warm rim light, shallow depth of field",
    },
    "epic": {
        "words": {"rise", "fight", "fire", "mountain", "hero", "war", "power", "sun", "run"},
        "palette": ["#1d1f3a", "#e85d04", "#faa307", "#f1faee"],
        "lighting": "volumetric god rays, high contrast, wide dynamic skies",
    },
}

COLOUR_WORDS = {
    "red": "#d62828",
    "blue": "#1d4ed8",
    "green": "#2a9d8f",
    "gold": "#e9c46a",
    "golden": "#e9c46a",
    "purple": "#7b2cbf",
    "pink": "#ff70a6",
    "orange": "#f77f00",
    "neon": "#39ff14",
    "silver": "#c0c0c0",
    "black": "#111111",
    "white": "#f8f9fa",
    "teal": "#008080",
    "yellow": "#ffd60a",
    "violet": "#8f00ff",
    "cyan": "#00e5ff",
}

METAPHORS: dict[str, str] = {
    "love": "two lights drifting toward each other until they merge",
    "heart": "a pulse of light that beats with the kick drum",
    "fire": "embers rising into a dark sky",
    "rain": "rain streaking down glass, the city blurred behind it",
    "night": "a city seen from above, streets like veins of light",
    "ocean": "waves folding in slow motion under moonlight",
    "sea": "waves folding in slow motion under moonlight",
    "road": "an endless road unspooling under headlights",
    "drive": "an endless road unspooling under headlights",
    "city": "towers of light reflected in puddles",
    "dream": "objects floating weightless in a pastel void",
    "space": "a lone figure against a sea of stars",
    "stars": "a lone figure against a sea of stars",
    "time": "clocks melting into sand",
    "freedom": "birds bursting from an opened cage",
    "free": "birds bursting from an opened cage",
    "lost": "footprints fading in snow",
    "rise": "a sunrise breaking over a ridge",
    "storm": "lightning splitting a purple sky",
    "dance": "silhouettes dancing in coloured smoke",
    "summer": "sunlight flickering through palm leaves",
    "forest": "light shafts through tall pines",
    "memory": "polaroids fluttering in the wind",
}
DEFAULT_METAPHOR = "light and shadow moving in time with the music"

PERSON_WORDS = (
    "girl",
    "boy",
    "woman",
    "man",
    "singer",
    "dancer",
    "robot",
    "astronaut",
    "couple",
    "lovers",
    "child",
    "kid",
    "rider",
    "drummer",
    "guitarist",
    "hero",
    "stranger",
    "friend",
)

# Camera language by the music's energy (0..1 within the song).
CAMERA_BY_ENERGY = {
    "low": ["push_in", "static", "pull_out", "tilt_up"],
    "medium": ["pan_right", "push_in", "pan_left", "tilt_down"],
    "high": ["orbit", "pan_left", "push_in", "pan_right"],
}
CAMERA_PHRASES = {
    "static": "locked-off camera",
    "push_in": "slow dolly push-in",
    "pull_out": "slow pull-out revealing the space",
    "pan_left": "smooth pan left",
    "pan_right": "smooth pan right",
    "tilt_up": "tilt up toward the sky",
    "tilt_down": "tilt down onto the subject",
    "orbit": "orbiting camera around the subject",
}

# What each part of a song is for, visually.
SECTION_ROLES = {
    "intro": "establishing wide shot that sets place and palette",
    "verse": "the story moving forward: the character in their world, medium shots",
    "pre-chorus": "tension building: tighter framing, quicker motion",
    "chorus": "the emotional peak: the boldest image, the brightest palette, the widest move",
    "bridge": "a turn: a new place or a dream-like break from the story",
    "outro": "resolution: the camera pulls away, the light fades",
}
GENERIC_ROLES = [
    "establishing the world",
    "the story moving forward",
    "the emotional peak",
    "a turn in the story",
]

TRANSITIONS = {
    "cut": "hard cut on the beat: energy, rhythm, within sections and on strong downbeats",
    "crossfade": "dissolve across the beat: flow between sections in calm or slow music",
    "fade": "fade through black: a change of time or place, into the bridge or the outro",
}

STYLE_DEFAULT = "cinematic music video, 35mm film look, shallow depth of field, rich colour grade"


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def system_prompt(max_shots: int) -> str:
    """The planner LLM's instructions: the director's tables plus the plan's hard rules."""
    moods = "\n".join(
        f"- {name}: palette {', '.join(m['palette'])}; lighting: {m['lighting']}"  # type: ignore[arg-type]
        for name, m in MOODS.items()
    )
    metaphors = "\n".join(f"- {k}: {v}" for k, v in list(METAPHORS.items())[:16])
    cameras = "\n".join(f"- {k}: {v}" for k, v in CAMERA_PHRASES.items())
    roles = "\n".join(f"- {k}: {v}" for k, v in SECTION_ROLES.items())
    transitions = "\n".join(f"- {k}: {v}" for k, v in TRANSITIONS.items())
    return f"""You are a music video director. From the artist's prompt, the song's analysis
(tempo, sections, beat-aligned slots with their energy) and its lyrics, design a music video.

Design shots, not slots: the song has many slots, but at most {max_shots} shots are generated.
A section that comes back (a second chorus) reuses that section's shots; vary a reused shot
with variant mirror, reverse or reframe. Never give two consecutive slots the same shot.

Director's knowledge:
Moods, palettes and lighting:
{moods}
Visual metaphors for common words:
{metaphors}
Camera moves (choose by energy: calm -> push_in/static/pull_out, driving -> pan/orbit):
{cameras}
What each section is for:
{roles}
Transitions:
{transitions}

Rules:
- characters: recurring people; describe looks and clothes precisely so every clip matches.
- scenes: one per place or look; palette 2-5 colours as #rrggbb; one visual metaphor each.
- shots: at most {max_shots}; each prompt is self-contained for an image/video model
  (subject, action, setting, lighting, palette, camera move, style), under 60 words.
- slots: one entry per slot index given, in order; start_shift_s may move a slot's start by
  up to 2 seconds (0 keeps the beat-aligned boundary) when the story needs it.
- transition_in of slot 0 is "fade".
Answer with JSON that matches the schema."""


def detect_mood(prompt: str, tempo_bpm: float, mean_energy: float) -> str:
    """The mood whose words the prompt uses most; the music breaks ties (tempo, energy)."""
    words = set(words_of(prompt))
    scores = {name: len(words & m["words"]) for name, m in MOODS.items()}  # type: ignore[operator]
    best = max(scores.values())
    if best > 0:
        tied = [m for m, s in scores.items() if s == best]
        if len(tied) == 1:
            return tied[0]
        order = ["euphoric", "epic", "romantic", "dark", "dreamy", "melancholic"]
        if tempo_bpm < 100:
            order = order[::-1]
        return next(m for m in order if m in tied)
    if tempo_bpm >= 125 or mean_energy > 0.7:
        return "euphoric"
    if tempo_bpm < 85:
        return "dreamy" if mean_energy < 0.5 else "melancholic"
    return "epic" if mean_energy > 0.5 else "romantic"


def palette_for(prompt: str, mood: str) -> list[str]:
    """Up to five colours: those the prompt names, then the mood's palette."""
    base = list(MOODS[mood]["palette"])  # type: ignore[arg-type]
    named = [COLOUR_WORDS[w] for w in words_of(prompt) if w in COLOUR_WORDS]
    merged = list(dict.fromkeys(named + base))
    return merged[:5]


def mean_slot_energy(timing: dict[str, Any]) -> float:
    """The mean ``energy`` (0-1) of the timing's slots; 0.5 without slots."""
    vals = [float(s.get("energy", 0.5)) for s in timing["slots"]]
    return sum(vals) / len(vals) if vals else 0.5
