"""Retries with exponential backoff and jitter: transient failures run again (each attempt in
the stage rows and the event stream), user errors and bugs never do, and the last failure
keeps its code."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from shared.errors import BudgetExceeded, InvalidInput, StageFailed
from shared.retries import classify

BACKOFF_S = 0.05


@pytest.fixture
def fast_backoff(services, monkeypatch):
    monkeypatch.setattr(services.settings, "retry_backoff_s", BACKOFF_S)
    monkeypatch.setattr(services.settings, "max_attempts", 3)


def _retry_events(api, job_id: str) -> list[dict]:
    text = api.get(f"/api/v1/jobs/{job_id}/events").text
    out = []
    for line in text.splitlines():
        if line.startswith("data:"):
            data = json.loads(line[5:])
            if "retry" in data:
                out.append(data["retry"])
    return out


@pytest.mark.parametrize(
    "error,code",
    [("timeout", "PROVIDER_TIMEOUT"), ("oom", "GPU_OUT_OF_MEMORY"), ("http500", "PROVIDER_ERROR")],
)
def test_transient_failures_are_retried_until_the_job_succeeds(api, fast_backoff, error, code):
    job = api.run("test_flaky", [], {"fail_times": 2, "error": error})
    assert job["status"] == "completed", job
    assert job["result"] == {"attempt": 3, "previous_failure": code}
    stage = job["stages"][0]
    assert stage["attempts"] == 3 and stage["status"] == "completed"
    assert [(a["attempt"], a["status"], a.get("code")) for a in stage["attempt_log"]] == [
        (1, "failed", code),
        (2, "failed", code),
        (3, "completed", None),
    ]
    retries = _retry_events(api, job["id"])
    assert [(r["attempt"], r["next_attempt"], r["code"]) for r in retries] == [
        (1, 2, code),
        (2, 3, code),
    ]
    # Exponential with jitter: base * 2^(n-1) plus up to one base of jitter.
    assert BACKOFF_S <= retries[0]["delay_s"] <= 2 * BACKOFF_S
    assert 2 * BACKOFF_S <= retries[1]["delay_s"] <= 3 * BACKOFF_S


def test_out_of_attempts_fails_with_the_last_code(api, fast_backoff):
    job = api.run("test_flaky", [], {"fail_times": 5, "error": "timeout"})
    assert job["status"] == "failed"
    assert job["error"]["code"] == "PROVIDER_TIMEOUT" and job["error"]["retryable"] is True
    assert job["stages"][0]["attempts"] == 3
    assert len(_retry_events(api, job["id"])) == 2


@pytest.mark.parametrize(
    "error,code,retryable",
    [
        ("user", "BAD_INPUT_FOR_TEST", False),
        ("http404", "INTERNAL_ERROR", True),
        ("bug", "INTERNAL_ERROR", True),
    ],
)
def test_user_errors_and_bugs_are_never_retried(api, fast_backoff, error, code, retryable):
    job = api.run("test_flaky", [], {"fail_times": 1, "error": error})
    assert job["status"] == "failed"
    assert job["error"]["code"] == code and job["error"]["retryable"] is retryable
    assert job["stages"][0]["attempts"] == 1
    assert _retry_events(api, job["id"]) == []


def test_classification():
    req = httpx.Request("GET", "https://example.com")
    assert classify(StageFailed("engine broke")).retry_automatically
    assert not classify(StageFailed("no weights", retryable=False)).retry_automatically
    assert not classify(InvalidInput("bad")).retry_automatically
    assert not classify(BudgetExceeded("too dear")).retry_automatically
    assert classify(TimeoutError()).code == "PROVIDER_TIMEOUT"
    assert classify(httpx.ConnectError("refused", request=req)).retry_automatically
    err = httpx.HTTPStatusError("x", request=req, response=httpx.Response(503, request=req))
    assert classify(err).code == "PROVIDER_ERROR"


class _OomUnlessShortBlocks:
    """A separator that runs out of "GPU memory" on blocks over 45 s (as Demucs on a small GPU
    would), else gives the block as drums and silence for the rest."""

    engine, model_name, normalize = "dsp", None, False
    sample_rate = channels = None
    sources = ["drums", "bass", "other", "vocals"]
    block_s, context_s = 150.0, 1.0

    def load(self):
        return self

    def separate_block(self, block, sample_rate, progress=None):
        if block.shape[1] > 45 * sample_rate:
            raise RuntimeError("CUDA out of memory. Tried to allocate 3.00 GiB")
        silent = np.zeros_like(block)
        return {"drums": block, "bass": silent, "other": silent, "vocals": silent}


def test_gpu_out_of_memory_is_retried_in_shorter_blocks(api, fast_backoff, monkeypatch, tmp_path):
    from functions import stems as stems_mod
    from functions.audio_io import Audio, save_audio
    from shared.config import reset_settings

    monkeypatch.setenv("SOUNDSTAGE_STEMS_ENGINE", "dsp")
    reset_settings()
    monkeypatch.setitem(stems_mod._SEPARATORS, ("dsp", ""), _OomUnlessShortBlocks())
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, (1, 70 * 8000)).astype(np.float32)
    song = save_audio(tmp_path / "long.wav", Audio(noise, 8000), "wav")
    try:
        job = api.run("stems", [song], {"stems": ["drums"]})
    finally:
        monkeypatch.delenv("SOUNDSTAGE_STEMS_ENGINE")
        reset_settings()
    assert job["status"] == "completed", job["error"]
    stage = job["stages"][0]
    assert stage["attempts"] == 2
    assert stage["attempt_log"][0]["code"] == "GPU_OUT_OF_MEMORY"
    assert job["result"]["blocks"] == 2  # 70 s in 30 s blocks (the last takes the rest)
    assert [r["code"] for r in _retry_events(api, job["id"])] == ["GPU_OUT_OF_MEMORY"]
