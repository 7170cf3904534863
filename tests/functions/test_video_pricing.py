"""Money: the price table, the video's pre-flight estimate and the budget check."""

from __future__ import annotations

from datetime import date

import pytest

from functions.video import providers
from functions.video.estimate import estimate_video, modal_cpu_usd
from shared import prices
from shared.config import get_settings
from shared.errors import BudgetExceeded


def test_every_price_says_when_and_where_it_was_checked():
    assert prices.PRICES
    for key, price in prices.PRICES.items():
        assert price.usd_per_unit > 0, key
        assert isinstance(price.checked_on, date) and price.checked_on.year >= 2025, key
        assert price.source.startswith("https://"), key


def test_a_3_minute_video_with_production_engines_is_under_35_cents():
    est = estimate_video(
        180.0,
        shots=get_settings().max_generated_clips,
        references=4,
        transcribe=True,
        plan_with_llm=True,
        replicate=True,
        compute_usd=modal_cpu_usd,
    )
    assert 0.1 < est.total_usd < 0.35, est.to_dict()
    # Clip generation is most of it: the reason shots are reused instead of one per slot.
    assert est.items["video_generation"] > 0.5 * est.total_usd
    # One clip per slot (some 30 for 3 minutes) would be several times the price.
    per_slot = estimate_video(
        180.0, shots=30, references=4, transcribe=True, plan_with_llm=True, replicate=True
    )
    assert per_slot.total_usd > 2.5 * est.total_usd


def test_local_engines_cost_nothing_outside_modal():
    est = estimate_video(
        180.0,
        shots=8,
        references=4,
        transcribe=False,
        plan_with_llm=False,
        replicate=False,
        compute_usd=None,
    )
    assert est.total_usd == 0.0


def test_unit_prices():
    assert prices.whisper_usd(90.0) == pytest.approx(1.5 * 0.006)
    assert prices.llm_usd(1_000_000, 1_000_000) == pytest.approx(0.75)
    assert prices.llm_usd(1000, 1000, model="some-future-model") == prices.llm_usd(1000, 1000)
    assert prices.replicate_usd("svd", 10.0) == pytest.approx(0.014)
    # The guard's bound: every attempt billed to its timeout.
    assert prices.worst_case_replicate_usd("svd", providers.CLIP) == pytest.approx(3 * 120 * 0.0014)
    assert modal_cpu_usd("composition", 100.0) > modal_cpu_usd("pipeline", 100.0)


def test_budget_check_stops_before_the_budget_is_passed():
    prices.check_budget(0.0, 0.6, 1.0, "clips")
    prices.check_budget(0.6, 0.4, 1.0, "the last clip")  # exactly at the budget is allowed
    with pytest.raises(BudgetExceeded) as err:
        prices.check_budget(0.6, 0.41, 1.0, "two more clips")
    assert err.value.code == "BUDGET_EXCEEDED" and err.value.status == 402
    assert "two more clips" in err.value.message
    assert err.value.details == {"spent_usd": 0.6, "next_usd": 0.41, "budget_usd": 1.0}
    prices.check_budget(100.0, 100.0, None, "anything")  # no cap, no stop


def test_a_kinds_own_budget_lowers_the_jobs():
    class Params:
        budget_usd = 0.5

    assert prices.job_budget_usd(20.0, Params()) == 0.5
    assert prices.job_budget_usd(20.0, object()) == 20.0
    assert prices.job_budget_usd(None, object()) is None
