"""What a music video will cost before it runs: the itemised pre-flight estimate.

Prices come from :mod:`shared.prices` (one table for every kind); the job's budget is checked
by the job context (``ctx.ensure_budget``) before every paid step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.prices import TYPICAL_PREDICT_S, llm_usd, modal_compute_usd, replicate_usd, whisper_usd

# Reservations (cores, GiB) of the Modal functions the CPU work runs in; modal_app.py requests
# the same: analysis in ``audio_analysis``, procedural clips in ``generate_clip``, the
# composition inside ``run_job`` (4 cores keep a 3-minute 1080p encode inside its 120 s).
STAGE_RESERVATION = {
    "audio_analysis": (2.0, 4.0),
    "video_generation": (1.0, 1.0),
    "composition": (4.0, 4.0),
    "pipeline": (2.0, 4.0),
}


def modal_cpu_usd(stage: str, wall_s: float) -> float:
    """Modal compute for a stage from measured wall seconds and the stage's reservation."""
    cores, gib = STAGE_RESERVATION.get(stage, STAGE_RESERVATION["pipeline"])
    return modal_compute_usd(wall_s, cores, gib)


@dataclass
class Estimate:
    items: dict[str, float]

    @property
    def total_usd(self) -> float:
        return round(sum(self.items.values()), 4)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_usd": self.total_usd,
            "items_usd": {k: round(v, 4) for k, v in self.items.items()},
        }


def estimate_video(
    duration_s: float,
    *,
    shots: int,
    references: int,
    transcribe: bool,
    plan_with_llm: bool,
    replicate: bool,
    text_to_video_shots: int = 0,
    compute_usd: Callable[[str, float], float] | None = modal_cpu_usd,
) -> Estimate:
    """Pre-flight estimate for one video from the track's duration and the plan's size.

    ``shots`` clips are generated (``text_to_video_shots`` of them without a reference image),
    ``references`` images; the flags say which paid engines run. ``compute_usd(stage,
    wall_s)`` prices the CPU stages where they will run (None or a free executor: nothing).
    """
    items: dict[str, float] = {}
    if transcribe:
        items["lyrics"] = whisper_usd(duration_s)
    if plan_with_llm:
        # Prompt: instructions + analysis + lyrics (~2.5k tokens for 3 min); answer ~3k tokens.
        items["scene_planning"] = llm_usd(2500 + int(duration_s * 5), 3000)
    if replicate:
        items["reference_generation"] = references * replicate_usd(
            "sdxl", TYPICAL_PREDICT_S["sdxl"]
        )
        i2v = max(0, shots - text_to_video_shots)
        items["video_generation"] = i2v * replicate_usd(
            "svd", TYPICAL_PREDICT_S["svd"]
        ) + text_to_video_shots * replicate_usd("t2v", TYPICAL_PREDICT_S["t2v"])
    if compute_usd is not None:
        # Measured on CPU: analysis ~0.1x and composition ~0.35x the song's length.
        compute = compute_usd("audio_analysis", 0.1 * duration_s + 5) + compute_usd(
            "composition", 0.35 * duration_s + 5
        )
        if compute > 0:
            items["compute"] = compute
    return Estimate(items)
