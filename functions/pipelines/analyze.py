"""The ``analyze`` job kind: tempo, beats, downbeats, key, sections, loudness of one track.

One stage, ``analyzing``. The result is cached by the input's content hash,
``ANALYSIS_VERSION`` and the beat engine (``cache_key``), so the same file is analysed once
(the video and mashup kinds share the cache). The compute is ``analysis_stage``: bytes in, JSON
out, so on Modal it runs as the ``analyze_audio_stage`` function (on the Beat This! image, its
checkpoint in the models volume) and locally in-process.

Beat engine (``SOUNDSTAGE_BEAT_ENGINE``): ``auto`` uses Beat This! when its checkpoint is in the
weights folder and the DSP tracker otherwise; ``beat_this`` insists on it; ``dsp`` never loads
it. The result's ``engine`` names the one that placed the beats.
"""

from __future__ import annotations

import functools
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from functions.analysis import ANALYSIS_VERSION, ENGINE, analyze_audio
from functions.audio_io import DEFAULT_TRACK_DURATION_S, load_audio, probe
from shared.config import get_settings
from shared.errors import InvalidInput, StageFailed
from shared.registry import JobKind, remote_stage

CACHE_NAMESPACE = "analysis"
# Measured wall time: about 10 ms per second of audio on two cores, most of it loudness.
_SECONDS_PER_AUDIO_SECOND = 0.012
_OVERHEAD_S = 2.0
# What modal_app.py reserves for ``analyze_audio_stage``.
_STAGE_CORES = 2.0
_STAGE_MEMORY_GIB = 4.0


class AnalyzeParams(BaseModel):
    """No options: the analysis is the same for everyone, which is what makes it cacheable."""

    model_config = ConfigDict(extra="forbid")


@functools.cache
def _load_tracker(path: Path) -> Any:
    from functions.beat_this_engine import BeatThisTracker

    return BeatThisTracker.from_checkpoint(path)


def beat_tracker() -> Any | None:
    """The configured neural beat tracker, loaded once per process, or None for the DSP one.

    Raises StageFailed when ``beat_engine`` is ``beat_this`` and its checkpoint or packages
    are missing (production must not silently fall back)."""
    from functions.beat_this_engine import find_beat_this_checkpoint

    s = get_settings()
    if s.beat_engine == "dsp":
        return None
    path = find_beat_this_checkpoint(s.weights_dir)
    try:
        import beat_this.model.beat_tracker  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if s.beat_engine == "beat_this":
            raise StageFailed(
                "The Beat This! engine is configured but its checkpoint or package is missing.",
                code="ENGINE_UNAVAILABLE",
            )
        return None
    return _load_tracker(path)


def engine_name() -> str:
    """The beat engine this process would use (part of the cache key)."""
    s = get_settings()
    if s.beat_engine == "dsp":
        return ENGINE
    from functions.beat_this_engine import ENGINE_NAME, find_beat_this_checkpoint

    if s.beat_engine == "beat_this" or find_beat_this_checkpoint(s.weights_dir):
        return ENGINE_NAME
    return ENGINE


def cache_key(sha256: str | None) -> str | None:
    """The analysis cache key of a file's content (None when the hash is unknown)."""
    return f"{sha256}:{ANALYSIS_VERSION}:{engine_name()}" if sha256 else None


@remote_stage("analyze_audio_stage")
def analysis_stage(audio_bytes: bytes, filename: str = "track") -> dict:
    """Decode ``audio_bytes`` (any supported format, recognised by content) and analyse it.

    Raises InvalidAudio for undecodable, silent or too-short audio.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (Path(filename).name or "track")
        path.write_bytes(audio_bytes)
        audio = load_audio(path)
    return analyze_audio(audio, beat_tracker=beat_tracker())


def _check_duration(path: Path, filename: str) -> None:
    limit_s = get_settings().max_duration_s
    duration_s = float(probe(path).get("duration_s") or 0.0)
    if duration_s > limit_s:
        raise InvalidInput(
            f"'{filename}' is {duration_s / 60:.1f} minutes long; the limit is "
            f"{limit_s / 60:.0f} minutes.",
            code="TOO_LONG",
        )


def _record_cost(ctx, wall_s: float) -> None:
    """Compute seconds: priced at the Modal function's reservation on Modal, free locally."""
    from functions.video.pricing import modal_compute_usd

    on_modal = get_settings().runner == "modal"
    usd = modal_compute_usd(wall_s, _STAGE_CORES, _STAGE_MEMORY_GIB) if on_modal else 0.0
    ctx.cost(
        "modal" if on_modal else "local",
        round(wall_s, 3),
        usd,
        unit="wall_seconds",
        detail=f"analysis ({_STAGE_CORES:g} cores reserved)",
    )


def run(ctx) -> dict:
    """Analyse ``ctx.inputs[0]``, or return the cached analysis of the same content."""
    track = ctx.inputs[0]
    key = cache_key(track.sha256)
    cached = ctx.cache_get(CACHE_NAMESPACE, key) if key else None
    if cached is not None:
        with ctx.stage("analyzing", engine="cache") as st:
            ctx.message("This track was analysed before; using the cached analysis.")
            st.progress(1.0, "cached")
        return {**cached, "cached": True}
    with ctx.stage("analyzing", engine=engine_name()) as st:
        _check_duration(track.path, track.filename)
        st.progress(0.05, "decoding")
        started = time.monotonic()
        result = ctx.call(
            analysis_stage, audio_bytes=track.path.read_bytes(), filename=track.filename
        )
        wall_s = time.monotonic() - started
        st.engine = result.get("engine", ENGINE)
        _record_cost(ctx, wall_s)
        st.progress(1.0, f"analysed in {wall_s:.1f} s")
    if key:
        ctx.cache_put(CACHE_NAMESPACE, key, result)
    return {**result, "cached": False}


def _estimate_s(params: BaseModel, files: list[dict]) -> float:
    duration_s = (
        sum(float(f.get("duration_s") or DEFAULT_TRACK_DURATION_S) for f in files)
        or DEFAULT_TRACK_DURATION_S
    )
    return _OVERHEAD_S + _SECONDS_PER_AUDIO_SECOND * duration_s


def _clock(t: float) -> str:
    return f"{int(t // 60)}:{t % 60:05.2f}"


def summarize(r: dict, inputs: list[str], saved: list) -> str:
    """The terminal summary of an analysis (rich markup)."""
    loud = r.get("loudness", {})
    lines = [
        f"[bold]{Path(inputs[0]).name if inputs else ''}[/bold]  {r.get('duration_s', 0):.1f} s, "
        f"{r.get('sample_rate')} Hz, {r.get('channels')} ch",
        f"  tempo      {r.get('tempo_bpm', 0):.1f} BPM ({r.get('time_signature', '?')}), "
        f"{len(r.get('beats_s', []))} beats ({r.get('engine', '?')})",
        "  or         "
        + ", ".join(
            f"{c['relation']} {c['bpm']:.1f} BPM ({c['confidence']:.2f})"
            for c in r.get("tempo_candidates", [])[1:]
        ),
        f"  key        {r.get('key')} (confidence {r.get('key_confidence', 0):.2f})",
        f"  loudness   {loud.get('integrated_lufs')} LUFS, LRA {loud.get('lra_lu')} LU, "
        f"true peak {loud.get('true_peak_dbtp')} dBTP",
        "  sections   "
        + ", ".join(
            f"{s.get('label')} {_clock(s.get('start_s', 0))}" for s in r.get("sections", [])
        ),
    ]
    if r.get("cached"):
        lines.append("  [dim](from cache)[/dim]")
    return "\n".join(lines)


KIND = JobKind(
    name="analyze",
    params=AnalyzeParams,
    stages=[("analyzing", 1.0)],
    run=run,
    description="Tempo, beats, downbeats, key, sections and loudness of one track.",
    min_files=1,
    max_files=1,
    estimate_s=_estimate_s,
    summarize=summarize,
)
