"""The video pipeline's operations: the image-to-video -> text-to-video fallback chain (against
the fake Replicate transport), the 15-minute deadline inside a fan-out, ``clip_concurrency``,
per-clip progress, the signed ``audio_url`` of the upload and the ``completed`` event's link."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import pytest

from functions.video import clips, providers
from shared.config import reset_settings
from shared.errors import StageFailed
from shared.executors import LocalExecutor
from shared.retries import classify
from tests.functions.test_video_generation import MP4_URL, PNG_URL
from tests.functions.test_video_generation import fake as fake  # noqa: F401 (fixture)
from tests.functions.test_video_pipeline import FAST, song14  # noqa: F401 (fixture)
from tests.functions.test_video_providers import record_sleeps


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    return record_sleeps(monkeypatch)


def _clip(**kw):
    args = dict(
        shot_id="shot_1", prompt="lanterns over a lake", camera_move="static", motion="low",
        engine="replicate", tempo_bpm=120, image_url=PNG_URL, seed=1,
    )  # fmt: skip
    return clips.generate_clip(**{**args, **kw})


def test_a_failed_image_to_video_clip_falls_back_to_text_to_video(fake, sleeps):  # noqa: F811
    fake.behave = lambda version, i: (
        ["failed"] if version == providers.SVD_VERSION else ["succeeded"]
    )
    out = _clip()
    assert len(fake.creates(providers.SVD_VERSION)) == 3  # its own retries first
    (t2v,) = fake.creates(providers.T2V_VERSION)
    assert t2v["body"]["input"]["prompt"] == "lanterns over a lake"
    assert out["ok"] and out["mp4"] == fake.files[MP4_URL]
    assert out["engine"] == f"replicate:{providers.T2V_MODEL} (text-to-video fallback)"
    assert out["fallback"]["from"] == "svd" and "CUDA out of memory" in out["fallback"]["because"]
    # Both models bill: three failed image-to-video runs and the text-to-video one.
    assert [(b["kind"], b["predict_time_s"]) for b in out["billing"]] == [
        ("svd", 12.0),
        ("t2v", 4.0),
    ]


def test_no_clip_starts_after_the_deadline(fake, sleeps):  # noqa: F811
    out = _clip(deadline_at=time.time() - 1)
    assert fake.creates() == [] and not out["ok"] and "15-minute" in out["error"]
    local = _clip(engine="procedural", image_png=b"png", deadline_at=time.time() - 1)
    assert not local["ok"] and "15-minute" in local["error"]


def test_fan_out_honours_concurrency_and_stops_at_a_raising_callback():
    running, peak, calls = [0], [0], []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            calls.append(i)
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return i * i

    seen: list[int] = []
    ex = LocalExecutor(max_workers=8)
    out = ex.map(work, [{"i": i} for i in range(6)], max_concurrency=2, on_result=seen.append)
    assert out == [0, 1, 4, 9, 16, 25] and sorted(seen) == out and peak[0] == 2

    calls.clear()

    def past_deadline(result: int) -> None:
        raise StageFailed("The video ran past its 15-minute limit.", code="PIPELINE_TIMEOUT")

    with pytest.raises(StageFailed):
        ex.map(work, [{"i": i} for i in range(6)], max_concurrency=1, on_result=past_deadline)
    assert calls == [0]  # the items not started were dropped
    assert not classify(StageFailed("x", code="PIPELINE_TIMEOUT")).retry_automatically
    assert not classify(StageFailed("x", code="TOO_FEW_CLIPS")).retry_automatically


@pytest.fixture
def two_at_a_time(monkeypatch, services):
    monkeypatch.setenv("SOUNDSTAGE_CLIP_CONCURRENCY", "2")
    reset_settings()
    # Pipelines read the settings of the services running them (the worker's).
    monkeypatch.setattr(services.settings, "clip_concurrency", 2)
    yield 2
    monkeypatch.delenv("SOUNDSTAGE_CLIP_CONCURRENCY")
    reset_settings()


def test_video_job_reports_each_clip_and_links_its_files(api, song14, two_at_a_time, monkeypatch):  # noqa: F811
    running, peak = [0], [0]
    lock = threading.Lock()
    real = clips.generate_clip

    def counted(**kw):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return real(**kw)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(clips, "generate_clip", counted)
    created = api.create_job("video", [song14], {**FAST, "engines": "local"})
    assert created.status_code == 202, created.text
    body = created.json()
    # The upload's response carries the song, signed for 24 hours.
    query = urllib.parse.parse_qs(urllib.parse.urlparse(body["audio_url"]).query)
    assert 24 * 3600 - 60 <= int(query["expires"][0]) - time.time() <= 24 * 3600
    assert body["audio_url_expires_in_s"] == 24 * 3600
    assert api.fetch(body["audio_url"]) == song14.read_bytes()

    job = api.wait(body["id"], timeout_s=300)
    assert job["status"] == "completed", job["error"]
    assert 1 <= peak[0] <= two_at_a_time
    events = _events(api, body["id"])
    clip_msgs = [d["message"] for t, d in events if t == "message" and d.get("total") and
                 d["message"].startswith("Clip ")]  # fmt: skip
    n = job["result"]["shots_generated"]
    assert len(clip_msgs) == n
    assert {m.split()[1] for m in clip_msgs} == {f"{k}/{n}" for k in range(1, n + 1)}
    ref_msgs = [
        d for t, d in events if t == "message" and d.get("message", "").startswith("Reference ")
    ]
    assert ref_msgs and ref_msgs[-1]["done"] == ref_msgs[-1]["total"]
    progress = [
        d.get("message")
        for t, d in events
        if t == "progress" and d.get("stage") == "video_generation"
    ]
    # Sub-progress as clips finish (progress events are rate-limited, so some may merge).
    assert progress and set(progress) - {None} <= {
        *(f"Generating clip {k}/{n}" for k in range(2, n + 1)),
        f"{n} clips done",
    }
    assert any(d.get("message") == f"Generating clip 1/{n}" for t, d in events if t == "message")
    assert any("2 at a time" in (d.get("message") or "") for t, d in events if t == "message")
    (done,) = [d for t, d in events if t == "completed"]
    assert done["download_output"] == "video" and done["video_url"] == done["signed_url"]
    assert done["download_url"].endswith(f"/api/v1/jobs/{body['id']}/download/video")
    video = next(o for o in job["outputs"] if o["name"] == "video")
    assert api.fetch(done["signed_url"])[:12] == api.fetch(video["url"])[:12]


def _events(api, job_id: str) -> list[tuple[str, dict]]:
    out, kind = [], None
    for line in api.get(f"/api/v1/jobs/{job_id}/events").text.splitlines():
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            out.append((kind, json.loads(line[5:])))
    return out
