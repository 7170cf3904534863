"""A pipeline on the worker's real job context: a cancel asked for mid-run stops it at its next
check, and a cached analysis lives 14 days and, past its ``expires_at``, is neither served nor
kept by retention."""

from __future__ import annotations

import pytest

from functions.pipelines import master as master_kind
from shared.analysis_cache import AnalysisCache
from shared.errors import JobCanceled
from shared.retention import sweep
from tests.pipeline_jobs import new_user_id


def test_a_cancel_mid_run_stops_the_pipeline_at_its_next_stage(run_pipeline, song_wav, monkeypatch):
    real_report, real_master = master_kind.loudness_report, master_kind.master_to_target
    mastered = []

    def report_then_cancel(audio):
        # The user cancels while the first stage runs (through the store, as the API does).
        run_pipeline.services.jobs.cancel(run_pipeline.user_id, run_pipeline.current_job_id)
        return real_report(audio)

    monkeypatch.setattr(master_kind, "loudness_report", report_then_cancel)
    monkeypatch.setattr(
        master_kind,
        "master_to_target",
        lambda *a, **kw: mastered.append(1) or real_master(*a, **kw),
    )
    with pytest.raises(JobCanceled):
        run_pipeline("master", [song_wav], {"output_format": "wav"})
    assert mastered == []  # the second stage never started
    job = run_pipeline.services.jobs.get(run_pipeline.user_id, run_pipeline.current_job_id)
    assert job["status"] == "canceled" and job["outputs"] == []
    stages = {s["name"]: s["status"] for s in job["stages"]}
    # The stage's own progress report may be the check that sees it, else the next stage's start.
    assert stages["analyzing"] in ("completed", "skipped") and stages["mastering"] == "skipped"


def _cache_rows(services, user_id: str, *, expired: bool | None = None) -> int:
    when = {None: "true", True: "expires_at <= now()", False: "expires_at > now()"}[expired]
    with services.db.service() as conn:
        return conn.execute(
            f"select count(*) as n from analysis_cache where user_id = %s and {when}", (user_id,)
        ).fetchone()["n"]


FOURTEEN_DAYS_S = 14 * 86400


def _cache_lifetimes_s(services, user_id: str) -> list[float]:
    with services.db.service() as conn:
        rows = conn.execute(
            # Epochs, not timestamps: an entry that never expires ('infinity') reads as inf.
            "select extract(epoch from expires_at) - extract(epoch from now()) as s"
            " from analysis_cache where user_id = %s",
            (user_id,),
        ).fetchall()
    return [float(r["s"]) for r in rows]


def _expire_cache(services, user_id: str) -> None:
    with services.db.service() as conn:
        conn.execute(
            "update analysis_cache set expires_at = now() - interval '1 second' where user_id = %s",
            (user_id,),
        )


def test_an_expired_analysis_is_computed_again_and_purged(run_pipeline, song_wav):
    services, user = run_pipeline.services, run_pipeline.user_id
    first = run_pipeline("analyze", [song_wav])
    assert first.result["cached"] is False and _cache_rows(services, user, expired=False) == 1
    # An entry lives 14 days, not forever.
    assert _cache_lifetimes_s(services, user) == [pytest.approx(FOURTEEN_DAYS_S, abs=120)]

    _expire_cache(services, user)
    again = run_pipeline("analyze", [song_wav])
    assert again.result["cached"] is False and again.stages[0]["engine"] != "cache"
    # The new analysis renewed the entry: it lives 14 days again.
    assert _cache_rows(services, user, expired=False) == 1
    assert _cache_lifetimes_s(services, user) == [pytest.approx(FOURTEEN_DAYS_S, abs=120)]

    _expire_cache(services, user)
    other = new_user_id(services)
    AnalysisCache(services.db).put(other, "analysis", "still-fresh", {"tempo_bpm": 120})
    removed = sweep(services)
    assert removed.get("analysis_cache", 0) >= 1
    assert _cache_rows(services, user) == 0
    assert AnalysisCache(services.db).get(other, "analysis", "still-fresh") == {"tempo_bpm": 120}
