"""The ``convert`` job kind: one track to wav (16/24-bit), flac, mp3 or ogg, at a chosen sample
rate and channel count, with the metadata of both files in the result. One stage, ``converting``,
run with ffmpeg in-process (streaming: memory does not grow with the file)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.convert import check_conversion, convert_file
from functions.pipelines.audio_outputs import keep_output
from functions.pipelines.estimates import input_durations_s
from shared.registry import CliFlag, JobKind, saved_lines


class ConvertParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_format: Annotated[Literal["wav", "flac", "mp3", "ogg"], CliFlag("to")] = "mp3"
    bit_depth: Literal[16, 24] = Field(16, description="wav and flac")
    bitrate_kbps: Annotated[int | None, CliFlag("bitrate")] = Field(
        None, description="mp3 (32-320, default 320) or ogg (45-500)"
    )
    sample_rate_hz: Annotated[int | None, CliFlag("sample-rate")] = Field(
        None, description="default: the input's"
    )
    channels: Literal[1, 2] | None = Field(
        None, description="default: the input's (stereo at most)"
    )

    @model_validator(mode="after")
    def _combination(self) -> ConvertParams:
        check_conversion(
            self.output_format,
            bit_depth=self.bit_depth,
            bitrate_kbps=self.bitrate_kbps,
            sample_rate_hz=self.sample_rate_hz,
            channels=self.channels,
        )
        return self


def run(ctx) -> dict:
    p: ConvertParams = ctx.params
    track = ctx.inputs[0]
    name = Path(track.filename).stem or "track"
    dest = ctx.workdir / f"{name}.{p.output_format}"
    with ctx.stage("converting", engine="ffmpeg") as st:
        started = time.monotonic()
        meta = convert_file(
            track.path,
            dest,
            output_format=p.output_format,
            bit_depth=p.bit_depth,
            bitrate_kbps=p.bitrate_kbps,
            sample_rate_hz=p.sample_rate_hz,
            channels=p.channels,
        )
        wall_s = time.monotonic() - started
        ctx.compute_cost(
            "converting", wall_s, cores=1.0, memory_gib=1.0, detail="conversion (ffmpeg)"
        )
        st.progress(0.9, "stored")
        keep_output(ctx, "converted", dest, filename=dest.name, meta=meta["output"])
    return {**meta, "conversion_s": round(wall_s, 3)}


def _estimate_s(params: ConvertParams, files: list[dict]) -> float:
    duration_s = sum(input_durations_s(files))
    return 1.0 + 0.02 * duration_s


def summarize(r: dict, inputs: list[str], saved: list) -> str:
    """The terminal summary of a conversion (rich markup)."""
    o = r.get("output", {})
    wrote = saved_lines(saved)
    return (
        f"{o.get('format')} {o.get('sample_rate')} Hz, {o.get('channels')} ch, "
        f"{o.get('duration_s')} s, {o.get('bitrate_kbps')} kbps\n{wrote}"
    )


KIND = JobKind(
    name="convert",
    params=ConvertParams,
    stages=[("converting", 1.0)],
    run=run,
    description="Convert one track to wav, flac, mp3 or ogg; change its sample rate or channels.",
    min_files=1,
    max_files=1,
    estimate_s=_estimate_s,
    summarize=summarize,
)
