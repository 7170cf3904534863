"""Reference images: one per scene and per character, so every clip of a scene looks alike.

Offers:
- ``generate_reference(**kw) -> dict``: the stage function the pipeline fans out with
  ``ctx.map`` (Modal ``.map`` in production). ``engine="replicate"`` runs SDXL on Replicate
  (30 s per attempt, 3 attempts); when that fails the reference is text-only (no image, the
  style words stay in the clip prompts) and the answer says so. ``engine="procedural"`` paints
  one with Pillow.
- ``paint_reference(...)``: the procedural painter: a graded sky in the scene's palette, a sun
  or moon, layered ridges, light particles, and a figure silhouette for characters.
- ``reference_jobs(plan, engine, seed)``: the keyword arguments for every reference of a plan.

Arguments and answers are plain data (bytes for images) because the function may run in
another container.
"""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

import numpy as np

from . import providers
from .plan import VideoPlan

WIDTH, HEIGHT = 1024, 576  # SVD's native 16:9 size; SDXL takes it (multiples of 8)
NEGATIVE_PROMPT = "text, watermark, logo, blurry, deformed, extra limbs, low quality"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _seed_of(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "big")


def paint_reference(
    palette: list[str],
    *,
    seed: int,
    character: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> bytes:
    """A procedural reference image (PNG bytes) in ``palette``; deterministic for ``seed``."""
    from PIL import Image, ImageDraw, ImageFilter  # off module load: the job registry imports this

    rng = np.random.default_rng(seed)
    colours = [_rgb(c) for c in (palette or ["#223344", "#aabbcc"])]
    top, bottom = np.array(colours[0], float), np.array(colours[-1], float)
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = (top * (1 - t) + bottom * t).repeat(width, axis=1)
    img = Image.fromarray(sky.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img, "RGBA")

    # A sun or moon: a soft glow then a disc, in the palette's brightest colour.
    bright = max(colours, key=sum)
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.15, 0.45) * height
    for r, a in ((height * 0.28, 40), (height * 0.18, 70), (height * 0.1, 255)):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*bright, a))

    # Layered ridges, darker toward the viewer: depth for the camera moves to reveal.
    xs = np.linspace(0, width, 48)
    for layer in range(3):
        base = height * (0.55 + 0.13 * layer)
        ys = base + np.cumsum(rng.normal(0, height * 0.02, xs.size))
        ys -= ys.mean() - base
        shade = np.array(colours[(layer + 1) % len(colours)], float) * (0.55 - 0.15 * layer)
        points = [(0, height), *zip(xs.tolist(), ys.tolist(), strict=True), (width, height)]
        draw.polygon(points, fill=(*shade.astype(int).tolist(), 255))

    # Light particles (bokeh), blurred so they read as out-of-focus lights.
    glow = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    gdraw = ImageDraw.Draw(glow)
    for _ in range(40):
        x, y = rng.uniform(0, width), rng.uniform(0, height * 0.7)
        r = rng.uniform(2, 9)
        c = colours[int(rng.integers(len(colours)))]
        gdraw.ellipse((x - r, y - r, x + r, y + r), fill=(*c, int(rng.uniform(90, 200))))
    img = Image.alpha_composite(img.convert("RGBA"), glow.filter(ImageFilter.GaussianBlur(3)))

    if character:  # a standing figure: head, shoulders, body, in silhouette against the sky
        draw = ImageDraw.Draw(img)
        fx, fy, s = width * 0.5, height * 0.92, height * 0.55
        draw.ellipse((fx - s * 0.09, fy - s, fx + s * 0.09, fy - s * 0.8), fill=(12, 12, 16, 255))
        draw.polygon(
            [
                (fx - s * 0.22, fy),
                (fx - s * 0.18, fy - s * 0.74),
                (fx + s * 0.18, fy - s * 0.74),
                (fx + s * 0.22, fy),
            ],
            fill=(12, 12, 16, 255),
        )
    out = io.BytesIO()
    img.convert("RGB").save(out, format="PNG", optimize=False)
    return out.getvalue()


def _sdxl(
    prompt: str, seed: int, width: int, height: int, billed_s: list[float], api_token: str
) -> dict[str, Any]:
    policy = providers.SDXL
    client = providers.replicate_client(api_token, policy.timeout_s)
    if client is None:
        raise providers.ProviderFailed("no Replicate token is configured", transient=False)

    def attempt() -> dict[str, Any]:
        result = providers.run_prediction(
            client,
            providers.SDXL_VERSION,
            {
                "prompt": prompt,
                "negative_prompt": NEGATIVE_PROMPT,
                "width": width,
                "height": height,
                "num_outputs": 1,
                "num_inference_steps": 25,
                "guidance_scale": 7.5,
                "scheduler": "K_EULER",
                "refine": "no_refiner",
                "apply_watermark": False,
                "seed": seed,
            },
            timeout_s=policy.timeout_s,
            billed_s=billed_s,
        )
        url = (
            result.output[0] if isinstance(result.output, list) and result.output else result.output
        )
        return {"png": providers.download(client, url), "url": url}

    return policy.retrying()(attempt)


def generate_reference(
    *,
    ref_id: str,
    kind: str,
    prompt: str,
    palette: list[str],
    engine: str,
    seed: int = 0,
    width: int = WIDTH,
    height: int = HEIGHT,
    replicate_api_token: str = "",
) -> dict[str, Any]:
    """Make one reference image (stage function for ``ctx.map``); ``engine`` ``replicate``
    (SDXL, with ``replicate_api_token``) or ``procedural``.

    Returns ``{ref_id, kind, engine, png (bytes or None), url, predict_time_s, wall_s, error}``;
    ``engine`` in the answer is what really ran ("text-only (fallback)" when SDXL failed).
    """
    started = time.monotonic()
    answer: dict[str, Any] = {
        "ref_id": ref_id,
        "kind": kind,
        "png": None,
        "url": None,
        "predict_time_s": 0.0,
        "error": "",
    }
    if engine == "replicate":
        billed_s: list[float] = []
        try:
            out = _sdxl(prompt, seed, width, height, billed_s, replicate_api_token)
            answer.update(out, engine=f"replicate:{providers.SDXL_MODEL}")
        except Exception as exc:  # noqa: BLE001 - a reference is optional: fall back to text
            answer.update(
                engine="text-only (fallback)", error=f"{type(exc).__name__}: {str(exc)[:200]}"
            )
        answer.update(predict_time_s=round(sum(billed_s), 3), attempts=len(billed_s))
    else:
        answer.update(
            png=paint_reference(
                palette,
                seed=_seed_of(ref_id, seed, prompt),
                character=kind == "character",
                width=width,
                height=height,
            ),
            engine="procedural (local)",
        )
    answer["wall_s"] = round(time.monotonic() - started, 3)
    return answer


def reference_jobs(plan: VideoPlan, engine: str, seed: int) -> list[dict[str, Any]]:
    """``generate_reference`` keyword arguments: one per scene, one per character."""
    jobs = []
    for sc in plan.scenes:
        jobs.append(
            {
                "ref_id": sc.id,
                "kind": "scene",
                "engine": engine,
                "seed": seed,
                "palette": sc.palette,
                "prompt": f"{sc.description}. {sc.setting}. {sc.metaphor}. {sc.lighting}. {plan.style}",
            }
        )
    for ch in plan.characters:
        palette = plan.scenes[0].palette if plan.scenes else []
        jobs.append(
            {
                "ref_id": ch.id,
                "kind": "character",
                "engine": engine,
                "seed": seed,
                "palette": palette,
                "prompt": f"Character sheet, full body: {ch.name}, {ch.description}. {plan.style}",
            }
        )
    return jobs
