"""What a running job records (shared.job_recording), on real Postgres: its stages (attempts,
engines, the attempt log), progress that never goes back, costs on the job and its stage, and
its outputs; each write with the event the job's stream shows."""

from __future__ import annotations

import pytest

from shared.errors import StageFailed
from shared.job_recording import attempt_entry
from tests.store_helpers import events, new_job, new_user, row, stages


def _claimed(store, stages_=("first", "second")) -> dict:
    return store.claim("w", str(new_job(store, new_user(store), stages=stages_)["id"]))


def test_an_attempt_entry_says_which_attempt_how_it_ended_and_why():
    assert attempt_entry(2, "completed", 1.23456, None) == {
        "attempt": 2,
        "status": "completed",
        "duration_s": 1.235,
    }
    entry = attempt_entry(1, "failed", 0.5, StageFailed("x" * 400))
    assert (entry["code"], entry["message"]) == ("STAGE_FAILED", "x" * 300)
    # A bug's text stays in the logs: the entry carries the generic sentence.
    bug = attempt_entry(1, "failed", 0.5, KeyError("secret-internal-detail"))
    assert bug["code"] == "INTERNAL_ERROR"
    assert bug["message"] == "The job failed unexpectedly (KeyError); it can be retried."


def test_start_stage_runs_a_listed_stage_and_moves_the_job_on(store):
    job = _claimed(store)
    assert store.start_stage(job, "second", "eng", 30.0) == 1
    stage = stages(store, job["id"])["second"]
    assert (stage["status"], stage["engine"], stage["attempts"], stage["position"]) == (
        "running",
        "eng",
        1,
        1,
    )
    assert stage["started_at"] is not None and str(stage["user_id"]) == str(job["user_id"])
    stored = row(store, job["id"])
    assert (stored["current_stage"], stored["progress"]) == ("second", 30.0)
    assert events(store, job["id"])[-1] == (
        "stage_update",
        {"stage": "second", "status": "running", "engine": "eng", "progress": 30.0, "attempt": 1},
    )


def test_start_stage_never_moves_progress_back(store):
    job = _claimed(store)
    store.start_stage(job, "first", None, 40.0)
    store.start_stage(job, "second", None, 20.0)
    assert row(store, job["id"])["progress"] == 40.0
    store.start_stage(job, "second", None, None)
    stored = row(store, job["id"])
    assert (stored["progress"], stored["current_stage"]) == (40.0, "second")
    assert events(store, job["id"])[-1][1]["progress"] is None


def test_a_stage_started_again_counts_its_attempts_and_starts_clean(store):
    job = _claimed(store)
    store.start_stage(job, "first", "gpu", 10.0)
    store.finish_stage(
        job,
        "first",
        attempt=1,
        status="failed",
        engine="gpu",
        duration_s=2.0,
        exc=StageFailed("engine broke"),
    )
    assert store.start_stage(job, "first", "cpu", 10.0) == 2
    stage = stages(store, job["id"])["first"]
    assert (stage["status"], stage["engine"], stage["attempts"]) == ("running", "cpu", 2)
    assert (stage["completed_at"], stage["error"]) == (None, None)
    assert stage["attempt_log"][0]["code"] == "STAGE_FAILED"  # the log keeps the first attempt
    assert events(store, job["id"])[-1][1]["attempt"] == 2


def test_a_stage_the_kind_does_not_list_comes_after_the_listed_ones(store):
    job = _claimed(store)
    store.start_stage(job, "extra", "e", None)
    view = store.get(str(job["user_id"]), str(job["id"]))
    assert [s["name"] for s in view["stages"]] == ["first", "second", "extra"]


def test_finish_stage_completed_records_its_time_engine_and_attempt(store):
    job = _claimed(store)
    store.start_stage(job, "first", "planned", 10.0)
    store.finish_stage(
        job, "first", attempt=1, status="completed", engine="actual", duration_s=1.23456
    )
    stage = stages(store, job["id"])["first"]
    assert (stage["status"], stage["engine"], stage["error"]) == ("completed", "actual", None)
    assert stage["duration_s"] == pytest.approx(1.23456, abs=1e-5)
    assert stage["completed_at"] is not None
    assert stage["attempt_log"] == [{"attempt": 1, "status": "completed", "duration_s": 1.235}]
    assert stages(store, job["id"])["second"]["status"] == "pending"  # only that stage
    assert events(store, job["id"])[-1] == (
        "stage_update",
        {
            "stage": "first",
            "status": "completed",
            "engine": "actual",
            "duration_s": 1.235,
            "attempt": 1,
        },
    )


def test_finish_stage_failed_keeps_the_error_text_and_code(store):
    job = _claimed(store)
    store.start_stage(job, "first", "e", 10.0)
    store.finish_stage(
        job,
        "first",
        attempt=1,
        status="failed",
        engine="e",
        duration_s=0.5,
        exc=StageFailed("y" * 600),
    )
    stage = stages(store, job["id"])["first"]
    assert (stage["status"], stage["error"]) == ("failed", "y" * 500)
    assert stage["attempt_log"] == [
        {
            "attempt": 1,
            "status": "failed",
            "duration_s": 0.5,
            "code": "STAGE_FAILED",
            "message": "y" * 300,
        }
    ]
    assert events(store, job["id"])[-1] == (
        "stage_update",
        {
            "stage": "first",
            "status": "failed",
            "engine": "e",
            "duration_s": 0.5,
            "attempt": 1,
            "error": "STAGE_FAILED",
        },
    )


def test_progress_goes_up_only_and_says_what_it_was_told(store):
    job = _claimed(store)
    store.record_progress(job, 50.0, stage="first", remaining_s=12.345, message="Halfway.")
    stored = row(store, job["id"])
    assert (stored["progress"], stored["estimated_remaining_s"]) == (50.0, pytest.approx(12.345))
    assert events(store, job["id"])[-1] == (
        "progress",
        {"progress": 50.0, "stage": "first", "message": "Halfway.", "estimated_remaining_s": 12.3},
    )
    store.record_progress(job, 30.0, stage="second", remaining_s=None)
    stored = row(store, job["id"])
    assert (stored["progress"], stored["estimated_remaining_s"]) == (50.0, pytest.approx(12.345))
    assert events(store, job["id"])[-1] == ("progress", {"progress": 30.0, "stage": "second"})
    store.record_progress(job, 60.0, stage=None, remaining_s=0.0, message="")
    assert row(store, job["id"])["progress"] == 60.0
    assert events(store, job["id"])[-1] == (
        "progress",
        {"progress": 60.0, "stage": None, "estimated_remaining_s": 0.0},
    )


def test_a_cost_adds_to_the_job_and_to_its_stage(store):
    job = _claimed(store)
    other = _claimed(store)
    common = dict(provider="cpu", units=1.5, unit="seconds", detail="d")
    store.record_cost(job, stage="first", cost_usd=0.1234567, total_cost_usd=0.1234567, **common)
    store.record_cost(job, stage="first", cost_usd=0.25, total_cost_usd=0.3734567, **common)
    store.record_cost(job, stage=None, cost_usd=1.0, total_cost_usd=1.3734567, **common)
    store.record_cost(other, stage="first", cost_usd=9.0, total_cost_usd=9.0, **common)
    assert float(row(store, job["id"])["total_cost_usd"]) == pytest.approx(1.373457)
    rows = stages(store, job["id"])
    assert float(rows["first"]["cost_usd"]) == pytest.approx(0.373457)
    assert float(rows["second"]["cost_usd"]) == 0
    with store.db.service() as conn:
        costs = conn.execute(
            "select stage, provider, units, unit, cost_usd, detail, user_id from job_costs"
            " where job_id = %s order by id",
            (job["id"],),
        ).fetchall()
    assert [(c["stage"], float(c["cost_usd"])) for c in costs] == [
        ("first", pytest.approx(0.123457)),
        ("first", 0.25),
        (None, 1.0),
    ]
    assert {(c["provider"], c["units"], c["unit"], c["detail"]) for c in costs} == {
        ("cpu", 1.5, "seconds", "d")
    }
    assert {str(c["user_id"]) for c in costs} == {str(job["user_id"])}
    assert [d for t, d in events(store, job["id"]) if t == "cost_update"][0] == {
        "stage": "first",
        "provider": "cpu",
        "units": 1.5,
        "unit": "seconds",
        "cost_usd": 0.123457,
        "total_cost_usd": 0.123457,
    }


def test_an_output_replaces_the_one_of_the_same_name_and_can_be_removed(store):
    job = _claimed(store)
    other = _claimed(store)
    store.record_output(job["id"], {"name": "mix", "path": "v1"})
    store.record_output(job["id"], {"name": "stems", "path": "s1"})
    store.record_output(other["id"], {"name": "mix", "path": "elsewhere"})
    store.record_output(job["id"], {"name": "mix", "path": "v2"})
    assert row(store, job["id"])["outputs"] == [
        {"name": "stems", "path": "s1"},
        {"name": "mix", "path": "v2"},
    ]
    store.record_output(job["id"], {"name": "master", "path": "m1"})
    store.remove_outputs(str(job["id"]), ["mix", "master"])
    assert row(store, job["id"])["outputs"] == [{"name": "stems", "path": "s1"}]
    store.remove_outputs(str(job["id"]), ["stems"])
    assert row(store, job["id"])["outputs"] == []
    assert row(store, other["id"])["outputs"] == [{"name": "mix", "path": "elsewhere"}]
