"""Reference images and clips: Replicate requests as documented (SDXL, Stable Video Diffusion,
text-to-video), their failure modes, and the procedural engines' output."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from functions.video import clips, providers, references
from functions.video.compose import probe_video
from tests.functions.test_video_providers import (
    REPLICATE_TOKEN,
    FakeReplicate,
    record_sleeps,
)
from tests.functions.video_frames import grey_frames


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    return record_sleeps(monkeypatch)


PNG_URL = "https://replicate.delivery/pbxt/ref/out-0.png"
MP4_URL = "https://replicate.delivery/pbxt/clip/out.mp4"


@pytest.fixture
def fake(monkeypatch) -> FakeReplicate:
    fake = FakeReplicate()
    fake.outputs[providers.SDXL_VERSION] = [PNG_URL]
    fake.outputs[providers.SVD_VERSION] = MP4_URL
    fake.outputs[providers.T2V_VERSION] = [MP4_URL]
    fake.files[PNG_URL] = b"\x89PNG fake image"
    fake.files[MP4_URL] = b"\0\0\0 ftypisom fake video"
    monkeypatch.setattr(providers, "replicate_client", lambda api_token, timeout_s: fake.client())
    return fake


def frame_means(path, size=(32, 18)) -> np.ndarray:
    """Mean luma of every frame, decoded small."""
    w, h = size
    return grey_frames(path, w, h).mean(axis=(1, 2))


# -- references ---------------------------------------------------------------------------------


def test_sdxl_reference_request_matches_the_documented_api(fake, sleeps):
    out = references.generate_reference(
        ref_id="scene_1",
        kind="scene",
        prompt="a neon rooftop at night",
        palette=["#000000", "#ff0000"],
        engine="replicate",
        seed=7,
    )
    (create,) = fake.creates()
    body = create["body"]
    assert create["headers"]["authorization"] == f"Bearer {REPLICATE_TOKEN}"
    assert body["version"] == providers.SDXL_VERSION
    assert body["input"]["prompt"] == "a neon rooftop at night"
    assert (body["input"]["width"], body["input"]["height"]) == (1024, 576)  # SVD's input size
    assert body["input"]["num_outputs"] == 1 and body["input"]["seed"] == 7
    assert out["png"] == fake.files[PNG_URL] and out["url"] == PNG_URL
    assert out["engine"] == "replicate:stability-ai/sdxl"
    assert out["predict_time_s"] == 4.0 and out["attempts"] == 1


def test_sdxl_5xx_is_retried(fake, sleeps):
    fake.create_errors = [502, 503]
    out = references.generate_reference(
        ref_id="s", kind="scene", prompt="p", palette=[], engine="replicate"
    )
    assert len(fake.creates()) == 3  # two answered 5xx, the third made the prediction
    assert sleeps[:2] == [2.0, 4.0]
    assert out["png"] is not None


def test_sdxl_that_never_finishes_falls_back_to_text_only(fake, monkeypatch):
    fake.behave = lambda v, i: ["processing"]
    monkeypatch.setattr(
        providers, "SDXL", providers.RetryPolicy(attempts=3, timeout_s=0.15, backoff_s=(0.0,))
    )
    monkeypatch.setattr(providers, "sleep", lambda s: __import__("time").sleep(min(s, 0.02)))
    out = references.generate_reference(
        ref_id="s", kind="scene", prompt="p", palette=[], engine="replicate"
    )
    assert len(fake.creates()) == 3 and len(fake.cancels()) == 3
    assert out["png"] is None and out["engine"] == "text-only (fallback)"
    assert "ProviderTimeout" in out["error"]
    assert out["attempts"] == 3 and out["predict_time_s"] >= 0.45  # canceled runs still cost


def test_procedural_reference_follows_the_palette():
    warm = references.generate_reference(
        ref_id="s1", kind="scene", prompt="p", palette=["#ff2200", "#ffaa00"], engine="procedural"
    )
    again = references.generate_reference(
        ref_id="s1", kind="scene", prompt="p", palette=["#ff2200", "#ffaa00"], engine="procedural"
    )
    cold = references.generate_reference(
        ref_id="s1", kind="scene", prompt="p", palette=["#0022ff", "#00aaff"], engine="procedural"
    )
    assert warm["engine"] == "procedural (local)" and warm["png"] == again["png"]
    img_w = np.asarray(Image.open(io.BytesIO(warm["png"])).convert("RGB"), float)
    img_c = np.asarray(Image.open(io.BytesIO(cold["png"])).convert("RGB"), float)
    assert img_w.shape == (576, 1024, 3)
    assert (
        img_w[..., 0].mean() > img_w[..., 2].mean() and img_c[..., 2].mean() > img_c[..., 0].mean()
    )


# -- clips --------------------------------------------------------------------------------------


def test_svd_clip_from_the_reference_image(fake, sleeps):
    out = clips.generate_clip(
        shot_id="shot_1",
        prompt="p",
        camera_move="push_in",
        motion="high",
        engine="replicate",
        tempo_bpm=120,
        image_url=PNG_URL,
        seed=3,
    )
    (create,) = fake.creates()
    inp = create["body"]["input"]
    assert create["body"]["version"] == providers.SVD_VERSION
    assert inp["input_image"] == PNG_URL
    assert inp["sizing_strategy"] == "crop_to_16_9"
    assert inp["video_length"] in ("14_frames_with_svd", "25_frames_with_svd_xt")
    assert (
        inp["motion_bucket_id"] == clips.MOTION_BUCKET["high"]
        and 1 <= inp["motion_bucket_id"] <= 255
    )
    assert 5 <= inp["frames_per_second"] <= 30
    assert out["ok"] and out["mp4"] == fake.files[MP4_URL]
    assert out["engine"] == "replicate:stability-ai/stable-video-diffusion" and out["kind"] == "svd"


def test_text_to_video_when_the_scene_has_no_image(fake, sleeps):
    out = clips.generate_clip(
        shot_id="shot_2",
        prompt="rain on neon streets",
        camera_move="pan_left",
        motion="low",
        engine="replicate",
        tempo_bpm=120,
    )
    (create,) = fake.creates()
    assert create["body"]["version"] == providers.T2V_VERSION
    assert create["body"]["input"]["prompt"] == "rain on neon streets"
    assert (create["body"]["input"]["width"], create["body"]["input"]["height"]) == (1024, 576)
    assert out["ok"] and out["kind"] == "t2v"


def test_a_clip_that_keeps_failing_is_reported_not_raised(fake, sleeps):
    fake.behave = lambda v, i: ["failed"]
    out = clips.generate_clip(
        shot_id="shot_3",
        prompt="p",
        camera_move="static",
        motion="low",
        engine="replicate",
        tempo_bpm=120,
        image_url=PNG_URL,
    )
    # Three image-to-video attempts, then the text-to-video fallback's three.
    assert len(fake.creates(providers.SVD_VERSION)) == 3
    assert len(fake.creates(providers.T2V_VERSION)) == 3
    assert not out["ok"] and "CUDA out of memory" in out["error"]
    assert out["predict_time_s"] == 24.0  # six failed runs, billed


def test_procedural_clip_is_whole_beats_and_pulses_on_the_beat(tmp_path):
    png = references.paint_reference(["#334455", "#8899aa"], seed=1)
    out = tmp_path / "clip.mp4"
    duration = clips.render_motion_clip(
        png, out, camera_move="static", motion="high", tempo_bpm=120, preset="ultrafast"
    )
    info = probe_video(out)
    assert (info.width, info.height, info.fps) == (1024, 576, 30.0)
    assert duration == pytest.approx(4.0)  # 8 beats at 120 BPM
    luma = frame_means(out)
    assert len(luma) == 120
    per_beat = luma.reshape(8, 15)  # 15 frames per beat at 30 fps
    # The flash is brightest on the beat's frame and decays until the next beat.
    assert np.all(per_beat.argmax(axis=1) == 0)
    assert np.all(per_beat[:, 0] - per_beat[:, -1] > 3.0)


def test_procedural_camera_moves_change_the_picture(tmp_path):
    png = references.paint_reference(["#223344", "#ffcc00", "#aa3355"], seed=2)
    moving, still = tmp_path / "pan.mp4", tmp_path / "static.mp4"
    for path, move in ((moving, "pan_right"), (still, "static")):
        clips.render_motion_clip(
            png, path, camera_move=move, motion="low", tempo_bpm=120, preset="ultrafast"
        )

    def change_over_a_bar(path):
        # Frames 0 and 60 sit at the same point of the beat pulse and the bar's hue swing, so
        # what differs between them is the camera.
        frames = grey_frames(path, 64, 36)
        return np.abs(frames[0] - frames[60]).mean()

    assert change_over_a_bar(moving) > 3 * change_over_a_bar(still)
