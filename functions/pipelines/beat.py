"""The ``beat`` job kind: a generated beat in one of 14 genres at a tempo, key and mood.

Stages: ``generating`` (MusicGen on a GPU, or the procedural engine), ``mastering``
(-14 LUFS, peaks under -1 dBTP) and ``encoding`` (the track as mp3/wav/flac; the procedural
engine also writes its stems, a MIDI file and the notes as JSON, since it knows what it played).
The engine is chosen by ``engine`` / ``SOUNDSTAGE_MUSIC_ENGINE``; a fallback is named in the
result (``engine`` and ``engine_note``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field, model_validator

from functions.music.musicgen import build_prompt
from functions.music.procedural import SAMPLE_RATE
from functions.music.theory import parse_key
from functions.pipelines import music_request as common
from functions.pipelines.beat_engines import (
    TrackSpec,
    beat_engine,
    choose_engine,
    estimate_musicgen_gpu_s,
    estimate_musicgen_usd,
    make_track,
)
from shared.config import get_settings
from shared.registry import CliFlag, JobKind


class BeatParams(common.MusicParams):
    """What to generate. ``bpm``, ``key`` and ``mood`` default to the genre's own. Without
    ``genre``, a ``prompt`` is enough: MusicGen reads it as written; the procedural engine
    infers genre, mood and instruments from its words and reports them (``inferred``)."""

    duration_s: Annotated[float, CliFlag("duration")] = Field(
        30.0, validation_alias=AliasChoices("duration_s", "duration")
    )
    model: Literal["small", "medium"] | None = (
        None  # MusicGen size; default SOUNDSTAGE_MUSICGEN_MODEL
    )

    @model_validator(mode="after")
    def fill_from_genre(self) -> BeatParams:
        # genre and mood stay as the user wrote them: run() interprets them again and reports
        # how (a mood mapped to the nearest known one, a genre inferred from the prompt).
        choice = self.choice()
        self.bpm = choice.bpm
        self.key = self.key or choice.genre.default_key
        return self

    def choice(self) -> common.MusicChoice:
        return common.interpret(self.genre, self.mood, self.prompt, self.bpm, self.allow_any_bpm)


def _model(p: BeatParams, settings) -> str:
    """``small``/``medium``, or the deployment's default checkpoint."""
    return p.model or settings.musicgen_model


def run(ctx) -> dict:
    """Generate, master and encode one beat (see module docstring)."""
    p: BeatParams = ctx.params
    choice = p.choice()
    genre = choice.genre
    key = parse_key(p.key)
    seed = common.resolve_seed(p.seed)
    engine, note = choose_engine(p.engine, ctx.settings)
    # Prompt-only: MusicGen reads the words as written (it was trained on captions).
    prompt = build_prompt(genre, choice.mood, p.bpm, key, p.prompt) if p.genre else p.prompt
    spec = TrackSpec(
        genre=genre,
        bpm=p.bpm,
        key=key,
        mood=choice.mood,
        duration_s=p.duration_s,
        seed=seed,
        prompt=prompt,
        model=_model(p, ctx.settings),
    )
    files, loudness, made = make_track(
        ctx,
        beat_engine(engine, ctx),
        spec,
        fmt=p.format,
        file_stem=f"{genre.slug}-{round(p.bpm)}bpm-{key.short}".replace("#", "s"),
        keep_stems=p.stems,
        note=note,
    )
    result = {
        **files,
        # MusicGen given only a prompt follows the words, not a genre template.
        "genre": genre.name if (p.genre or engine == "procedural") else None,
        "bpm": p.bpm,
        "key": key.name,
        "mood": choice.mood,
        "seed": seed,
        "engine": engine,
        "loudness": loudness,
    }
    if engine == "procedural":
        result["inferred"] = choice.inferred
    elif choice.inferred["mood"]["how"] != "given" and p.mood:
        result["inferred"] = {"mood": choice.inferred["mood"]}
    if note:
        result["engine_note"] = note
    if made.beat is not None:
        result["sections"] = made.beat.notes_json()["sections"]
    result.update(made.extra)
    return result


def _estimate_s(params: BeatParams, files: list[dict]) -> float:
    settings = get_settings()
    engine, _ = choose_engine(params.engine, settings)
    if engine == "musicgen":
        return 20.0 + estimate_musicgen_gpu_s(_model(params, settings), params.duration_s)
    return 2.0 + 0.05 * params.duration_s


def _estimate_cost(params: BeatParams, files: list[dict]) -> float:
    settings = get_settings()
    engine, _ = choose_engine(params.engine, settings)
    if engine != "musicgen":
        return 0.0
    return estimate_musicgen_usd(_model(params, settings), params.duration_s, settings)


KIND = JobKind(
    name="beat",
    params=BeatParams,
    stages=[("generating", 0.75), ("mastering", 0.15), ("encoding", 0.1)],
    run=run,
    description="A beat in one of 14 genres at your tempo, key and mood (MusicGen or procedural).",
    min_files=0,
    max_files=0,
    estimate_s=_estimate_s,
    estimate_cost_usd=_estimate_cost,
    extra={"sample_rate": SAMPLE_RATE},
    main_output="track",
    summarize=common.summarize,
)
