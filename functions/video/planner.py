"""Scene planning: prompt + analysis + lyrics -> a validated ``VideoPlan``.

Offers:
- ``plan_with_llm(...)``: OpenAI chat with a strict JSON Schema (``response_format`` of type
  ``json_schema``), validated by pydantic and repaired by ``plan.finalize_llm_plan``; 90 s per
  attempt, 3 attempts (timeouts, 5xx, 429 and malformed JSON are retried).
- ``plan_rule_based(...)``: the fallback planner: mood from the prompt's words and the music,
  palette and metaphors from ``director``, one scene per kind of section, shots spread over
  sections by how long they play, reused when a section returns.
- ``make_plan(...)``: the LLM when a key is set, else (or when it fails) the rule-based
  planner; returns the plan and the LLM usage to bill (every answered attempt is billed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.config import get_settings
from shared.prices import LLM_MAX_OUTPUT_TOKENS

from . import director, providers
from .lyrics import Lyrics
from .plan import (
    Character,
    LLMPlan,
    Scene,
    Shot,
    SlotPlan,
    VideoPlan,
    assign_without_repeats,
    finalize_llm_plan,
)

STOPWORDS = set(
    "the a an and or but of to in on at for with from by is are was were be been it its this "
    "that these those i you he she we they me my your our their his her as into over under "
    "about like just so very all some any each every no not oh yeah la na ooh".split()
)


class MalformedPlan(Exception):
    """The LLM answered, but not with a usable plan (invalid JSON, schema or content)."""


@dataclass
class PlanOutcome:
    plan: VideoPlan
    engine: str
    fallback_reason: str = ""
    usage: list[dict[str, int]] = field(default_factory=list)  # one per billed LLM answer
    model: str = ""


# -- helpers shared by both planners ------------------------------------------------------------


def detect_mood(prompt: str, tempo_bpm: float, mean_energy: float) -> str:
    """The mood whose words the prompt uses most; the music breaks ties (tempo, energy)."""
    words = set(director.words_of(prompt))
    scores = {name: len(words & m["words"]) for name, m in director.MOODS.items()}  # type: ignore[operator]
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
    base = list(director.MOODS[mood]["palette"])  # type: ignore[arg-type]
    named = [
        director.COLOUR_WORDS[w] for w in director.words_of(prompt) if w in director.COLOUR_WORDS
    ]
    merged = list(dict.fromkeys(named + base))
    return merged[:5]


def _energy_band(energy: float) -> str:
    return "high" if energy >= 0.66 else "medium" if energy >= 0.33 else "low"


def _summary_for_llm(
    prompt: str, timing: dict[str, Any], lyrics: Lyrics, max_shots: int
) -> dict[str, Any]:
    slots = [
        {k: s[k] for k in ("index", "start_s", "end_s", "section", "energy") if k in s}
        for s in timing["slots"]
    ]
    return {
        "prompt": prompt,
        "tempo_bpm": timing.get("tempo_bpm"),
        "key": timing.get("key"),
        "duration_s": timing.get("duration_s"),
        "sections": timing.get("sections", []),
        "slots": slots,
        "max_shots": max_shots,
        "lyrics": {"status": lyrics.status, "lines": lyrics.lines()[:80]},
    }


# -- the LLM planner ----------------------------------------------------------------------------


def response_format() -> dict[str, Any]:
    """OpenAI structured outputs: a strict JSON Schema built from ``LLMPlan``."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "music_video_plan",
            "strict": True,
            "schema": LLMPlan.model_json_schema(),
        },
    }


def plan_with_llm(
    prompt: str,
    timing: dict[str, Any],
    lyrics: Lyrics,
    max_shots: int,
    *,
    client: Any,
    model: str,
    usage: list[dict[str, int]],
    policy: providers.RetryPolicy = providers.PLANNER,
) -> VideoPlan:
    """Ask the LLM for a plan; every answered attempt's token usage is appended to ``usage``.

    Raises the last error when all attempts fail (the caller falls back).
    """
    mood = detect_mood(prompt, float(timing.get("tempo_bpm") or 120), _mean_energy(timing))
    messages = [
        {"role": "system", "content": director.system_prompt(max_shots)},
        {
            "role": "user",
            "content": json.dumps(_summary_for_llm(prompt, timing, lyrics, max_shots)),
        },
    ]

    def attempt() -> VideoPlan:
        completion = client.chat.completions.create(
            model=model,
            messages=messages,
            response_format=response_format(),
            max_completion_tokens=LLM_MAX_OUTPUT_TOKENS,
            temperature=0.7,
            timeout=policy.timeout_s,
        )
        if completion.usage is not None:
            usage.append(
                {
                    "input_tokens": int(completion.usage.prompt_tokens),
                    "output_tokens": int(completion.usage.completion_tokens),
                }
            )
        message = completion.choices[0].message
        if getattr(message, "refusal", None):
            raise MalformedPlan(f"the model refused: {message.refusal}")
        try:
            raw = LLMPlan.model_validate_json(message.content or "")
            return finalize_llm_plan(
                raw,
                timing["slots"],
                timing["cut_candidates_s"],
                max_shots,
                engine=f"openai:{model}",
                default_palette=palette_for(prompt, mood),
            )
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            raise MalformedPlan(str(exc)[:300]) from exc

    def retry_on(exc: BaseException) -> bool:
        return isinstance(exc, MalformedPlan) or providers.is_transient(exc)

    return policy.retrying(retry_on)(attempt)


def _mean_energy(timing: dict[str, Any]) -> float:
    vals = [float(s.get("energy", 0.5)) for s in timing["slots"]]
    return sum(vals) / len(vals) if vals else 0.5


# -- the rule-based planner ---------------------------------------------------------------------


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
    mood = detect_mood(prompt, tempo, _mean_energy(timing))
    palette = palette_for(prompt, mood)
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


def make_plan(
    prompt: str,
    timing: dict[str, Any],
    lyrics: Lyrics,
    max_shots: int,
    *,
    use_llm: bool = True,
    client: Any | None = None,
) -> PlanOutcome:
    """The LLM plan when a key is set (and ``use_llm``), else the rule-based plan; an LLM that
    fails every attempt falls back to the rules, and the outcome says why."""
    settings = get_settings()
    model = settings.openai_plan_model
    if use_llm and client is None:
        client = providers.openai_client(providers.PLANNER.timeout_s)
    if not use_llm or client is None:
        reason = "local engines requested" if not use_llm else "no OpenAI key is configured"
        plan = plan_rule_based(prompt, timing, lyrics, max_shots, engine="rule-based (local)")
        return PlanOutcome(plan=plan, engine=plan.engine, fallback_reason=reason)
    usage: list[dict[str, int]] = []
    try:
        plan = plan_with_llm(
            prompt, timing, lyrics, max_shots, client=client, model=model, usage=usage
        )
        return PlanOutcome(plan=plan, engine=plan.engine, usage=usage, model=model)
    except Exception as exc:  # noqa: BLE001 - any LLM failure means the rules take over
        reason = f"the LLM planner failed ({type(exc).__name__}: {str(exc)[:160]})"
        plan = plan_rule_based(prompt, timing, lyrics, max_shots, engine="rule-based (fallback)")
        return PlanOutcome(
            plan=plan, engine=plan.engine, fallback_reason=reason, usage=usage, model=model
        )
