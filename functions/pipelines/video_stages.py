"""The work inside the video kind's stages, for a running job.

``VideoRun`` holds what the stages share (the job context, the 15-minute deadline, which paid
engines are on); ``lyrics``, ``make_references`` and ``make_clips`` are the work inside the
``lyrics``, ``reference_generation`` and ``video_generation`` stages; ``stage_engines`` names
what really ran. Every paid call is checked against the job's budget first
(``ctx.ensure_budget``) and recorded after (``ctx.cost``). The stage order, the planning and
the composition read top to bottom in ``functions.pipelines.video``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from functions.video import clips, providers, references
from functions.video.lyrics import Lyrics, transcribe_lyrics
from functions.video.plan import VideoPlan, without_shots
from functions.video.timing import MIN_CLIPS
from shared import prices
from shared.errors import StageFailed


class VideoRun:
    """One pipeline run's shared state: the context, its deadline and choices."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.p = ctx.params  # the kind's VideoParams
        self.settings = ctx.settings
        self.deadline = time.monotonic() + providers.PIPELINE_TIMEOUT_S
        local = self.p.engines == "local"
        self.use_openai = not local and bool(self.settings.openai_api_key)
        self.use_replicate = not local and bool(self.settings.replicate_api_token)
        self.max_shots = self.p.max_generated_clips or self.settings.max_generated_clips

    def check_deadline(self, next_stage: str) -> None:
        """Raise ``PIPELINE_TIMEOUT`` once the 15 minutes are spent: called between stages
        and as each clip or reference image of a fan-out finishes."""
        if time.monotonic() > self.deadline:
            raise StageFailed(
                f"The video ran past its 15-minute limit before {next_stage}.",
                code="PIPELINE_TIMEOUT",
            )
        self.ctx.check_canceled()

    @property
    def deadline_at(self) -> float:
        """The deadline as epoch seconds, for stage functions running in other processes."""
        return time.time() + (self.deadline - time.monotonic())

    def fan_out_progress(self, stage: Any, total: int, noun: str, key: str) -> Any:
        """An ``on_result`` for ``ctx.map``: "<noun> 3/6 done" messages and the stage's
        sub-progress as each item finishes, then the deadline check."""
        done = [0]

        def on_result(answer: dict[str, Any]) -> None:
            done[0] += 1
            n = done[0]
            ok = answer.get("ok", bool(answer.get("png") or answer.get("url")))
            self.ctx.message(
                f"{noun.capitalize()} {n}/{total} {'done' if ok else 'failed'} "
                f"({answer.get(key)}, {answer.get('engine')})",
                stage=stage.name,
                done=n,
                total=total,
            )
            nxt = f"Generating {noun} {n + 1}/{total}" if n < total else f"{total} {noun}s done"
            stage.progress(n / total, nxt)
            self.check_deadline(f"{noun} {n + 1} of {total}" if n < total else "the next stage")

        return on_result


def analysis_engine(timing: dict[str, Any]) -> str:
    """What found the cut points (the analyze kind's beats, librosa's onsets, or the grid)."""
    return f"soundstage-dsp beats + librosa onsets ({timing['method']})"


def lyrics(run: VideoRun, path: Path, duration_s: float) -> Lyrics:
    """Transcribe when OpenAI is on (budget checked, minutes billed); else say why not."""
    if not run.use_openai:
        why = (
            "Local engines were requested"
            if run.p.engines == "local"
            else "No OpenAI key is configured"
        )
        return Lyrics(
            status="skipped", engine="none", reason=f"{why}, so lyrics were not transcribed."
        )
    run.ctx.ensure_budget(
        prices.whisper_usd(duration_s) * providers.WHISPER.attempts, "transcribing the lyrics"
    )
    lyrics = transcribe_lyrics(
        path,
        duration_s,
        api_key=run.settings.openai_api_key,
        model=run.settings.openai_transcribe_model,
    )
    if lyrics.billed_audio_s:
        run.ctx.cost(
            "openai",
            round(lyrics.billed_audio_s / 60.0, 3),
            prices.whisper_usd(lyrics.billed_audio_s),
            unit="audio_minutes",
            detail=lyrics.engine,
        )
    return lyrics


def make_references(run: VideoRun, plan: VideoPlan, stage: Any) -> dict[str, dict[str, Any]]:
    """One image per scene and character, fanned out; kept in ``reference-images``.

    Returns ``generate_reference``'s answers by ``ref_id``.
    """
    engine = "replicate" if run.use_replicate else "procedural"
    jobs = references.reference_jobs(plan, engine, run.p.seed)
    for j in jobs:
        j["replicate_api_token"] = run.settings.replicate_api_token
    if engine == "replicate":
        run.ctx.ensure_budget(
            len(jobs) * prices.worst_case_replicate_usd("sdxl", providers.SDXL),
            f"generating {len(jobs)} reference images",
        )
    run.ctx.message(f"Generating reference 1/{len(jobs)}", stage=stage.name)
    answers = run.ctx.map(
        references.generate_reference,
        jobs,
        max_concurrency=run.settings.clip_concurrency,
        on_result=run.fan_out_progress(stage, len(jobs), "reference", "ref_id"),
    )
    folder = run.ctx.workdir / "references"
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, Any]] = {}
    for a in answers:
        if a.get("predict_time_s"):
            run.ctx.cost(
                "replicate",
                a["predict_time_s"],
                prices.replicate_usd("sdxl", a["predict_time_s"]),
                unit="gpu_seconds",
                detail=f"{providers.SDXL_MODEL} {a['ref_id']}",
            )
        if a.get("png"):
            path = folder / f"{a['ref_id']}.png"
            path.write_bytes(a["png"])
            run.ctx.output(
                f"reference_{a['ref_id']}",
                path,
                bucket="reference-images",
                content_type="image/png",
                meta={"engine": a["engine"], "kind": a["kind"]},
            )
        out[a["ref_id"]] = a
    stage.engine = ", ".join(sorted({a["engine"] for a in answers})) or engine
    return out


def make_clips(
    run: VideoRun, plan: VideoPlan, refs: dict[str, dict[str, Any]], tempo_bpm: float, stage: Any
) -> tuple[VideoPlan, dict[str, Path], list[dict[str, Any]]]:
    """One clip per shot, fanned out with ``ctx.map``; at least ``MIN_CLIPS`` must succeed.

    Returns the plan (slots of failed shots refilled from the others), clip paths by shot id,
    and a per-clip report. Raises StageFailed ``TOO_FEW_CLIPS``.
    """
    engine = "replicate" if run.use_replicate else "procedural"
    jobs = clips.clip_jobs(plan, refs, engine, tempo_bpm, run.p.seed, preset=run.p.video_preset)
    for j in jobs:
        j["deadline_at"] = run.deadline_at
        j["replicate_api_token"] = run.settings.replicate_api_token
    if engine == "replicate":
        # Worst case: every image-to-video clip fails its attempts and falls back to text.
        t2v = prices.worst_case_replicate_usd("t2v", providers.CLIP)
        worst = sum(
            (prices.worst_case_replicate_usd("svd", providers.CLIP) + t2v)
            if j["image_url"]
            else t2v
            for j in jobs
        )
        run.ctx.ensure_budget(worst, f"generating {len(jobs)} clips")
    concurrency = run.settings.clip_concurrency
    run.ctx.message(
        f"Generating {len(jobs)} clips for {len(plan.slots)} slots, {concurrency} at a time",
        stage="video_generation",
    )
    run.ctx.message(f"Generating clip 1/{len(jobs)}", stage=stage.name)
    started = time.monotonic()
    answers = run.ctx.map(
        clips.generate_clip,
        jobs,
        max_concurrency=concurrency,
        on_result=run.fan_out_progress(stage, len(jobs), "clip", "shot_id"),
    )
    folder = run.ctx.workdir / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    report = []
    for a in answers:
        billing = a.get("billing") or (
            [{"kind": a.get("kind", "svd"), "predict_time_s": a["predict_time_s"]}]
            if a.get("predict_time_s")
            else []
        )
        for bill in billing:  # each model tried is paid for, the failed one too
            if bill["predict_time_s"]:
                run.ctx.cost(
                    "replicate",
                    bill["predict_time_s"],
                    prices.replicate_usd(bill["kind"], bill["predict_time_s"]),
                    unit="gpu_seconds",
                    detail=f"replicate:{bill['kind']} {a['shot_id']}",
                )
        report.append(
            {
                k: a.get(k)
                for k in ("shot_id", "ok", "engine", "attempts", "wall_s", "error", "fallback")
            }
        )
        if a["ok"]:
            path = folder / f"{a['shot_id']}.mp4"
            path.write_bytes(a["mp4"])
            paths[a["shot_id"]] = path
    if engine == "procedural":
        run.ctx.compute_cost(
            clips.generate_clip,
            time.monotonic() - started,
            cores=1.0,
            memory_gib=1.0,
            detail="video_generation",
        )
    stage.engine = ", ".join(sorted({a["engine"] for a in answers}))
    if len(paths) < MIN_CLIPS:
        raise StageFailed(
            f"Only {len(paths)} of {len(jobs)} clips could be generated; a video needs at least "
            f"{MIN_CLIPS}. Try again later.",
            code="TOO_FEW_CLIPS",
            details={"clips": report},
        )
    failed = {a["shot_id"] for a in answers if not a["ok"]}
    if failed:
        run.ctx.message(
            f"{len(failed)} clip(s) failed; their slots reuse other shots", stage="video_generation"
        )
        plan = without_shots(plan, failed)
    return plan, paths, report


def stage_engines(
    timing: dict, lyrics: Lyrics, outcome: Any, refs: dict, clip_report: list
) -> dict[str, str]:
    """What really ran in each stage, fallbacks named as such."""
    return {
        "audio_analysis": analysis_engine(timing),
        "lyrics": lyrics.engine,  # "none" when skipped; the result's lyrics.reason says why
        "scene_planning": outcome.engine,
        "reference_generation": ", ".join(sorted({r["engine"] for r in refs.values()})),
        "video_generation": ", ".join(sorted({c["engine"] for c in clip_report})),
        "composition": "ffmpeg",
    }
