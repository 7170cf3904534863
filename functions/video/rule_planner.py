"""The rule-based scene planner: prompt + timing + lyrics -> a ``VideoPlan`` without a model.

Offers ``plan_rule_based(prompt, timing, lyrics, max_shots, engine=...)``: mood from the
prompt's words and the music, palette and metaphors from ``director``, one scene per kind of
section, shots spread over sections by how long they play and reused when a section returns,
transitions from tempo, energy and section changes, and words sung in a section as its shots'
motifs. It is the planner without an OpenAI key and the fallback when the LLM fails.
"""

from __future__ import annotations

from typing import Any

from . import director
from .lyrics import Lyrics
from .plan import Character, Scene, Shot, SlotPlan, VideoPlan, assign_without_repeats

STOPWORDS = set(
    "the a an and or but of to in on at for with from by is are was were be been it its this "
    "that these those i you he she we they me my your our their his her as into over under "
    "about like just so very all some any each every no not oh yeah la na ooh".split()
)


def _energy_band(energy: float) -> str:
    return "high" if energy >= 0.66 else "medium" if energy >= 0.33 else "low"


def _subject(prompt: str) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= 220 else text[:217].rsplit(" ", 1)[0] + "..."


def _title(subject: str, max_words: int = 8) -> str:
    """The prompt's first clause, at most ``max_words`` words."""
    clause = subject.split(",")[0].split(".")[0].strip()
    words = clause.split()
    return (" ".join(words[:max_words]) + ("..." if len(words) > max_words else "")) or "Untitled"


def _metaphors(words: list[str]) -> list[str]:
    found = [director.METAPHORS[w] for w in words if w in director.METAPHORS]
    return list(dict.fromkeys(found)) or [director.DEFAULT_METAPHOR]


def _role(label: str, order: int) -> str:
    key = label.lower().strip()
    for name, role in director.SECTION_ROLES.items():
        if name in key:
            return role
    return director.GENERIC_ROLES[order % len(director.GENERIC_ROLES)]


def _lyric_motifs(lyrics: Lyrics, t0: float, t1: float, limit: int = 3) -> list[str]:
    words = [w["word"].lower().strip(".,!?\"'") for w in lyrics.words if t0 <= w["start_s"] < t1]
    keep = [w for w in words if len(w) > 3 and w not in STOPWORDS]
    return list(dict.fromkeys(keep))[:limit]


def plan_rule_based(
    prompt: str, timing: dict[str, Any], lyrics: Lyrics, max_shots: int, *, engine: str
) -> VideoPlan:
    """A plan from rules: mood, palette and metaphors from the prompt and music, one scene per
    kind of section (at most 4, at least 3 when there are shots for them), shots shared out by
    how long each kind of section plays and reused when a section returns."""
    slots = timing["slots"]
    words = director.words_of(prompt)
    tempo = float(timing.get("tempo_bpm") or 120.0)
    mood = director.detect_mood(prompt, tempo, director.mean_slot_energy(timing))
    palette = director.palette_for(prompt, mood)
    lighting = str(director.MOODS[mood]["lighting"])
    metaphors = _metaphors(words)
    subject = _subject(prompt)

    characters: list[Character] = []
    person = next((w for w in words if w in director.PERSON_WORDS), None)
    if person:
        characters.append(
            Character(
                id="char_1",
                name=f"The {person}",
                description=f"the {person} of the prompt, the same face, hair and clothes in every shot",
            )
        )
    char_ids = [c.id for c in characters]

    labels = list(dict.fromkeys(s["section"] for s in slots))
    n_shots = max(2, min(max_shots, len(slots)))
    # One scene per kind of section (at most 4); a song with fewer kinds still gets up to 3
    # places, so its shots don't all start from the same picture.
    n_scenes = min(4, max(len(labels), min(3, n_shots)))
    scenes_of_label = {
        lab: [f"scene_{j + 1}" for j in range(n_scenes) if j % len(labels) == i]
        or [f"scene_{i % n_scenes + 1}"]
        for i, lab in enumerate(labels)
    }
    scenes: list[Scene] = []
    for j in range(n_scenes):
        lab = labels[j % len(labels)]
        rotated = palette[j % len(palette) :] + palette[: j % len(palette)]
        scenes.append(
            Scene(
                id=f"scene_{j + 1}",
                setting=_role(lab, j) if j < len(labels) else director.GENERIC_ROLES[j % 4],
                description=f"{subject} ({lab})",
                palette=rotated[:4],
                lighting=lighting,
                metaphor=metaphors[j % len(metaphors)],
                character_ids=char_ids,
            )
        )

    # Shots per kind of section, in proportion to its playing time (at least one each).
    time_of: dict[str, float] = {}
    for s in slots:
        time_of[s["section"]] = time_of.get(s["section"], 0.0) + s["end_s"] - s["start_s"]
    share = {lab: 1 for lab in labels[:n_shots]}
    while sum(share.values()) < n_shots:
        lab = max(share, key=lambda k: time_of[k] / share[k])
        share[lab] += 1

    shots: list[Shot] = []
    shots_of_label: dict[str, list[str]] = {}
    for lab, count in share.items():
        first_i = next(i for i, s in enumerate(slots) if s["section"] == lab)
        last_i = first_i
        while last_i + 1 < len(slots) and slots[last_i + 1]["section"] == lab:
            last_i += 1
        first = slots[first_i]
        band = _energy_band(float(first.get("energy", 0.5)))
        # Words sung the first time this section plays become the shot's visual motifs.
        motifs = _lyric_motifs(lyrics, first["start_s"], slots[last_i]["end_s"])
        for k in range(count):
            scene_id = scenes_of_label[lab][k % len(scenes_of_label[lab])]
            scene = next(sc for sc in scenes if sc.id == scene_id)
            move = director.CAMERA_BY_ENERGY[band][(len(shots) + k) % 4]
            motif = f", motif: {', '.join(motifs)}" if motifs else ""
            shot_id = f"shot_{len(shots) + 1}"
            shots.append(
                Shot(
                    id=shot_id,
                    scene_id=scene.id,
                    prompt=(
                        f"{subject.rstrip('.!?')}. {scene.setting}; {scene.metaphor}{motif}. {lighting}. "
                        f"{director.CAMERA_PHRASES[move]}. {director.STYLE_DEFAULT}"
                    ),
                    camera_move=move,  # type: ignore[arg-type]
                    motion=band,  # type: ignore[arg-type]
                    character_ids=char_ids,
                )
            )
            shots_of_label.setdefault(lab, []).append(shot_id)
    all_ids = [s.id for s in shots]
    # Kinds of section past the shot budget (more kinds than shots) borrow from every shot.
    preferred = [shots_of_label.get(s["section"], all_ids) for s in slots]
    chosen = assign_without_repeats(slots, preferred, all_ids)

    planned: list[SlotPlan] = []
    for i, s in enumerate(slots):
        if i == 0:
            transition = "fade"
        elif s["section"] != slots[i - 1]["section"]:
            quiet = float(s.get("energy", 0.5)) < 0.33 or any(
                k in s["section"].lower() for k in ("bridge", "outro")
            )
            transition = "fade" if quiet else ("cut" if tempo >= 110 else "crossfade")
        else:
            transition = (
                "cut" if tempo >= 95 or float(s.get("energy", 0.5)) >= 0.66 else "crossfade"
            )
        shot_id, variant = chosen[i]
        planned.append(
            SlotPlan(
                index=i,
                start_s=s["start_s"],
                end_s=s["end_s"],
                section=s["section"],
                shot_id=shot_id,
                variant=variant,
                transition_in=transition,  # type: ignore[arg-type]
            )
        )
    return VideoPlan(
        title=_title(subject),
        logline=f"A {mood} video: {subject}",
        style=director.STYLE_DEFAULT,
        mood=mood,
        engine=engine,
        characters=characters,
        scenes=scenes,
        shots=shots,
        slots=planned,
    )
