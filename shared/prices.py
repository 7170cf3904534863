"""What things cost: one price table for every job kind, and the budget check.

Offers:
- ``PRICES``: every price a job pays (APIs and compute), with the date it was checked and where.
- ``whisper_usd``, ``llm_usd``, ``replicate_usd``, ``modal_gpu_usd_per_s``,
  ``modal_compute_usd``: the cost of one call or of some compute.
- ``compute_usd(placement, wall_s)``: compute where the executor ran it (free locally).
- ``worst_case_*``: the most a call can cost under its timeout and attempts.
- ``check_budget(spent, next, limit, what)``: raises :class:`shared.errors.BudgetExceeded`
  (``BUDGET_EXCEEDED``) *before* a step that could pass the job's budget.

Replicate bills public models by the second of GPU time (``metrics.predict_time``), so the
actual cost is metered from each prediction; the typical seconds below only feed estimates.
Modal bills the greater of reservation and usage, so compute is metered as measured wall
seconds times the cores, memory and GPU a function reserves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from shared.errors import BudgetExceeded


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

# Typical billed GPU seconds per prediction (our estimate for the settings we send: SDXL
# 1024x576 at 25 steps without refiner, SVD 14 frames at 25 steps, zeroscope 24 frames).
TYPICAL_PREDICT_S = {"sdxl": 8.0, "svd": 20.0, "t2v": 30.0}

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


def worst_case_llm_usd(prompt_chars: int) -> float:
    return llm_usd(int(prompt_chars / CHARS_PER_TOKEN * 1.5) + 500, LLM_MAX_OUTPUT_TOKENS)


class RetryBound(Protocol):
    """What bounds a call's cost: its timeout and how many attempts it makes."""

    timeout_s: float
    attempts: int


def worst_case_replicate_usd(kind: str, policy: RetryBound) -> float:
    """Every attempt billed up to its timeout (we cancel a prediction at the deadline)."""
    return replicate_usd(kind, policy.timeout_s) * policy.attempts


def compute_usd(placement: Any, wall_s: float) -> float:
    """``wall_s`` measured seconds of compute where ``placement`` (shared.executors.Placement)
    says it ran: Modal's price of the reservation there, nothing on this machine."""
    if placement.provider != "modal":
        return 0.0
    return modal_compute_usd(wall_s, placement.cores, placement.memory_gib, placement.gpu)


def compute_charge(
    placement: Any, stage: Any, wall_s: float, detail: str | None = None
) -> tuple[float, str, str]:
    """``(usd, provider, detail)`` of a compute cost row: ``stage`` is a stage function or a
    name; the detail says what ran on what (``"stems_stage on L4 GPU"``, ``"mix (2 cores)"``)."""
    what = detail or getattr(stage, "__name__", str(stage))
    if placement.gpu:
        where = f"{placement.gpu} GPU"
    else:
        where = f"{placement.cores:g} cores"
    return compute_usd(placement, wall_s), placement.provider, f"{what} ({where})"


def deployed_compute_usd(
    settings: Any,
    wall_s: float,
    cores: float = 2.0,
    memory_gib: float = 4.0,
    *,
    gpu: str | None = None,
) -> float:
    """Compute's price on this deployment before any job runs (a kind's pre-flight estimate):
    Modal's price where stages run there, nothing on this machine."""
    if settings.runner != "modal":
        return 0.0
    return modal_compute_usd(wall_s, cores, memory_gib, gpu)


def job_budget_usd(job_budget: Any, params: Any) -> float | None:
    """A job's spending cap: the one it was submitted with, lowered by a ``budget_usd`` its
    kind's params offer (the video kind's)."""
    limits = [float(v) for v in (job_budget, getattr(params, "budget_usd", None)) if v is not None]
    return min(limits) if limits else None


def check_budget(spent_usd: float, next_usd: float, limit_usd: float | None, what: str) -> None:
    """Raise BUDGET_EXCEEDED when ``next_usd`` more could take the job past ``limit_usd``."""
    if limit_usd is None or spent_usd + next_usd <= limit_usd + 1e-9:
        return
    raise BudgetExceeded(
        f"Stopped before {what}: it could cost up to ${next_usd:.2f}, and with "
        f"${spent_usd:.2f} already spent that would pass this job's budget of "
        f"${limit_usd:.2f}.",
        details={
            "spent_usd": round(spent_usd, 4),
            "next_usd": round(next_usd, 4),
            "budget_usd": limit_usd,
        },
    )
