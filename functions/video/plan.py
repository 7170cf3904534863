"""The scene plan's pydantic models and the checks every plan passes, whoever wrote it.

Offers:
- ``VideoPlan`` (``characters``, ``scenes``, ``shots``, ``slots``) and its parts: a *shot* is
  one generated clip, a *slot* is one beat-aligned stretch of the song filled by a shot.
- ``LLMPlan``: the JSON the planner LLM must return (a strict JSON Schema: every field
  required, no extra keys), turned into a ``VideoPlan`` by ``finalize_llm_plan``.
- ``assign_without_repeats(slots, candidates_by_section, all_shot_ids)``: shot per slot so that
  no take shows twice in a row, reused shots varied (mirror, reverse, reframe).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .timing import snap_to_beat

CameraMove = Literal[
    "static", "push_in", "pull_out", "pan_left", "pan_right", "tilt_up", "tilt_down", "orbit"
]
Motion = Literal["low", "medium", "high"]
Transition = Literal["cut", "crossfade", "fade"]
Variant = Literal["as_is", "mirror", "reverse", "reframe"]
VARIANT_CYCLE: tuple[Variant, ...] = ("as_is", "mirror", "reverse", "reframe")
MAX_BOUNDARY_SHIFT_S = 2.0
MIN_SLOT_S = 2.0
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


class _Strict(BaseModel):
    # extra="forbid" makes pydantic emit additionalProperties: false, which OpenAI's strict
    # structured outputs require on every object.
    model_config = ConfigDict(extra="forbid")


class Character(_Strict):
    id: str
    name: str
    description: str = Field(description="Looks, clothes, age, the same in every clip")


class Scene(_Strict):
    id: str
    setting: str
    description: str
    palette: list[str] = Field(description="2-5 colours as #rrggbb")
    lighting: str
    metaphor: str = Field(description="The visual metaphor this scene carries")
    character_ids: list[str]


class Shot(_Strict):
    id: str
    scene_id: str
    prompt: str = Field(description="The text-to-video/image prompt for this one clip")
    camera_move: CameraMove
    motion: Motion
    character_ids: list[str]


class SlotChoice(_Strict):
    index: int
    shot_id: str
    variant: Variant
    transition_in: Transition
    start_shift_s: float = Field(description="Move this slot's start by -2..2 s (0 to keep)")


class LLMPlan(_Strict):
    title: str
    logline: str
    style: str
    mood: str
    characters: list[Character]
    scenes: list[Scene]
    shots: list[Shot]
    slots: list[SlotChoice]


class SlotPlan(BaseModel):
    index: int
    start_s: float
    end_s: float
    section: str
    shot_id: str
    variant: Variant = "as_is"
    transition_in: Transition = "cut"

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class VideoPlan(BaseModel):
    title: str
    logline: str
    style: str
    mood: str
    engine: str
    characters: list[Character]
    scenes: list[Scene]
    shots: list[Shot]
    slots: list[SlotPlan]

    @field_validator("slots")
    @classmethod
    def _no_take_twice_in_a_row(cls, slots: list[SlotPlan]) -> list[SlotPlan]:
        for a, b in zip(slots, slots[1:], strict=False):
            if a.shot_id == b.shot_id:
                raise ValueError(f"slots {a.index} and {b.index} show the same shot {a.shot_id}")
        return slots

    def shot(self, shot_id: str) -> Shot:
        return next(s for s in self.shots if s.id == shot_id)

    def scene(self, scene_id: str) -> Scene:
        return next(s for s in self.scenes if s.id == scene_id)

    def reuse_summary(self) -> dict[str, int]:
        """Slots, shots generated and slots that reuse a shot shown earlier."""
        used = Counter(s.shot_id for s in self.slots)
        return {
            "slots": len(self.slots),
            "shots_generated": len(self.shots),
            "shots_reused": sum(n - 1 for n in used.values()),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "logline": self.logline,
            "style": self.style,
            "mood": self.mood,
            "engine": self.engine,
            "characters": [c.model_dump() for c in self.characters],
            "scenes": [s.model_dump() for s in self.scenes],
            "shots": [s.model_dump() for s in self.shots],
        }


def assign_without_repeats(
    slots: list[dict[str, Any]],
    preferred: list[list[str]],
    all_shot_ids: list[str],
) -> list[tuple[str, Variant]]:
    """For each slot pick a shot from its ``preferred`` list (rotating through it), never the
    previous slot's shot; reused shots cycle through variants so a return looks fresh."""
    if len(all_shot_ids) < 2 and len(slots) > 1:
        raise ValueError("at least two shots are needed to fill consecutive slots")
    uses: Counter[str] = Counter()
    turn: Counter[tuple[str, ...]] = Counter()
    out: list[tuple[str, Variant]] = []
    prev = None
    for slot_pref in preferred[: len(slots)]:
        pool = [s for s in slot_pref if s in all_shot_ids] or list(all_shot_ids)
        key = tuple(pool)
        ordered = pool[turn[key] % len(pool) :] + pool[: turn[key] % len(pool)]
        choice = next((s for s in ordered if s != prev), None)
        if choice is None:  # the section has one shot and just showed it: borrow the least used
            choice = min((s for s in all_shot_ids if s != prev), key=lambda s: (uses[s], s))
        else:
            turn[key] += 1
        out.append((choice, VARIANT_CYCLE[uses[choice] % len(VARIANT_CYCLE)]))
        uses[choice] += 1
        prev = choice
    return out


def _shift_boundaries(
    base: list[dict[str, Any]], shifts: dict[int, float], candidates: list[float]
) -> list[float]:
    """Slot starts moved by the planner's shifts: clamped to +-2 s, snapped to a cut candidate,
    and dropped when they would squeeze a slot under ``MIN_SLOT_S``."""
    starts = [float(s["start_s"]) for s in base]
    end = float(base[-1]["end_s"])
    for i in range(1, len(starts)):
        shift = max(-MAX_BOUNDARY_SHIFT_S, min(MAX_BOUNDARY_SHIFT_S, shifts.get(i, 0.0)))
        if abs(shift) < 1e-3:
            continue
        moved = snap_to_beat(starts[i] + shift, candidates)
        nxt = starts[i + 1] if i + 1 < len(starts) else end
        if (
            abs(moved - starts[i]) <= MAX_BOUNDARY_SHIFT_S + 1e-6
            and moved - starts[i - 1] >= MIN_SLOT_S
            and nxt - moved >= MIN_SLOT_S
        ):
            starts[i] = moved
    return starts


def finalize_llm_plan(
    raw: LLMPlan,
    base_slots: list[dict[str, Any]],
    candidates: list[float],
    max_shots: int,
    engine: str,
    default_palette: list[str],
) -> VideoPlan:
    """Check and repair an LLM plan against the song: unknown ids dropped, at most
    ``max_shots`` shots, boundaries moved at most 2 s onto a beat, no take twice in a row.

    Raises ValueError when too little is left to make a video (fewer than 2 shots or no scene).
    """
    scenes = [s for s in raw.scenes if s.id] or []
    if not scenes:
        raise ValueError("the plan has no scenes")
    scene_ids = {s.id for s in scenes}
    char_ids = {c.id for c in raw.characters}
    for sc in scenes:
        good = [c for c in sc.palette if HEX.match(c)]
        sc.palette = good[:5] if len(good) >= 2 else list(default_palette)
        sc.character_ids = [c for c in sc.character_ids if c in char_ids]
    shots: list[Shot] = []
    for sh in raw.shots:
        if sh.id in {s.id for s in shots} or not sh.prompt.strip():
            continue
        if sh.scene_id not in scene_ids:
            sh.scene_id = scenes[0].id
        sh.character_ids = [c for c in sh.character_ids if c in char_ids]
        shots.append(sh)
    shots = shots[:max_shots]
    if len(shots) < 2:
        raise ValueError("the plan has fewer than two usable shots")
    shot_ids = [s.id for s in shots]
    by_index = {c.index: c for c in raw.slots}
    starts = _shift_boundaries(
        base_slots, {i: c.start_shift_s for i, c in by_index.items()}, candidates
    )
    preferred = [[by_index[i].shot_id] if i in by_index else [] for i in range(len(base_slots))]
    # Keep the LLM's choice unless it repeats the previous take; then take any other shot.
    chosen = assign_without_repeats(base_slots, preferred, shot_ids)
    slots: list[SlotPlan] = []
    for i, base in enumerate(base_slots):
        pick = by_index.get(i)
        shot_id, auto_variant = chosen[i]
        same = pick is not None and pick.shot_id == shot_id
        slots.append(
            SlotPlan(
                index=i,
                start_s=round(starts[i], 4),
                end_s=round(starts[i + 1] if i + 1 < len(starts) else float(base["end_s"]), 4),
                section=str(base.get("section", "")),
                shot_id=shot_id,
                variant=pick.variant if same else auto_variant,
                transition_in=pick.transition_in if pick is not None else "cut",
            )
        )
    return VideoPlan(
        title=raw.title.strip() or "Untitled",
        logline=raw.logline.strip(),
        style=raw.style.strip(),
        mood=raw.mood.strip(),
        engine=engine,
        characters=list(raw.characters),
        scenes=scenes,
        shots=shots,
        slots=slots,
    )


def without_shots(plan: VideoPlan, missing: set[str]) -> VideoPlan:
    """The plan refilled after some clips failed: their slots take the remaining shots."""
    shots = [s for s in plan.shots if s.id not in missing]
    ids = [s.id for s in shots]
    by_scene = {s.id: [sh.id for sh in shots if sh.scene_id == s.id] for s in plan.scenes}
    preferred = []
    for slot in plan.slots:
        if slot.shot_id in ids:
            preferred.append([slot.shot_id])
        else:
            preferred.append(by_scene.get(plan.shot(slot.shot_id).scene_id, []) or ids)
    chosen = assign_without_repeats([s.model_dump() for s in plan.slots], preferred, ids)
    slots = [
        slot.model_copy(
            update={"shot_id": sid, "variant": var if sid != slot.shot_id else slot.variant}
        )
        for slot, (sid, var) in zip(plan.slots, chosen, strict=True)
    ]
    return plan.model_copy(update={"shots": shots, "slots": slots})
