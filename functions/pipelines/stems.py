"""The ``stems`` job kind: one track split into vocals / drums / bass / other (or two stems).

One stage, ``separating_stems``. The compute is ``stems_stage`` (bytes in, bytes out), run where
the executor puts it (in production a GPU class that keeps Demucs loaded), with Demucs' progress
flowing into the job's events either way. Engines: Demucs when its weights are present, else the DSP separator, named as
``engine: "dsp"`` in the stage row and the result.

Results are cached by the input's content hash + the params + the engine and model: a second
job on the same file attaches the first job's stored stems (``ctx.reuse_output``) instead of
separating again.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from functions.pipelines.audio_outputs import keep_output, reuse_outputs, stored_record
from functions.pipelines.estimates import input_durations_s
from functions.stems import (
    FOUR_STEMS,
    SIX_STEM_MODEL,
    check_stems,
    check_stems_for,
    melody_definition,
    model_sources,
    resolve_engine,
    separate_track,
)
from shared.config import get_settings
from shared.executors import runs_stages_remotely
from shared.registry import CliFlag, JobKind, saved_lines

LOW_MEMORY_BLOCK_S = 30.0  # block length after GPU_OUT_OF_MEMORY (the default is 150 s)
CACHE_NAMESPACE = "stems"
CACHE_VERSION = "1"  # bump when the same input + params would give different stems
StemName = Literal["vocals", "drums", "bass", "other", "guitar", "piano", "melody", "no_vocals"]
DemucsModel = Literal["htdemucs", "htdemucs_ft", "htdemucs_6s"]

# What each model (and the DSP fallback) separates and what its "melody" stem is: served in
# GET /api/v1/kinds (the kind's ``extra``) and the README's stems table.
MODELS_OFFERED = {
    "htdemucs": "4 sources: vocals, drums, bass, other (the default)",
    "htdemucs_ft": "4 sources, fine-tuned per source: slower, a little cleaner",
    SIX_STEM_MODEL: "6 sources: vocals, drums, bass, guitar, piano, other",
}
MELODY = {
    "htdemucs": "other",
    "htdemucs_ft": "other",
    SIX_STEM_MODEL: "guitar + piano + other",
    "dsp": "other (the harmonic content that is neither voice nor bass)",
}


class StemsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stems: list[StemName] = Field(
        default_factory=lambda: list(FOUR_STEMS),
        description="Which stems: any of vocals, drums, bass, other, melody (every pitched "
        "source but voice and bass: 'other' for 4-source models, guitar + piano + other for "
        'htdemucs_6s), guitar and piano (htdemucs_6s only); ["vocals", "no_vocals"] for two.',
    )
    output_format: Annotated[Literal["wav", "flac", "mp3"], CliFlag("format")] = "wav"
    bit_depth: Literal[16, 24] = Field(16, description="wav/flac only; mp3 is 320 kbps")
    model: DemucsModel | None = Field(
        None,
        description="Demucs model; htdemucs_ft is the slower, higher-quality option, "
        "htdemucs_6s adds guitar and piano",
    )

    @field_validator("stems")
    @classmethod
    def _stems(cls, v: list[str]) -> list[str]:
        return check_stems(v)

    @model_validator(mode="after")
    def _available(self) -> StemsParams:
        # Refuse at submit time what the engine this server would run cannot give.
        engine, model = configured_engine(self.model)
        who = "The DSP separator (no Demucs weights here)" if engine == "dsp" else model
        check_stems_for(self.stems, model_sources(engine, model), who)
        return self


def configured_engine(model: str | None = None, settings: Any = None) -> tuple[str, str]:
    """``(engine, model)`` this server's settings (``settings``, else the process's) resolve to
    (``auto``: Demucs where its weights are)."""
    s = settings or get_settings()
    return resolve_engine(s.stems_engine, model or s.demucs_model, s.weights_dir)


def stems_stage(**kw) -> dict:
    """The stage: see ``functions.stems.separate_track`` (a caller that holds a loaded
    separator, such as a GPU container, passes it as ``separator``)."""
    return separate_track(**kw)


def cache_key(sha256: str, params: StemsParams, engine: str, model: str) -> str:
    settings = json.dumps(
        {
            "stems": params.stems,
            "format": params.output_format,
            "bits": params.bit_depth,
            "engine": engine,
            "model": model if engine == "demucs" else None,
            "v": CACHE_VERSION,
        },
        sort_keys=True,
    )
    return f"{sha256}:{hashlib.sha256(settings.encode()).hexdigest()[:16]}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(ctx) -> dict:
    """Separate ``ctx.inputs[0]``; returns the engine, the stems written and their format."""
    p: StemsParams = ctx.params
    track = ctx.inputs[0]
    engine, model = configured_engine(p.model, ctx.settings)
    key = cache_key(track.sha256 or _sha256(track.path), p, engine, model)
    cached = ctx.cache_get(CACHE_NAMESPACE, key)
    if cached is not None:
        attached = reuse_outputs(ctx, cached["outputs"])
        if attached is not None:
            with ctx.stage("separating_stems", engine=cached["result"]["engine"]) as st:
                ctx.message("These stems were made before from the same file; reusing them.")
                st.progress(1.0, "cached")
            return {**cached["result"], "cached": True}
    stem_label = Path(track.filename).stem or "track"
    # A retry after the GPU ran out of memory separates in shorter blocks (smaller tensors per
    # model call); the stems are the same up to the crossfades at the extra seams.
    low_memory = getattr(ctx, "previous_failure", None) == "GPU_OUT_OF_MEMORY"
    with ctx.stage("separating_stems", engine=engine) as st:
        if low_memory:
            ctx.message(
                f"The GPU ran out of memory; separating in {LOW_MEMORY_BLOCK_S:g} s blocks."
            )
        started = time.monotonic()
        out = ctx.call(
            stems_stage,
            audio=track.path.read_bytes(),
            filename=track.filename,
            stems=list(p.stems),
            output_format=p.output_format,
            bit_depth=p.bit_depth,
            engine=engine,
            model_name=model,
            weights_dir=str(ctx.settings.weights_dir),
            block_s=LOW_MEMORY_BLOCK_S if low_memory else None,
            progress=st.progress,
        )
        wall_s = time.monotonic() - started
        st.engine = out["engine"] if out["engine"] == "dsp" else f"demucs:{out['model']}"
        ctx.compute_cost(stems_stage, wall_s, detail=f"stem separation ({st.engine})")
        melody_sources = melody_definition(model_sources(out["engine"], out["model"]))
        folder = ctx.workdir / "stems"
        folder.mkdir(parents=True, exist_ok=True)
        stored, listing = [], []
        for name, data in out["stems"].items():
            path = folder / f"{name}.{out['format']}"
            path.write_bytes(data)
            meta = {"stem": name, "sample_rate": out["sample_rate"], "channels": out["channels"]}
            if name == "melody":
                meta["sum_of"] = melody_sources
            kept = keep_output(
                ctx,
                name,
                path,
                bucket="stems",
                filename=f"{stem_label}-{name}.{out['format']}",
                meta=meta,
            )
            stored.append(stored_record(kept))
            listing.append({"name": name, "filename": kept.filename, "size_bytes": kept.size_bytes})
    result = {
        "engine": out["engine"],
        "model": out["model"],
        "stems": listing,
        "format": out["format"],
        "bit_depth": p.bit_depth if out["format"] != "mp3" else None,
        "bitrate_kbps": 320 if out["format"] == "mp3" else None,
        "sample_rate": out["sample_rate"],
        "channels": out["channels"],
        "duration_s": out["duration_s"],
        "separation_s": round(wall_s, 2),
        "blocks": out.get("blocks"),
    }
    if "melody" in p.stems:
        result["melody_is"] = " + ".join(melody_sources)
    if out["engine"] == "dsp":
        result["note"] = "No Demucs weights on this machine: separated with the DSP fallback."
    ctx.cache_put(CACHE_NAMESPACE, key, {"outputs": stored, "result": result})
    return {**result, "cached": False}


def _estimate_s(params: StemsParams, files: list[dict]) -> float:
    duration_s = sum(input_durations_s(files))
    engine, _ = configured_engine(params.model)
    if runs_stages_remotely(get_settings()):
        return 20.0 + 0.05 * duration_s  # cold start, then a GPU at ~20x real time
    return 3.0 + (0.2 if engine == "dsp" else 1.0) * duration_s


def summarize(r: dict, inputs: list[str], saved: list) -> str:
    """The terminal summary of a separation (rich markup)."""
    engine = str(r.get("engine")) + (f" ({r['model']})" if r.get("model") else "")
    note = " [dim](from cache)[/dim]" if r.get("cached") else ""
    wrote = saved_lines(saved)
    return f"[bold]{len(saved)} stems[/bold] by {engine}{note}\n{wrote}"


KIND = JobKind(
    name="stems",
    params=StemsParams,
    stages=[("separating_stems", 1.0)],
    run=run,
    description="Split one track into vocals, drums, bass and other (or vocals / no vocals).",
    min_files=1,
    max_files=1,
    estimate_s=_estimate_s,
    extra={
        "models": MODELS_OFFERED,
        "melody": MELODY,
        "dsp_stems": ["vocals", "drums", "bass", "other", "melody", "no_vocals"],
    },
    summarize=summarize,
)
