"""The ``mix`` job kind: 2-N tracks or stems, each with gain, pan, mute and start offset, summed
through a mix profile (``balanced``, ``bass-heavy``, ``bright``, ``warm``; settings in
``functions.mix.MIX_PROFILES``) into one stereo file that never clips. One stage, ``mixing``."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.audio_io import load_audio, save_audio
from functions.loudness import loudness_report
from functions.mix import MIX_PROFILES, MixInput, mix_tracks
from functions.pipelines.audio_outputs import keep_output
from functions.pipelines.estimates import input_durations_s
from shared.errors import InvalidInput
from shared.registry import CliFlag, JobKind, saved_lines

MixProfileName = Literal["balanced", "bass-heavy", "bright", "warm"]


class TrackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gain_db: Annotated[float, CliFlag("gains")] = Field(0.0, ge=-60.0, le=24.0)
    pan: Annotated[float, CliFlag("pans")] = Field(
        0.0, ge=-1.0, le=1.0, description="-1 left, 0 centre, +1 right"
    )
    mute: bool = False
    offset_s: Annotated[float, CliFlag("offsets")] = Field(
        0.0, ge=0.0, le=600.0, description="start this many seconds in"
    )


class MixParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: MixProfileName = "balanced"
    tracks: Annotated[list[TrackSettings], CliFlag(per_file=True)] = Field(
        default_factory=list,
        description="one per uploaded file, in upload order; missing ones are defaults",
    )
    output_format: Literal["wav", "flac", "mp3"] = "wav"
    bit_depth: Literal[16, 24] = 24
    sample_rate_hz: Literal[44100, 48000] | None = None


def run(ctx) -> dict:
    p: MixParams = ctx.params
    if len(p.tracks) > len(ctx.inputs):
        raise InvalidInput(
            f"{len(p.tracks)} track settings were given for {len(ctx.inputs)} files; give one per file.",
            code="TRACK_SETTINGS_MISMATCH",
        )
    settings = p.tracks + [TrackSettings() for _ in range(len(ctx.inputs) - len(p.tracks))]
    with ctx.stage("mixing", engine="pedalboard") as st:
        started = time.monotonic()
        inputs = []
        for i, (inp, s) in enumerate(zip(ctx.inputs, settings, strict=True)):
            audio = load_audio(inp.path) if not s.mute else load_audio(inp.path, duration_s=1.0)
            inputs.append(MixInput(audio, s.gain_db, s.pan, s.mute, s.offset_s, name=inp.filename))
            st.progress(0.5 * (i + 1) / len(ctx.inputs), f"loaded {inp.filename}")
        mixed = mix_tracks(inputs, p.profile, sample_rate=p.sample_rate_hz)
        st.progress(0.8, "mixed")
        dest = ctx.workdir / f"mix-{p.profile}.{p.output_format}"
        save_audio(dest, mixed.audio, p.output_format, bit_depth=p.bit_depth)
        report = loudness_report(mixed.audio)
        keep_output(ctx, "mix", dest, filename=dest.name, meta={"profile": p.profile, **report})
        ctx.compute_cost("mixing", time.monotonic() - started, detail="mix (pedalboard)")
    return {
        "profile": p.profile,
        "profile_settings": asdict(MIX_PROFILES[p.profile]),
        "inputs": [
            {
                "filename": x.name,
                "gain_db": x.gain_db,
                "pan": x.pan,
                "mute": x.mute,
                "offset_s": x.offset_s,
                "duration_s": round(x.audio.duration_s, 3) if not x.mute else None,
            }
            for x in inputs
        ],
        "bus_gain_db": mixed.bus_gain_db,
        "safety_gain_db": mixed.safety_gain_db,
        "loudness": report,
        "sample_rate": mixed.audio.sample_rate,
        "duration_s": round(mixed.audio.duration_s, 3),
        "format": Path(dest).suffix.lstrip("."),
    }


def _estimate_s(params: MixParams, files: list[dict]) -> float:
    duration_s = sum(input_durations_s(files))
    return 2.0 + 0.03 * duration_s


def summarize(r: dict, inputs: list[str], saved: list) -> str:
    """The terminal summary of a mix (rich markup)."""
    loud = r.get("loudness", {})
    wrote = saved_lines(saved)
    return (
        f"mix ({r.get('profile')}): {loud.get('integrated_lufs')} LUFS, true peak "
        f"{loud.get('true_peak_dbtp')} dBTP\n{wrote}"
    )


KIND = JobKind(
    name="mix",
    params=MixParams,
    stages=[("mixing", 1.0)],
    run=run,
    description="Mix 2-N tracks or stems with gain, pan and mute through a mix profile.",
    min_files=2,
    max_files=8,
    estimate_s=_estimate_s,
    main_output="mix",
    summarize=summarize,
)
