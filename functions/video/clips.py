"""Motion clips: one per planned shot, generated in parallel (``ctx.map``; Modal ``.map``).

Offers:
- ``generate_clip(**kw) -> dict``: the stage function. ``engine="replicate"`` runs Stable Video
  Diffusion from the scene's reference image URL (1024x576) and falls back to a text-to-video
  model when that fails after its retries (or straight away when the scene has no image); 120 s
  per attempt, 3 attempts per model, a stuck prediction is canceled, nothing runs past the
  job's 15-minute deadline.
  ``engine="procedural"`` renders a motion clip from the reference image with ffmpeg.
- ``render_motion_clip(png, out, ...)``: the procedural clip: the camera move of the shot
  (push-in, pull-out, pans, tilts, orbit) with zoompan, and colour pulses on the beat (a
  brightness flash that decays each beat, a slow hue swing over the bar). Its length is a
  whole number of beats, so a looped clip keeps the pulses on the beat.
- ``clip_jobs(plan, references, engine, tempo_bpm, seed)``: keyword arguments per shot.

Arguments and answers are plain data (bytes for media): the function may run elsewhere.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from functions.ffmpeg_command import ffmpeg_command

from . import providers
from .plan import VideoPlan

WIDTH, HEIGHT = 1024, 576
CLIP_FPS = 30
TARGET_CLIP_S = 4.0
# SVD's motion_bucket_id by the shot's motion (127 is the model's default).
MOTION_BUCKET = {"low": 80, "medium": 127, "high": 180}
PULSE_AMPLITUDE = {"low": 0.05, "medium": 0.09, "high": 0.14}
RENDER_TIMEOUT_S = 120.0


def beats_per_clip(tempo_bpm: float, target_s: float = TARGET_CLIP_S) -> tuple[int, float]:
    """Whole beats closest to ``target_s`` (at least 2) and the clip length they make."""
    period = 60.0 / max(30.0, float(tempo_bpm))
    n = max(2, round(target_s / period))
    return n, n * period


FRAMINGS = (1.0, 1.35, 1.7)  # wide, medium, close: shots of one scene look different


def shot_framing(seed: int) -> tuple[float, tuple[float, float]]:
    """A shot's framing (zoom into the reference) and the point it frames, from its seed."""
    rng = np.random.default_rng(seed)
    return FRAMINGS[seed % len(FRAMINGS)], (
        float(rng.uniform(0.35, 0.65)),
        float(rng.uniform(0.35, 0.65)),
    )


def _camera(
    move: str, frames: int, framing: float = 1.0, focus: tuple[float, float] = (0.5, 0.5)
) -> tuple[str, str, str]:
    """zoompan ``z``, ``x``, ``y`` expressions for a camera move over ``frames`` frames, on a
    frame ``framing`` times closer than the reference, centred on ``focus`` (0..1 of the
    image; zoompan clamps the window inside the picture)."""
    p = f"(on/{max(1, frames - 1)})"
    fx, fy = focus
    cx, cy = f"{fx:.3f}*iw-(iw/zoom/2)", f"{fy:.3f}*ih-(ih/zoom/2)"
    free_x, free_y = "(iw-iw/zoom)", "(ih-ih/zoom)"
    moves = {
        "push_in": (f"1+0.18*{p}", cx, cy),
        "pull_out": (f"1.18-0.18*{p}", cx, cy),
        "pan_left": ("1.15", f"{free_x}*(1-{p})", cy),
        "pan_right": ("1.15", f"{free_x}*{p}", cy),
        "tilt_up": ("1.15", cx, f"{free_y}*(1-{p})"),
        "tilt_down": ("1.15", cx, f"{free_y}*{p}"),
        "orbit": (
            "1.15",
            f"{free_x}/2*(1+sin(2*PI*{p}))",
            f"{free_y}/2*(1+cos(2*PI*{p}))",
        ),
        "static": (f"1.04+0.02*sin(PI*{p})", cx, cy),
    }
    z, x, y = moves.get(move, moves["static"])
    return f"{framing:g}*({z})", x, y


def render_motion_clip(
    png: bytes,
    out_path: Path,
    *,
    camera_move: str,
    motion: str,
    tempo_bpm: float,
    width: int = WIDTH,
    height: int = HEIGHT,
    fps: int = CLIP_FPS,
    preset: str = "veryfast",
    timeout_s: float = RENDER_TIMEOUT_S,
    framing: float = 1.0,
    focus: tuple[float, float] = (0.5, 0.5),
) -> float:
    """Render the procedural motion clip to ``out_path`` (H.264); returns its duration (s)."""
    n_beats, duration_s = beats_per_clip(tempo_bpm)
    frames = max(2, round(duration_s * fps))
    period = 60.0 / max(30.0, float(tempo_bpm))
    z, x, y = _camera(camera_move, frames, framing, focus)
    amp = PULSE_AMPLITUDE.get(motion, 0.09)
    bar_s = 4 * period
    vf = ",".join(
        [
            # Work on a 2x canvas so zoompan's whole-pixel steps don't judder.
            f"scale={width * 2}:{height * 2}:flags=bicubic",
            f"zoompan=z='{z}':x='{x}':y='{y}':d={frames}:s={width}x{height}:fps={fps}",
            f"eq=brightness='{amp}*exp(-7*mod(t,{period:.6f}))':saturation='1+{amp * 2}*exp(-7*mod(t,{period:.6f}))':eval=frame",
            f"hue=h='12*sin(2*PI*t/{bar_s:.6f})'",
            "format=yuv420p",
        ]
    )
    with tempfile.TemporaryDirectory(prefix="clip-") as tmp:
        src = Path(tmp) / "reference.png"
        src.write_bytes(png)
        cmd = ffmpeg_command(
            "-i",
            src,
            "-vf",
            vf,
            "-frames:v",
            str(frames),
            "-r",
            str(fps),
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-crf",
            "18",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            out_path,
        )
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(
            f"ffmpeg could not render the clip: {proc.stderr.decode(errors='replace')[-400:]}"
        )
    return frames / fps


def seconds_left(deadline_at: float | None) -> float | None:
    """Seconds until the job's wall-clock deadline (epoch seconds: it crosses processes)."""
    return None if deadline_at is None else deadline_at - time.time()


def _replicate_clip(
    kind: str,
    kw: dict[str, Any],
    billed_s: list[float],
    api_token: str,
    deadline_at: float | None = None,
) -> tuple[bytes, str]:
    """One clip from Replicate: ``kind`` ``svd`` (image-to-video from ``image_url``) or
    ``t2v`` (text-to-video from ``prompt``), with the clip policy's attempts, each bounded by
    the time the job has left."""
    policy = providers.CLIP
    client = providers.replicate_client(api_token, policy.timeout_s)
    if client is None:
        raise providers.ProviderFailed("no Replicate token is configured", transient=False)
    if kind == "svd":
        model, version = providers.SVD_MODEL, providers.SVD_VERSION
        model_input = {
            "input_image": kw["image_url"],
            "video_length": "14_frames_with_svd",
            "sizing_strategy": "crop_to_16_9",
            "frames_per_second": 6,
            "motion_bucket_id": MOTION_BUCKET.get(kw.get("motion", "medium"), 127),
            "cond_aug": 0.02,
            "decoding_t": 14,
            "seed": int(kw.get("seed", 0)),
        }
    else:
        model, version = providers.T2V_MODEL, providers.T2V_VERSION
        model_input = {
            "prompt": kw["prompt"],
            "negative_prompt": "text, watermark, blurry, distorted",
            "model": "xl",
            "width": WIDTH,
            "height": HEIGHT,
            "num_frames": 24,
            "fps": 8,
            "num_inference_steps": 40,
            "guidance_scale": 12.5,
            "seed": int(kw.get("seed", 0)),
        }

    def attempt() -> bytes:
        left = seconds_left(deadline_at)
        if left is not None and left <= 1.0:
            raise providers.ProviderFailed(
                "the video's 15-minute limit has passed", transient=False
            )
        timeout_s = policy.timeout_s if left is None else min(policy.timeout_s, left)
        result = providers.run_prediction(
            client, version, model_input, timeout_s=timeout_s, billed_s=billed_s
        )
        url = (
            result.output[0] if isinstance(result.output, list) and result.output else result.output
        )
        return providers.download(client, url)

    return policy.retrying()(attempt), model


def generate_clip(
    *,
    shot_id: str,
    prompt: str,
    camera_move: str,
    motion: str,
    engine: str,
    tempo_bpm: float,
    image_png: bytes | None = None,
    image_url: str | None = None,
    seed: int = 0,
    preset: str = "veryfast",
    deadline_at: float | None = None,
    replicate_api_token: str = "",
) -> dict[str, Any]:
    """Make one clip (stage function for ``ctx.map``); never raises for a failed clip.

    With Replicate (``replicate_api_token``) the chain is image-to-video (when the scene has a
    reference image) and, when that fails after its retries, text-to-video from the shot's
    prompt, before the slot is given up. ``deadline_at`` (epoch seconds) is the job's 15-minute limit: no attempt starts
    after it and none runs past it.

    Returns ``{shot_id, ok, engine, mp4 (bytes or None), predict_time_s, billing (per model
    tried: kind, predict_time_s, attempts), fallback, attempts, wall_s, error}``; the pipeline
    needs at least 3 ``ok`` clips.
    """
    started = time.monotonic()
    answer: dict[str, Any] = {
        "shot_id": shot_id,
        "ok": False,
        "mp4": None,
        "error": "",
        "predict_time_s": 0.0,
        "attempts": 0,
        "billing": [],
        "fallback": None,
    }
    if engine == "replicate":
        chain = ["svd", "t2v"] if image_url else ["t2v"]
        errors = []
        for kind in chain:
            billed_s: list[float] = []
            answer["kind"] = kind
            try:
                mp4, model = _replicate_clip(
                    kind,
                    {"prompt": prompt, "motion": motion, "seed": seed, "image_url": image_url},
                    billed_s,
                    replicate_api_token,
                    deadline_at,
                )
                fell_back = kind != chain[0]
                answer.update(
                    ok=True,
                    mp4=mp4,
                    engine=f"replicate:{model}"
                    + (" (text-to-video fallback)" if fell_back else ""),
                )
                if fell_back:
                    answer["fallback"] = {"from": chain[0], "to": kind, "because": errors[-1]}
            except Exception as exc:  # noqa: BLE001 - the pipeline decides if enough clips remain
                errors.append(f"{kind}: {type(exc).__name__}: {str(exc)[:200]}")
                answer["engine"] = f"replicate:{kind}"
            finally:
                answer["billing"].append(
                    {
                        "kind": kind,
                        "predict_time_s": round(sum(billed_s), 3),
                        "attempts": len(billed_s),
                    }
                )
            if answer["ok"]:
                break
        answer["error"] = "" if answer["ok"] else "; ".join(errors)
        answer["predict_time_s"] = round(sum(b["predict_time_s"] for b in answer["billing"]), 3)
        answer["attempts"] = sum(b["attempts"] for b in answer["billing"])
    else:
        answer["engine"] = "procedural (local)"
        left = seconds_left(deadline_at)
        if not image_png:
            answer["error"] = "the procedural engine needs a reference image"
        elif left is not None and left <= 1.0:
            answer["error"] = "the video's 15-minute limit has passed"
        else:
            framing, focus = shot_framing(seed)
            with tempfile.TemporaryDirectory(prefix="clip-out-") as tmp:
                out = Path(tmp) / f"{shot_id}.mp4"
                try:
                    render_motion_clip(
                        image_png,
                        out,
                        camera_move=camera_move,
                        motion=motion,
                        tempo_bpm=tempo_bpm,
                        preset=preset,
                        framing=framing,
                        focus=focus,
                        timeout_s=RENDER_TIMEOUT_S if left is None else min(RENDER_TIMEOUT_S, left),
                    )
                    answer.update(ok=True, mp4=out.read_bytes(), attempts=1)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    answer["error"] = str(exc)[:300]
    answer["wall_s"] = round(time.monotonic() - started, 3)
    return answer


def clip_jobs(
    plan: VideoPlan,
    references: dict[str, dict[str, Any]],
    engine: str,
    tempo_bpm: float,
    seed: int,
    preset: str = "veryfast",
) -> list[dict[str, Any]]:
    """``generate_clip`` keyword arguments per shot; the scene's reference image is the start
    frame, characters are carried in the prompt (one image per model call)."""
    jobs = []
    for k, shot in enumerate(plan.shots):
        ref = references.get(shot.scene_id, {})
        names = [
            c.name + " (" + c.description + ")"
            for c in plan.characters
            if c.id in shot.character_ids
        ]
        prompt = shot.prompt + (f" Featuring {'; '.join(names)}." if names else "")
        jobs.append(
            {
                "shot_id": shot.id,
                "prompt": prompt,
                "camera_move": shot.camera_move,
                "motion": shot.motion,
                "engine": engine,
                "tempo_bpm": tempo_bpm,
                # Replicate takes the reference by URL: no need to ship its bytes to the worker.
                "image_png": ref.get("png") if engine == "procedural" else None,
                "image_url": ref.get("url"),
                "seed": seed + k,
                "preset": preset,
            }
        )
    return jobs
