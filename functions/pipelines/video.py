"""The ``video`` kind: a song and a prompt -> a beat-synced 1080p30 music video.

Stages (each a ``job_stages`` row with its engine): ``audio_analysis`` (the analyze job's code
and cache, beats merged with onsets), ``lyrics`` (OpenAI transcription or none, said so),
``scene_planning`` (OpenAI structured output or the rule-based planner), ``reference_generation``
(one image per scene and character, in parallel), ``video_generation`` (one clip per shot,
fanned out with ``ctx.map``; at least 3 must succeed), ``composition`` (one FFmpeg pass).
Every paid call is priced (``shared.prices``) and guarded by the job's budget; the whole
pipeline is bounded at 15 minutes.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.audio_io import load_audio, sniff_format
from functions.pipelines.analyze import analyses_of, audio_analysis
from functions.pipelines.analyze import cache_key as analysis_cache_key
from functions.pipelines.estimates import input_durations_s
from functions.video import providers
from functions.video.estimate import STAGE_RESERVATION, estimate_video
from functions.video.timing import BEATS_VERSION, MIN_CLIPS, video_timing
from shared import prices
from shared.config import get_settings
from shared.errors import BudgetExceeded, InvalidAudio, InvalidInput
from shared.registry import CliFlag, JobKind

PROMPT_MIN_CHARS, PROMPT_MAX_CHARS = 50, 500
SONG_FORMATS = ("mp3", "wav", "flac")


class VideoParams(BaseModel):
    """What a user sets for a music video (the song is the job's one input file)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(
        description="What the video should show, 50-500 characters",
        # The validator below enforces the length with its own code; the schema says it too,
        # so generated forms (the web client) can count characters before submitting.
        json_schema_extra={"minLength": PROMPT_MIN_CHARS, "maxLength": PROMPT_MAX_CHARS},
    )
    max_generated_clips: Annotated[int | None, CliFlag("max-clips")] = Field(
        default=None, ge=MIN_CLIPS, description="Shots to generate (default and cap: the server's)"
    )
    budget_usd: float | None = Field(default=None, gt=0, description="Stop before spending more")
    engines: Annotated[Literal["auto", "local"], CliFlag("local-engines", switch="local")] = Field(
        default="auto", description="'local' never calls paid providers, even with keys set"
    )
    crossfade_s: float = Field(default=0.5, ge=0.1, le=2.0)
    video_preset: Annotated[
        Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"], CliFlag("preset")
    ] = "veryfast"
    seed: int = Field(default=0, ge=0)

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt_length(cls, v: Any) -> str:
        text = " ".join(str(v).split()) if isinstance(v, str) else ""
        if not PROMPT_MIN_CHARS <= len(text) <= PROMPT_MAX_CHARS:
            raise InvalidInput(
                f"The prompt must be {PROMPT_MIN_CHARS}-{PROMPT_MAX_CHARS} characters long "
                f"(it has {len(text)}); describe what the video should show.",
                code="BAD_PROMPT",
            )
        return text

    @field_validator("max_generated_clips")
    @classmethod
    def _clip_cap(cls, v: int | None) -> int | None:
        cap = get_settings().max_generated_clips
        if v is not None and v > cap:
            raise InvalidInput(
                f"At most {cap} clips can be generated per video (asked for {v}).",
                code="TOO_MANY_CLIPS",
            )
        return v

    @field_validator("budget_usd")
    @classmethod
    def _budget_cap(cls, v: float | None) -> float | None:
        cap = get_settings().job_budget_usd
        if v is not None and v > cap:
            raise InvalidInput(
                f"A video's budget can be at most ${cap:.2f} (asked for ${v:.2f}).",
                code="BAD_BUDGET",
            )
        return v


def _timing(ctx: Any, audio: Any, song: Any, progress: Any) -> dict[str, Any]:
    """The analyze kind's analysis (its cache, its stage) plus the video's timing."""
    sha256 = song.sha256 or hashlib.sha256(song.path.read_bytes()).hexdigest()
    key = analysis_cache_key(sha256, ctx.settings)
    (analysis,) = analyses_of(ctx, [song], progress, sha256s=[sha256])
    timing = ctx.cache_get("video_timing", f"{key}:{BEATS_VERSION}")
    if timing is None:
        timing = video_timing(audio, analysis)
        ctx.cache_put("video_timing", f"{key}:{BEATS_VERSION}", timing)
    return timing


# The estimate's CPU stages: the analysis is a stage function of its own, the composition runs
# in the pipeline's own process (which reserves 4 cores in production).
_COMPUTE_STAGES: dict[str, Any] = {"audio_analysis": audio_analysis}


def run(ctx: Any) -> dict[str, Any]:
    """The video pipeline (see the module docstring)."""
    # The stages' modules (plan models, clips, composition) load here, not with the registry
    # of kinds that every command builds.
    from functions.pipelines import video_stages as stages
    from functions.video.compose import Segment, compose_video, probe_video
    from functions.video.planner import make_plan

    video = stages.VideoRun(ctx)
    p = video.p
    song = ctx.inputs[0]
    fmt = sniff_format(song.path)
    if fmt not in SONG_FORMATS:
        raise InvalidAudio(
            f"Music videos are made from mp3, wav or flac songs; '{song.filename}' is "
            f"{fmt or 'not a recognised audio format'}.",
            code="UNSUPPORTED_FORMAT",
        )
    audio = load_audio(song.path)
    duration_s = audio.duration_s

    estimate = estimate_video(
        duration_s,
        shots=video.max_shots,
        references=4,
        transcribe=video.use_openai,
        plan_with_llm=video.use_openai,
        replicate=video.use_replicate,
        compute_usd=lambda stage, wall_s: ctx.compute_price(
            _COMPUTE_STAGES.get(stage, stage), wall_s, cores=4.0, memory_gib=4.0
        ),
    )
    budget_usd = ctx.budget_usd if ctx.budget_usd is not None else ctx.settings.job_budget_usd
    ctx.message(
        f"Estimated cost ${estimate.total_usd:.2f} (budget ${budget_usd:.2f})",
        estimate=estimate.to_dict(),
    )
    if estimate.total_usd > budget_usd:
        raise BudgetExceeded(
            f"This video is estimated at ${estimate.total_usd:.2f}, more than its budget of "
            f"${budget_usd:.2f}.",
            details={"estimate": estimate.to_dict()},
        )

    with ctx.stage("audio_analysis", engine="soundstage-dsp") as st:
        started = time.monotonic()
        timing = _timing(ctx, audio, song, st.progress)
        st.engine = stages.analysis_engine(timing)
        ctx.compute_cost(audio_analysis, time.monotonic() - started, detail="audio_analysis")

    video.check_deadline("lyrics")
    with ctx.stage("lyrics", engine="openai" if video.use_openai else "none") as st:
        lyrics = stages.lyrics(video, song.path, duration_s)
        st.engine = lyrics.engine if lyrics.status != "skipped" else "none"

    video.check_deadline("scene planning")
    with ctx.stage("scene_planning", engine="openai" if video.use_openai else "rule-based") as st:
        if video.use_openai:
            prompt_chars = len(p.prompt) + 80 * len(timing["slots"]) + len(lyrics.text) + 6000
            ctx.ensure_budget(
                prices.worst_case_llm_usd(prompt_chars) * providers.PLANNER.attempts,
                "planning the scenes",
            )
        outcome = make_plan(
            p.prompt,
            timing,
            lyrics,
            video.max_shots,
            use_llm=video.use_openai,
            api_key=video.settings.openai_api_key,
            model=video.settings.openai_plan_model,
        )
        for u in outcome.usage:
            ctx.cost(
                "openai",
                u["input_tokens"] + u["output_tokens"],
                prices.llm_usd(u["input_tokens"], u["output_tokens"], outcome.model),
                unit="tokens",
                detail=f"openai:{outcome.model} plan",
            )
        if outcome.fallback_reason:
            ctx.message(
                f"Scene plan by the rule-based planner: {outcome.fallback_reason}",
                stage="scene_planning",
            )
        st.engine = outcome.engine
    plan = outcome.plan

    video.check_deadline("reference generation")
    with ctx.stage(
        "reference_generation", engine="replicate" if video.use_replicate else "procedural"
    ) as st:
        refs = stages.make_references(video, plan, st)

    video.check_deadline("video generation")
    with ctx.stage(
        "video_generation", engine="replicate" if video.use_replicate else "procedural"
    ) as st:
        plan, clip_paths, clip_report = stages.make_clips(
            video, plan, refs, timing["tempo_bpm"], st
        )
        clip_names = []
        for shot_id, path in clip_paths.items():
            ctx.output(f"clip_{shot_id}", path, bucket="video-clips", content_type="video/mp4")
            clip_names.append(f"clip_{shot_id}")

    video.check_deadline("composition")
    with ctx.stage("composition", engine="ffmpeg") as st:
        started = time.monotonic()
        durations = {sid: probe_video(path).duration_s for sid, path in clip_paths.items()}
        segments = [
            Segment(
                clip_paths[s.shot_id],
                durations[s.shot_id],
                s.start_s,
                s.end_s,
                s.variant,
                s.transition_in,
            )
            for s in plan.slots
        ]
        out = ctx.workdir / "music_video.mp4"
        report = compose_video(
            segments,
            song.path,
            out,
            audio_duration_s=duration_s,
            crossfade_s=p.crossfade_s,
            preset=p.video_preset,
        )
        st.engine = f"ffmpeg libx264 {p.video_preset}"
        ctx.compute_cost("composition", time.monotonic() - started, cores=4.0, memory_gib=4.0)

    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    filename = f"music_video_{stamp}.mp4"
    ctx.output(
        "video",
        out,
        bucket="video-outputs",
        filename=filename,
        content_type="video/mp4",
        meta={
            "duration_s": report.info.duration_s,
            "width": report.info.width,
            "height": report.info.height,
            "fps": report.info.fps,
        },
    )
    # Clips only serve the composition: gone once it succeeded (kept 7 days when a job fails).
    discard = getattr(ctx, "discard_outputs", None)
    deleted = list(discard(clip_names)) if callable(discard) else []

    reuse = plan.reuse_summary()
    return {
        "video": {
            "filename": filename,
            "duration_s": report.info.duration_s,
            "width": report.info.width,
            "height": report.info.height,
            "fps": report.info.fps,
            "size_bytes": out.stat().st_size,
            "compose_attempts": report.attempts,
        },
        "engines": stages.stage_engines(timing, lyrics, outcome, refs, clip_report),
        "analysis": {k: timing[k] for k in ("tempo_bpm", "beat_confidence", "method", "duration_s")}
        | {
            "sections": timing["sections"],
            "beats": len(timing["beats_s"]),
            "accents": len(timing["accents_s"]),
        },
        "lyrics": lyrics.to_dict(max_words=200),
        "plan": plan.summary() | {"fallback_reason": outcome.fallback_reason},
        "slots": [s.model_dump() for s in plan.slots],
        "slot_count": reuse["slots"],
        "shots_generated": len(clip_paths),
        "shots_reused": reuse["shots_reused"],
        "cut_times_s": report.cut_times_s,
        "clips": {"results": clip_report, "deleted_after_composition": deleted},
        "cost": {
            "estimate": estimate.to_dict(),
            "total_usd": round(ctx.total_cost_usd, 4),
            "budget_usd": budget_usd,
        },
    }


def _estimate_s(params: BaseModel, files: list[dict]) -> float:
    duration = input_durations_s(files)[0]
    settings = get_settings()
    paid = getattr(params, "engines", "auto") == "auto" and bool(settings.replicate_api_token)
    # Measured locally: ~1.2x the song on 2 cores; with Replicate, clip generation dominates.
    return 60.0 + duration * 1.2 + (120.0 if paid else 0.0)


def _estimate_cost(params: BaseModel, files: list[dict]) -> float:
    settings = get_settings()
    duration = input_durations_s(files)[0]
    auto = getattr(params, "engines", "auto") == "auto"
    return estimate_video(
        duration,
        shots=getattr(params, "max_generated_clips", None) or settings.max_generated_clips,
        references=4,
        transcribe=auto and bool(settings.openai_api_key),
        plan_with_llm=auto and bool(settings.openai_api_key),
        replicate=auto and bool(settings.replicate_api_token),
        compute_usd=lambda stage, wall_s: prices.deployed_compute_usd(
            settings, wall_s, *STAGE_RESERVATION.get(stage, STAGE_RESERVATION["pipeline"])
        ),
    ).total_usd


def summarize(r: dict, inputs: list[str], saved: list) -> str:
    """The terminal summary of a music video: cuts, shots, engines, cost (rich markup)."""
    video = r.get("video", {})
    engines = r.get("engines") or {}
    cost = r.get("cost", {})
    lyrics = r.get("lyrics") or {}
    stages = KIND.stage_names()  # in run order (the result's keys come back sorted)
    return "\n".join(
        [
            f"[bold]{saved[0] if saved else ''}[/bold]  {video.get('width')}x{video.get('height')} "
            f"{video.get('fps', 0):.0f} fps, {video.get('duration_s', 0):.1f} s",
            f"  {r.get('slot_count')} slots, {len(r.get('cut_times_s') or [])} cuts on the beat; "
            f"{r.get('shots_generated')} shots generated, {r.get('shots_reused')} reused",
            f'  "{(r.get("plan") or {}).get("title", "")}"; lyrics {lyrics.get("status", "?")}'
            + (f": {lyrics['reason']}" if lyrics.get("reason") else ""),
            *(f"  {stage:<22} {engines[stage]}" for stage in stages if stage in engines),
            f"  cost ${cost.get('total_usd', 0):.2f} of a ${cost.get('budget_usd', 0):.2f} budget",
        ]
    )


KIND = JobKind(
    name="video",
    params=VideoParams,
    stages=[
        ("audio_analysis", 0.08),
        ("lyrics", 0.05),
        ("scene_planning", 0.05),
        ("reference_generation", 0.1),
        ("video_generation", 0.4),
        ("composition", 0.32),
    ],
    run=run,
    description="A beat-synced 1080p music video from a song and a prompt.",
    min_files=1,
    max_files=1,
    estimate_s=_estimate_s,
    estimate_cost_usd=_estimate_cost,
    max_file_mb=get_settings().video_max_upload_mb,
    input_formats=SONG_FORMATS,
    extra={"primary_output": "video"},  # what the completed event's download URL is for
    main_output="video",
    summarize=summarize,
)
