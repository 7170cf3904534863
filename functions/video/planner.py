"""Scene planning: prompt + analysis + lyrics -> a validated ``VideoPlan``, and which planner made it.

Offers:
- ``make_plan(...)``: the LLM planner (``llm_planner.plan_with_llm``) when a client or key is
  given, else (or when it fails every attempt) the rule-based planner
  (``rule_planner.plan_rule_based``); returns a ``PlanOutcome``: the plan, the engine that
  made it, why the rules took over, and the LLM usage to bill (every answered attempt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import providers
from .llm_planner import plan_with_llm
from .lyrics import Lyrics
from .plan import VideoPlan
from .rule_planner import plan_rule_based

PLAN_MODEL = "gpt-4o-mini"


@dataclass
class PlanOutcome:
    plan: VideoPlan
    engine: str
    fallback_reason: str = ""
    usage: list[dict[str, int]] = field(default_factory=list)  # one per billed LLM answer
    model: str = ""


def make_plan(
    prompt: str,
    timing: dict[str, Any],
    lyrics: Lyrics,
    max_shots: int,
    *,
    use_llm: bool = True,
    client: Any | None = None,
    api_key: str = "",
    model: str = PLAN_MODEL,
) -> PlanOutcome:
    """The LLM plan (OpenAI ``model``, through ``client`` or one made from ``api_key``) when
    ``use_llm``, else the rule-based plan; an LLM that fails every attempt falls back to the
    rules, and the outcome says why."""
    if use_llm and client is None:
        client = providers.openai_client(api_key, providers.PLANNER.timeout_s)
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
