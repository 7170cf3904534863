"""The ``blend`` job kind: two tracks blended through EnCodec's latent space.

Stages: ``converting`` (each track's ``start_s``-``end_s`` segment cut and converted to 24 kHz
mono by ffmpeg; the converted file is deleted as soon as it is read), ``blending`` (EnCodec 24
kHz at 6 kbps, the latent blend, the optional trained cascade, decoding; or the spectral morph
where no codec weights are installed, reported as ``engine: "spectral"``) and ``writing`` (a
16-bit PCM WAV at 24 kHz, the only file kept).
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.audio_io import load_audio
from functions.blend import SAMPLE_RATE, blend_stage
from functions.ffmpeg_command import ffmpeg_command
from shared.errors import InvalidAudio, InvalidInput
from shared.registry import CliFlag, JobKind

MAX_SEGMENT_S = 30.0
MIN_SEGMENT_S = 1.0
SILENCE_DBFS = -60.0


class BlendParams(BaseModel):
    """Which segment of both tracks, and how to mix them: a fixed ``weight`` of track B
    (0 = all A, 1 = all B) or a ``crossfade`` from A to B over the segment."""

    model_config = ConfigDict(extra="forbid")

    start_s: Annotated[float, CliFlag("start")] = Field(0.0, ge=0.0)
    end_s: Annotated[float, CliFlag("end")] = 16.0
    weight: float = Field(0.5, ge=0.0, le=1.0)
    mode: Annotated[Literal["weight", "crossfade"], CliFlag("crossfade", switch="crossfade")] = (
        "weight"
    )
    engine: Literal["auto", "encodec", "spectral"] | None = None

    @model_validator(mode="after")
    def segment_in_range(self) -> BlendParams:
        length = self.end_s - self.start_s
        if not MIN_SEGMENT_S <= length <= MAX_SEGMENT_S:
            raise InvalidInput(
                f"The segment must be {MIN_SEGMENT_S:g}-{MAX_SEGMENT_S:g} s long (end_s - start_s); got {length:g} s.",
                code="BAD_SEGMENT",
                status=422,
            )
        return self


def convert_segment(
    path: Path, start_s: float, end_s: float, workdir: Path, name: str
) -> np.ndarray:
    """Cut ``start_s``-``end_s`` of ``path`` to a 24 kHz mono WAV with ffmpeg, read it and
    delete it. Raises ``TOO_SHORT`` when the track ends before the segment has a second of
    audio and ``SILENT_AUDIO`` when the segment is silent."""
    tmp = workdir / f"{name}-24k.wav"
    cmd = ffmpeg_command(
        "-ss", f"{start_s:.3f}", "-t", f"{end_s - start_s:.3f}",
        "-i", path, "-ac", "1", "-ar", SAMPLE_RATE, "-c:a", "pcm_f32le", tmp,
    )  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size <= 44:
            samples = np.zeros(0, np.float32)
        else:
            samples = load_audio(tmp, mono=True).samples[0]
    finally:
        tmp.unlink(missing_ok=True)  # the converted copy is only an intermediate
    if len(samples) < MIN_SEGMENT_S * SAMPLE_RATE:
        raise InvalidAudio(
            f"'{name}' has less than {MIN_SEGMENT_S:g} s of audio after {start_s:g} s; choose an earlier start.",
            code="TOO_SHORT",
        )
    if float(np.max(np.abs(samples))) <= 10 ** (SILENCE_DBFS / 20):
        raise InvalidAudio(f"The chosen segment of '{name}' is silent.", code="SILENT_AUDIO")
    return samples


def _wav(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def run(ctx) -> dict:
    """Convert both segments, blend them, write the WAV (see module docstring)."""
    p: BlendParams = ctx.params
    workdir = Path(ctx.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with ctx.stage("converting", engine="ffmpeg") as st:
        tracks = []
        for i, f in enumerate(ctx.inputs[:2]):
            tracks.append(
                convert_segment(
                    f.path, p.start_s, p.end_s, workdir, f"track {i + 1} ({f.filename})"
                )
            )
            st.progress((i + 1) / 2)
        n = min(len(t) for t in tracks)
        # Equal loudness in: otherwise "weight 0.5" is whatever the louder track makes it.
        rms = [float(np.sqrt(np.mean(t[:n] ** 2))) for t in tracks]
        target = min(rms)
        a, b = (t[:n] * (target / r) for t, r in zip(tracks, rms, strict=True))
    settings = ctx.settings
    with ctx.stage("blending", engine=p.engine or settings.blend_engine) as st:
        out = ctx.call(
            blend_stage,
            a_wav=_wav(a),
            b_wav=_wav(b),
            mode=p.mode,
            weight=p.weight,
            engine=p.engine or settings.blend_engine,
            checkpoint=settings.blend_checkpoint,
            weights_dir=str(settings.weights_dir),
        )
        st.engine = out["engine"]
        if out["engine"] == "spectral":
            ctx.message(
                "No EnCodec weights are installed here; the blend is a spectral-envelope morph."
            )
        st.progress(1.0)
    with ctx.stage("writing", engine="soundfile") as st:
        path = workdir / "blend.wav"
        path.write_bytes(out["wav"])
        info = sf.info(str(path))
        ctx.output("blend", path, content_type="audio/wav", filename="blend.wav")
        path.unlink(missing_ok=True)
        st.progress(1.0)
    return {
        "engine": out["engine"],
        "format": "wav",
        "subtype": info.subtype,
        "sample_rate": int(info.samplerate),
        "channels": int(info.channels),
        "duration_s": round(float(info.duration), 3),
        "bitrate_kbps": int(info.samplerate) * 16 * int(info.channels) // 1000,
        "start_s": p.start_s,
        "end_s": p.end_s,
        "mode": p.mode,
        "weight": p.weight if p.mode == "weight" else None,
        "codec": {"name": "EnCodec 24 kHz", "bandwidth_kbps": 6.0}
        if out["engine"].startswith("encodec")
        else None,
    }


def summarize(r: dict, inputs: list[str], saved: list) -> str:
    """The terminal summary of a blend (rich markup)."""
    how = "crossfade A->B" if r.get("mode") == "crossfade" else f"weight {r.get('weight')} of B"
    return (
        f"[bold]{', '.join(str(p) for p in saved)}[/bold]  {r.get('duration_s')} s, "
        f"{r.get('sample_rate')} Hz {r.get('subtype')}\n  engine     {r.get('engine')} "
        f"({how}, {r.get('start_s'):g}-{r.get('end_s'):g} s)"
    )


KIND = JobKind(
    name="blend",
    params=BlendParams,
    stages=[("converting", 0.15), ("blending", 0.75), ("writing", 0.1)],
    run=run,
    description="Blend two tracks through EnCodec's latent space (24 kHz, 16 s segments).",
    min_files=2,
    max_files=2,
    estimate_s=lambda p, files: 5.0 + 0.5 * (p.end_s - p.start_s),
    main_output="blend",
    summarize=summarize,
)
