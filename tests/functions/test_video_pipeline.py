"""The ``video`` kind end to end: local engines on a synthesized song (checked with ffmpeg),
production engines behind fake OpenAI/Replicate transports (costs, budget, failures), params,
and one job through the HTTP API."""

from __future__ import annotations

import json
import re

import httpx
import numpy as np
import pytest

from functions.audio_io import save_audio
from functions.pipelines import analyze as analyze_kind
from functions.video import clips, providers, references
from functions.video.compose import probe_video
from shared.config import reset_settings
from shared.errors import BudgetExceeded, InvalidInput, StageFailed
from tests.functions.test_video_providers import (
    FakeOpenAI,
    FakeReplicate,
    chat_answer,
    record_sleeps,
    set_keys,
    transcription_answer,
)
from tests.functions.video_frames import grey_frames
from tests.synth import synth_song

PROMPT = "A lone astronaut drifts through neon city nights, chasing a red light across rooftops."
FAST = {"prompt": PROMPT, "video_preset": "ultrafast", "max_generated_clips": 3}
STAGES = [
    "audio_analysis",
    "lyrics",
    "scene_planning",
    "reference_generation",
    "video_generation",
    "composition",
]


@pytest.fixture(scope="module")
def song30(tmp_path_factory):
    audio, truth = synth_song(bpm=120, key="A minor", duration_s=30.0, seed=5)
    path = tmp_path_factory.mktemp("song") / "song30.wav"
    save_audio(path, audio, "wav")
    return path, audio, truth


@pytest.fixture(scope="module")
def song14(tmp_path_factory):
    audio, _ = synth_song(bpm=120, key="E minor", duration_s=14.0, seed=2)
    return save_audio(tmp_path_factory.mktemp("song") / "song14.wav", audio, "wav")


def frame_diffs(path) -> np.ndarray:
    """Mean absolute change between consecutive frames (decoded at 64x36 grey)."""
    frames = grey_frames(path, 64, 36)
    return np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))


def test_local_engines_make_a_beat_synced_1080p30_video(run_pipeline, song30):
    path, audio, truth = song30
    run = run_pipeline("video", [path], FAST)
    res = run.result
    video = run.outputs["video"]
    info = probe_video(video)
    assert (info.width, info.height, info.fps) == (1920, 1080, 30.0)
    assert abs(info.duration_s - audio.duration_s) <= 0.1
    assert info.has_audio and info.audio_codec == "aac" and info.video_codec == "h264"
    out = run.output_files["video"]
    assert out.bucket == "video-outputs" and out.content_type == "video/mp4"
    assert re.fullmatch(r"music_video_\d{8}_\d{6}\.mp4", out.filename)

    # Cuts land on the song's beats: as planned, and as seen in the picture.
    frame_s = 1 / 30
    assert len(res["cut_times_s"]) == res["slot_count"] - 1 >= 2
    for t in res["cut_times_s"]:
        assert min(abs(t - b) for b in truth["beats_s"]) <= frame_s + 0.03, t
    diffs = frame_diffs(video)
    jumps = np.flatnonzero(diffs > 4 * np.median(diffs) + 2) + 1  # frame index after the change
    assert len(jumps) >= len([s for s in res["slots"][1:] if s["transition_in"] == "cut"])
    for f in jumps:
        if 15 <= f < len(diffs) - 15:  # the opening and closing fades change every frame
            assert min(abs(f / 30 - b) for b in truth["beats_s"]) <= frame_s + 0.03, f / 30
    for s in res["slots"][1:]:
        if s["transition_in"] == "cut":
            assert round(s["start_s"] * 30) in jumps

    # Every stage ran, named its engine, and the local fallbacks say what they are.
    assert [s["name"] for s in run.stages] == STAGES
    assert all(s["status"] == "completed" and s["engine"] for s in run.stages)
    assert res["engines"]["scene_planning"] == "rule-based (local)"
    assert res["engines"]["video_generation"] == "procedural (local)"
    assert res["lyrics"]["status"] == "skipped" and res["lyrics"]["reason"]
    # Shots, not slots: every slot filled, no take twice in a row, clips gone after success.
    assert res["shots_generated"] == 3 and res["slot_count"] == len(res["slots"])
    assert res["shots_reused"] == res["slot_count"] - len({s["shot_id"] for s in res["slots"]})
    ids = [s["shot_id"] for s in res["slots"]]
    assert all(a != b for a, b in zip(ids, ids[1:], strict=False))
    assert sorted(res["clips"]["deleted_after_composition"]) == [
        f"clip_{s}" for s in sorted(set(ids))
    ]
    assert not [n for n in run.outputs if n.startswith("clip_")]
    refs = [o for n, o in run.output_files.items() if n.startswith("reference_")]
    assert refs and all(o.bucket == "reference-images" for o in refs)
    # Compute is metered per CPU stage (free locally).
    metered = {c["detail"].split(" ")[0] for c in run.costs if c["provider"] == "local"}
    assert {"audio_analysis", "video_generation", "composition"} <= metered


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"prompt": "too short"}, "BAD_PROMPT"),
        ({"prompt": "x" * 501}, "BAD_PROMPT"),
        ({"prompt": PROMPT, "max_generated_clips": 99}, "TOO_MANY_CLIPS"),
        ({"prompt": PROMPT, "budget_usd": 500.0}, "BAD_BUDGET"),
        ({"prompt": PROMPT, "style": "noir"}, "INVALID_PARAMS"),
    ],
)
def test_bad_params_are_user_errors(params, code):
    from functions.pipelines import KINDS
    from shared.submit import parse_params

    with pytest.raises(InvalidInput) as err:
        parse_params(KINDS.get("video"), params)
    assert err.value.code == code and err.value.message


def test_only_mp3_wav_or_flac_songs(run_pipeline, tmp_path):
    audio, _ = synth_song(duration_s=13.0)
    path = save_audio(tmp_path / "song.ogg", audio, "ogg")
    with pytest.raises(InvalidInput) as err:
        run_pipeline("video", [path], FAST)
    assert err.value.code == "UNSUPPORTED_FORMAT" and "mp3, wav or flac" in err.value.message


def test_a_song_under_12_s_is_refused(run_pipeline, tmp_path):
    audio, _ = synth_song(duration_s=9.0)
    path = save_audio(tmp_path / "short.wav", audio)
    with pytest.raises(InvalidInput) as err:
        run_pipeline("video", [path], FAST)
    assert err.value.code == "TOO_SHORT"


# -- production engines behind fake providers ---------------------------------------------------


PNG_URL = "https://replicate.delivery/pbxt/{n}/out-0.png"
MP4_URL = "https://replicate.delivery/pbxt/{n}/out.mp4"


def plan_for(request: httpx.Request) -> httpx.Response:
    """An LLM that reads the slots it was given and answers a valid plan for them."""
    user = json.loads(json.loads(request.content)["messages"][1]["content"])
    n = len(user["slots"])
    plan = {
        "title": "Red Light",
        "logline": "An astronaut chases a light",
        "style": "neon noir",
        "mood": "dark",
        "characters": [{"id": "c1", "name": "Ava", "description": "astronaut, white suit"}],
        "scenes": [
            {
                "id": f"s{k}",
                "setting": f"roof {k}",
                "description": "d",
                "palette": ["#000000", "#ff0000"],
                "lighting": "neon",
                "metaphor": "a light",
                "character_ids": ["c1"],
            }
            for k in (1, 2)
        ],
        "shots": [
            {
                "id": f"sh{k}",
                "scene_id": f"s{k % 2 + 1}",
                "prompt": f"shot {k}",
                "camera_move": "orbit",
                "motion": "high",
                "character_ids": ["c1"],
            }
            for k in range(3)
        ],
        "slots": [
            {
                "index": i,
                "shot_id": f"sh{i % 3}",
                "variant": "as_is",
                "transition_in": "fade" if i == 0 else "cut",
                "start_shift_s": 0.0,
            }
            for i in range(n)
        ],
    }
    return chat_answer(json.dumps(plan), prompt_tokens=3000, completion_tokens=1500)


@pytest.fixture
def providers_online(monkeypatch, tmp_path):
    """Fake OpenAI and Replicate behind the real SDKs; Replicate serves real PNG/MP4 bytes."""
    set_keys(monkeypatch)
    record_sleeps(monkeypatch)
    oa = FakeOpenAI()
    words = [
        (w, 1.0 + i * 0.4, 1.3 + i * 0.4)
        for i, w in enumerate("we run through the city lights tonight".split())
    ]
    oa.on("/v1/audio/transcriptions", transcription_answer(words, 14.0))
    oa.on("/v1/chat/completions", plan_for)
    rep = FakeReplicate()
    png = references.paint_reference(["#101020", "#ff3355"], seed=1)
    clip = tmp_path / "svd.mp4"
    clips.render_motion_clip(
        png, clip, camera_move="orbit", motion="high", tempo_bpm=120, preset="ultrafast"
    )
    count = iter(range(1000))

    def behave(version, model_input):
        n = next(count)
        if version == providers.SDXL_VERSION:
            rep.outputs[version] = [PNG_URL.format(n=n)]
            rep.files[PNG_URL.format(n=n)] = png
        else:
            rep.outputs[version] = MP4_URL.format(n=n)
            rep.files[MP4_URL.format(n=n)] = clip.read_bytes()
        return ["succeeded"]

    rep.behave = behave
    monkeypatch.setattr(providers, "openai_client", lambda api_key, timeout_s: oa.client())
    monkeypatch.setattr(providers, "replicate_client", lambda api_token, timeout_s: rep.client())
    yield oa, rep
    monkeypatch.undo()
    reset_settings()


def test_production_engines_bill_every_call(run_pipeline, song14, providers_online):
    oa, rep = providers_online
    run = run_pipeline("video", [song14], FAST)
    res = run.result
    assert res["engines"]["lyrics"] == "openai:whisper-1"
    assert res["engines"]["scene_planning"] == "openai:gpt-4o-mini"
    assert res["engines"]["reference_generation"] == "replicate:stability-ai/sdxl"
    assert res["engines"]["video_generation"] == "replicate:stability-ai/stable-video-diffusion"
    assert res["lyrics"]["status"] == "transcribed"
    # SVD starts each shot from its scene's SDXL image.
    sdxl = rep.creates(providers.SDXL_VERSION)
    svd = rep.creates(providers.SVD_VERSION)
    assert len(sdxl) == 3 and len(svd) == 3  # 2 scenes + 1 character; 3 shots
    sdxl_urls = {PNG_URL.format(n=i) for i in range(10)}
    assert {c["body"]["input"]["input_image"] for c in svd} <= sdxl_urls
    # One cost row (and cost_update event) per external call, priced from the table.
    paid = [c for c in run.costs if c["provider"] in ("openai", "replicate")]
    assert [c["provider"] for c in paid].count("openai") == 2
    assert [c["provider"] for c in paid].count("replicate") == 6
    whisper = next(c for c in paid if c["unit"] == "audio_minutes")
    assert whisper["cost_usd"] == pytest.approx(14 / 60 * 0.006)
    svd_cost = [c for c in paid if "stable-video-diffusion" in c["detail"]]
    assert all(c["cost_usd"] == pytest.approx(4.0 * 0.0014) for c in svd_cost)
    assert len([e for e in run.events if e[0] == "cost_update"]) == len(run.costs)
    assert res["cost"]["total_usd"] == pytest.approx(
        sum(c["cost_usd"] for c in run.costs), abs=1e-4
    )
    assert probe_video(run.outputs["video"]).width == 1920


def test_budget_stops_the_job_before_it_could_be_passed(run_pipeline, song14, providers_online):
    oa, rep = providers_online
    with pytest.raises(BudgetExceeded) as err:
        run_pipeline("video", [song14], {**FAST, "budget_usd": 0.5})
    assert err.value.code == "BUDGET_EXCEEDED" and "clips" in err.value.message
    assert rep.creates(providers.SVD_VERSION) == []  # stopped before the first clip
    assert len(rep.creates(providers.SDXL_VERSION)) == 3  # what could be afforded ran
    assert err.value.details["spent_usd"] + err.value.details["next_usd"] > 0.5


def test_preflight_estimate_over_budget_makes_no_call(run_pipeline, song14, providers_online):
    oa, rep = providers_online
    with pytest.raises(BudgetExceeded):
        run_pipeline("video", [song14], {**FAST, "budget_usd": 0.001})
    assert oa.requests == [] and rep.requests == []


def test_fewer_than_three_clips_fails_the_job(run_pipeline, song14, providers_online, monkeypatch):
    oa, rep = providers_online
    rep.behave = lambda v, i: ["succeeded"] if v == providers.SDXL_VERSION else ["failed"]
    rep.outputs[providers.SDXL_VERSION] = [PNG_URL.format(n=0)]
    rep.files[PNG_URL.format(n=0)] = references.paint_reference(["#000000", "#ffffff"], seed=0)
    # The song was analysed by an analyze job before: the video reuses that cached analysis.
    run_pipeline("analyze", [song14], {})
    monkeypatch.setattr(analyze_kind, "audio_analysis", lambda **kw: pytest.fail("analysed twice"))
    with pytest.raises(StageFailed) as err:
        run_pipeline("video", [song14], FAST)  # the same user: its cache
    assert err.value.code == "TOO_FEW_CLIPS" and err.value.retryable
    assert len(rep.creates(providers.SVD_VERSION)) == 9  # 3 shots x 3 attempts


# -- through the API ----------------------------------------------------------------------------


def test_video_job_through_the_api(api, api_run, song14):
    job = api_run("video", [song14], {**FAST, "engines": "local"}, timeout_s=240)
    assert job["status"] == "completed", job
    (video,) = [o for o in job["outputs"] if o["name"] == "video"]
    assert video["bucket"] == "video-outputs" and video["filename"].startswith("music_video_")
    assert not [o for o in job["outputs"] if o["bucket"] == "video-clips"]
    body = api.fetch(video["url"])
    assert body[4:8] == b"ftyp" and len(body) == video["size_bytes"]
