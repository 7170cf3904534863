"""The LLM scene planner: prompt + timing + lyrics -> a ``VideoPlan`` from OpenAI chat.

Offers:
- ``plan_with_llm(...)``: a chat completion with a strict JSON Schema (``response_format`` of
  type ``json_schema``), validated by pydantic and repaired by ``plan.finalize_llm_plan``; 90 s
  per attempt, 3 attempts (timeouts, 5xx, 429 and malformed JSON are retried). Every answered
  attempt's token usage is reported, so failed attempts are billed too.
- ``response_format()``: that schema, built from ``plan.LLMPlan``.
- ``MalformedPlan``: the model answered, but not with a usable plan.

The client is handed in (``providers.openai_client``); nothing here reads settings.
"""

from __future__ import annotations

import json
from typing import Any

from shared.prices import LLM_MAX_OUTPUT_TOKENS

from . import director, providers
from .lyrics import Lyrics
from .plan import LLMPlan, VideoPlan, finalize_llm_plan


class MalformedPlan(Exception):
    """The LLM answered, but not with a usable plan (invalid JSON, schema or content)."""


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
    mood = director.detect_mood(
        prompt, float(timing.get("tempo_bpm") or 120), director.mean_slot_energy(timing)
    )
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
                default_palette=director.palette_for(prompt, mood),
            )
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            raise MalformedPlan(str(exc)[:300]) from exc

    def retry_on(exc: BaseException) -> bool:
        return isinstance(exc, MalformedPlan) or providers.is_transient(exc)

    return policy.retrying(retry_on)(attempt)
