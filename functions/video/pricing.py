"""What a music video costs: one price table, the pre-flight estimate and the budget guard.

Offers:
- ``PRICES``: every price the video pipeline pays, with the date it was checked and where.
- ``whisper_usd``, ``llm_usd``, ``replicate_usd``, ``modal_cpu_usd``, ``modal_compute_usd``,
  ``modal_gpu_usd_per_s``: cost of one call/stage (the Modal ones serve every job kind).
- ``worst_case_*``: the most a call can cost under its timeout and attempts (the guard's bound).
- ``estimate_video(duration_s, ...)``: the pre-flight estimate, itemised.
- ``BudgetGuard``: records every cost through ``ctx.cost`` and raises
  :class:`shared.errors.BudgetExceeded` (``BUDGET_EXCEEDED``) *before* a call that could pass
  the job's budget.

Replicate bills public models by the second of GPU time (``metrics.predict_time``), so the
actual cost is metered from each prediction; the typical seconds below only feed the estimate.
Modal bills the greater of reservation and usage, so compute is metered as measured wall
seconds times the cores and memory a stage reserves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from shared.errors import BudgetExceeded

from . import providers


@dataclass(frozen=True)
class Price:
    usd_per_unit: float
    unit: str
    checked_on: date
    source: str


PRICES: dict[str, Price] = {
    "openai:whisper-1": Price(
        0.006, "audio_minute", date(2026, 11, 22), "https://openai.com/api/pricing/"
    ),
    "openai:gpt-4o-mini:input": Price(
        0.15 / 1e6, "token", date(2026, 11, 22), "https://openai.com/api/pricing/"
    ),
    "openai:gpt-4o-mini:output": Price(
        0.60 / 1e6, "token", date(2026, 11, 22), "https://openai.com/api/pricing/"
    ),
    # SDXL runs on an L40S, SVD and zeroscope on an A100 (80GB).
    "replicate:gpu-l40s": Price(
        0.000975, "gpu_second", date(2026, 11, 22), "https://replicate.com/pricing"
    ),
    "replicate:gpu-a100-large": Price(
        0.0014, "gpu_second", date(2026, 11, 22), "https://replicate.com/pricing"
    ),
    "modal:cpu": Price(
        0.0000131, "physical_core_second", date(2026, 11, 22), "https://modal.com/pricing"
    ),
    "modal:memory": Price(
        0.00000222, "gib_second", date(2026, 11, 22), "https://modal.com/pricing"
    ),
    # Modal GPUs, per second (stems, MusicGen).
    **{
        f"modal:gpu-{gpu.lower()}": Price(
            usd, "gpu_second", date(2026, 11, 22), "https://modal.com/pricing"
        )
        for gpu, usd in {
            "T4": 0.000164,
            "L4": 0.000222,
            "A10G": 0.000306,
            "L40S": 0.000542,
            "A100-80GB": 0.000694,
            "H100": 0.001097,
        }.items()
    },
}

HARDWARE = {
    "sdxl": "replicate:gpu-l40s",
    "svd": "replicate:gpu-a100-large",
    "t2v": "replicate:gpu-a100-large",
}

# Which Replicate model plays each role, and when that choice was made (see providers for the
# pinned versions). The text-to-video model is also the fallback for a failed image-to-video
# clip. Chosen 2026-12-02: zeroscope v2 XL stays, a public model billed per GPU-second on the
# A100 row above, pinned by version and answering at 1024x576; the newer per-video-priced
# text-to-video models could not be checked for price and interface from where this was built,
# so none is wired in without a verified request shape.
MODEL_CHOICES: dict[str, dict[str, str]] = {
    "reference": {"model": providers.SDXL_MODEL, "chosen_on": "2026-11-22"},
    "image_to_video": {"model": providers.SVD_MODEL, "chosen_on": "2026-11-22"},
    "text_to_video": {
        "model": providers.T2V_MODEL,
        "chosen_on": "2026-12-02",
        "role": "scenes without a reference image, and the fallback after image-to-video fails",
    },
}

# Typical billed GPU seconds per prediction (our estimate for the settings we send: SDXL
# 1024x576 at 25 steps without refiner, SVD 14 frames at 25 steps, zeroscope 24 frames).
TYPICAL_PREDICT_S = {"sdxl": 8.0, "svd": 20.0, "t2v": 30.0}

# Reservations (cores, GiB) of the Modal functions the CPU work runs in; modal_app.py requests
# the same: analysis in ``analyze_audio_stage``, procedural clips in ``video_clip``, the
# composition inside ``run_job`` (4 cores keep a 3-minute 1080p encode inside its 120 s).
STAGE_RESERVATION = {
    "audio_analysis": (2.0, 4.0),
    "video_generation": (1.0, 1.0),
    "composition": (4.0, 4.0),
    "pipeline": (2.0, 4.0),
}

LLM_MAX_OUTPUT_TOKENS = 6000
CHARS_PER_TOKEN = 4.0  # English prose and JSON average; enough for a bound with headroom


def whisper_usd(duration_s: float) -> float:
    """Transcription bills by the minute of audio (rounded up to the second)."""
    return math.ceil(duration_s) / 60.0 * PRICES["openai:whisper-1"].usd_per_unit


def llm_usd(input_tokens: int, output_tokens: int, model: str = "gpt-4o-mini") -> float:
    """Chat cost from token counts (priced as gpt-4o-mini when the model is unknown)."""
    key = f"openai:{model}" if f"openai:{model}:input" in PRICES else "openai:gpt-4o-mini"
    return (
        input_tokens * PRICES[f"{key}:input"].usd_per_unit
        + output_tokens * PRICES[f"{key}:output"].usd_per_unit
    )


def replicate_usd(kind: str, predict_time_s: float) -> float:
    """GPU seconds of one prediction times its hardware's price (``kind``: sdxl, svd, t2v)."""
    return max(0.0, predict_time_s) * PRICES[HARDWARE[kind]].usd_per_unit


def modal_gpu_usd_per_s(gpu: str) -> float:
    """Modal's price of one second of ``gpu``; an unlisted type is priced as the dearest listed
    one rather than as free."""
    price = PRICES.get(f"modal:gpu-{gpu.lower()}")
    if price is not None:
        return price.usd_per_unit
    return max(p.usd_per_unit for k, p in PRICES.items() if k.startswith("modal:gpu-"))


def modal_compute_usd(wall_s: float, cores: float, gib: float, gpu: str | None = None) -> float:
    """Modal compute for ``wall_s`` measured seconds of a function's reservation."""
    usd = wall_s * (
        cores * PRICES["modal:cpu"].usd_per_unit + gib * PRICES["modal:memory"].usd_per_unit
    )
    return usd + (wall_s * modal_gpu_usd_per_s(gpu) if gpu else 0.0)


def modal_cpu_usd(stage: str, wall_s: float) -> float:
    """Modal compute for a stage from measured wall seconds and the stage's reservation."""
    cores, gib = STAGE_RESERVATION.get(stage, STAGE_RESERVATION["pipeline"])
    return modal_compute_usd(wall_s, cores, gib)


def worst_case_llm_usd(prompt_chars: int) -> float:
    return llm_usd(int(prompt_chars / CHARS_PER_TOKEN * 1.5) + 500, LLM_MAX_OUTPUT_TOKENS)


def worst_case_replicate_usd(kind: str, policy: providers.RetryPolicy) -> float:
    """Every attempt billed up to its timeout (we cancel a prediction at the deadline)."""
    return replicate_usd(kind, policy.timeout_s) * policy.attempts


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
    on_modal: bool = True,
) -> Estimate:
    """Pre-flight estimate for one video from the track's duration and the plan's size.

    ``shots`` clips are generated (``text_to_video_shots`` of them without a reference image),
    ``references`` images; the flags say which paid engines run.
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
    if on_modal:
        # Measured on CPU: analysis ~0.1x and composition ~0.35x the song's length.
        items["compute"] = modal_cpu_usd("audio_analysis", 0.1 * duration_s + 5) + modal_cpu_usd(
            "composition", 0.35 * duration_s + 5
        )
    return Estimate(items)


@dataclass
class BudgetGuard:
    """Tracks a job's spend against ``limit_usd``; every cost goes through ``charge``."""

    ctx: Any
    limit_usd: float
    spent_usd: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)

    def check(self, next_usd: float, what: str) -> None:
        """Raise BUDGET_EXCEEDED when ``next_usd`` more could take the job past its budget."""
        if self.spent_usd + next_usd > self.limit_usd + 1e-9:
            raise BudgetExceeded(
                f"Stopped before {what}: it could cost up to ${next_usd:.2f}, and with "
                f"${self.spent_usd:.2f} already spent that would pass this job's budget of "
                f"${self.limit_usd:.2f}.",
                details={
                    "spent_usd": round(self.spent_usd, 4),
                    "next_usd": round(next_usd, 4),
                    "budget_usd": self.limit_usd,
                },
            )

    def charge(
        self, provider: str, units: float, usd: float, *, unit: str, detail: str = ""
    ) -> None:
        """Record a cost row (and its ``cost_update`` event) through the job context."""
        self.spent_usd += usd
        self.rows.append(
            {"provider": provider, "units": units, "usd": usd, "unit": unit, "detail": detail}
        )
        self.ctx.cost(provider, units, usd, unit=unit, detail=detail)
