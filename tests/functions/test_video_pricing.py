"""Money: the price table, the pre-flight estimate and the budget guard."""

from __future__ import annotations

from datetime import date

import pytest

from functions.video import pricing, providers
from shared.config import get_settings
from shared.errors import BudgetExceeded


class Ledger:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def cost(self, provider, units, usd, *, unit="seconds", detail=""):
        self.rows.append((provider, units, usd, unit, detail))


def test_every_price_says_when_and_where_it_was_checked():
    assert pricing.PRICES
    for key, price in pricing.PRICES.items():
        assert price.usd_per_unit > 0, key
        assert isinstance(price.checked_on, date) and price.checked_on.year >= 2025, key
        assert price.source.startswith("https://"), key


def test_a_3_minute_video_with_production_engines_is_under_35_cents():
    est = pricing.estimate_video(
        180.0,
        shots=get_settings().max_generated_clips,
        references=4,
        transcribe=True,
        plan_with_llm=True,
        replicate=True,
        on_modal=True,
    )
    assert 0.1 < est.total_usd < 0.35, est.to_dict()
    # Clip generation is most of it: the reason shots are reused instead of one per slot.
    assert est.items["video_generation"] > 0.5 * est.total_usd
    # One clip per slot (some 30 for 3 minutes) would be several times the price.
    per_slot = pricing.estimate_video(
        180.0, shots=30, references=4, transcribe=True, plan_with_llm=True, replicate=True
    )
    assert per_slot.total_usd > 2.5 * est.total_usd


def test_local_engines_cost_nothing_outside_modal():
    est = pricing.estimate_video(
        180.0,
        shots=8,
        references=4,
        transcribe=False,
        plan_with_llm=False,
        replicate=False,
        on_modal=False,
    )
    assert est.total_usd == 0.0


def test_unit_prices():
    assert pricing.whisper_usd(90.0) == pytest.approx(1.5 * 0.006)
    assert pricing.llm_usd(1_000_000, 1_000_000) == pytest.approx(0.75)
    assert pricing.llm_usd(1000, 1000, model="some-future-model") == pricing.llm_usd(1000, 1000)
    assert pricing.replicate_usd("svd", 10.0) == pytest.approx(0.014)
    # The guard's bound: every attempt billed to its timeout.
    assert pricing.worst_case_replicate_usd("svd", providers.CLIP) == pytest.approx(
        3 * 120 * 0.0014
    )
    assert pricing.modal_cpu_usd("composition", 100.0) > pricing.modal_cpu_usd("pipeline", 100.0)


def test_guard_records_costs_and_stops_before_the_budget_is_passed():
    ledger = Ledger()
    guard = pricing.BudgetGuard(ledger, limit_usd=1.0)
    guard.check(0.6, "clips")
    guard.charge("replicate", 20.0, 0.6, unit="gpu_seconds", detail="svd shot_1")
    assert ledger.rows == [("replicate", 20.0, 0.6, "gpu_seconds", "svd shot_1")]
    guard.check(0.4, "the last clip")  # exactly at the budget is allowed
    with pytest.raises(BudgetExceeded) as err:
        guard.check(0.41, "two more clips")
    assert err.value.code == "BUDGET_EXCEEDED" and err.value.status == 402
    assert "two more clips" in err.value.message
    assert err.value.details == {"spent_usd": 0.6, "next_usd": 0.41, "budget_usd": 1.0}
    assert guard.spent_usd == pytest.approx(0.6)  # a refused step costs nothing
