"""The ``master`` job kind: a preset (``streaming`` -14, ``cd`` -9, ``club`` -8 LUFS) or a custom
target; tonal balance, glue compression, gain and a true-peak limiter (``functions.master``).

Stages ``analyzing`` (the input's loudness report) and ``mastering``. The result carries the
loudness report before and after: integrated LUFS, loudness range, true peak (4x oversampled)
and sample peak. The after report is measured on the file as written: a lossy encoder can add
inter-sample peaks, and if mp3 encoding pushes the true peak over the ceiling the master is
trimmed by the excess and encoded again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.audio_io import load_audio
from functions.loudness import loudness_report
from functions.master import CEILING_DBTP, PRESETS, TARGET_RANGE_LUFS, master_to_target
from functions.pipelines.audio_outputs import keep_output, write_under_ceiling
from functions.pipelines.estimates import input_durations_s
from shared.registry import JobKind, saved_lines


class MasterParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: Literal["streaming", "cd", "club"] = "streaming"
    target_lufs: float | None = Field(
        None,
        ge=TARGET_RANGE_LUFS[0],
        le=TARGET_RANGE_LUFS[1],
        description="custom loudness target; the preset then only sets the compression character",
    )
    output_format: Literal["wav", "flac", "mp3"] = "wav"
    bit_depth: Literal[16, 24] = 24


def run(ctx) -> dict:
    p: MasterParams = ctx.params
    track = ctx.inputs[0]
    target = p.target_lufs if p.target_lufs is not None else PRESETS[p.preset].target_lufs
    with ctx.stage("analyzing", engine="pyloudnorm") as st:
        audio = load_audio(track.path)
        before = loudness_report(audio)
        st.progress(
            1.0, f"{before['integrated_lufs']} LUFS, true peak {before['true_peak_dbtp']} dBTP"
        )
    with ctx.stage("mastering", engine="pedalboard") as st:
        started = time.monotonic()
        mastered = master_to_target(audio, target, preset=p.preset)
        st.progress(0.7, "mastered")
        dest = (
            ctx.workdir
            / f"{Path(track.filename).stem or 'track'}-master-{p.preset}.{p.output_format}"
        )
        written, after, trim_db = write_under_ceiling(
            dest, mastered.audio, p.output_format, bit_depth=p.bit_depth, ceiling_dbtp=CEILING_DBTP
        )
        keep_output(ctx, "master", dest, filename=dest.name, meta={"target_lufs": target, **after})
        ctx.compute_cost("mastering", time.monotonic() - started, detail="mastering (pedalboard)")
    return {
        "preset": p.preset,
        "target_lufs": target,
        "ceiling_dbtp": CEILING_DBTP,
        "before": before,
        "after": after,
        "loudness_error_lu": round(after["integrated_lufs"] - target, 2),
        "chain": {**mastered.chain, "encoder_trim_db": trim_db},
        "format": p.output_format,
        "bit_depth": p.bit_depth if p.output_format != "mp3" else None,
        "sample_rate": written.sample_rate,
        "duration_s": round(written.duration_s, 3),
    }


def _estimate_s(params: MasterParams, files: list[dict]) -> float:
    duration_s = sum(input_durations_s(files))
    return 2.0 + 0.05 * duration_s


def summarize(r: dict, inputs: list[str], saved: list) -> str:
    """The terminal summary of a master: loudness before and after (rich markup)."""
    b, a = r.get("before", {}), r.get("after", {})
    wrote = saved_lines(saved)
    return (
        f"target {r.get('target_lufs')} LUFS\n"
        f"  before  {b.get('integrated_lufs')} LUFS, LRA {b.get('lra_lu')} LU, "
        f"true peak {b.get('true_peak_dbtp')} dBTP\n"
        f"  after   {a.get('integrated_lufs')} LUFS, LRA {a.get('lra_lu')} LU, "
        f"true peak {a.get('true_peak_dbtp')} dBTP\n{wrote}"
    )


KIND = JobKind(
    name="master",
    params=MasterParams,
    stages=[("analyzing", 0.3), ("mastering", 0.7)],
    run=run,
    description="Master one track to a loudness target with a -1 dBTP true-peak ceiling.",
    min_files=1,
    max_files=1,
    estimate_s=_estimate_s,
    main_output="master",
    summarize=summarize,
)
