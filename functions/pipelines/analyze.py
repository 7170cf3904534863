"""The ``analyze`` job kind: tempo, beats, downbeats, key, sections, loudness of one track.

One stage, ``audio_analysis``. The result is cached by the input's content hash,
``ANALYSIS_VERSION`` and the beat engine (``cache_key``), so the same file is analysed once:
``analyses_of`` is the one lookup the analyze, mashup and video kinds share. The compute is the
stage function ``audio_analysis``: bytes in, JSON out, so it runs wherever the executor puts it
(in production a function of the same name on its own image, with Beat This!).

Beat engine (``SOUNDSTAGE_BEAT_ENGINE``): ``auto`` uses Beat This! when its checkpoint is in the
weights folder and the DSP tracker otherwise; ``beat_this`` insists on it; ``dsp`` never loads
it. The result's ``engine`` names the one that placed the beats.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from functions.analysis import ANALYSIS_VERSION, ENGINE, analyze_audio
from functions.audio_io import load_audio, probe
from functions.pipelines.estimates import input_durations_s
from shared.config import get_settings
from shared.errors import InvalidInput, StageFailed
from shared.registry import JobKind

CACHE_NAMESPACE = "analysis"
STAGE = "audio_analysis"
# Measured wall time: about 10 ms per second of audio on two cores, most of it loudness.
_SECONDS_PER_AUDIO_SECOND = 0.012
_OVERHEAD_S = 2.0


class AnalyzeParams(BaseModel):
    """No options: the analysis is the same for everyone, which is what makes it cacheable."""

    model_config = ConfigDict(extra="forbid")


@functools.cache
def _load_tracker(path: Path) -> Any:
    from functions.beat_this_engine import BeatThisTracker

    return BeatThisTracker.from_checkpoint(path)


def beat_tracker(settings: Any = None) -> Any | None:
    """The configured neural beat tracker, loaded once per process, or None for the DSP one.

    Raises StageFailed when ``beat_engine`` is ``beat_this`` and its checkpoint or packages
    are missing (production must not silently fall back)."""
    from functions.beat_this_engine import find_beat_this_checkpoint

    s = settings or get_settings()
    if s.beat_engine == "dsp":
        return None
    path = find_beat_this_checkpoint(s.weights_dir)
    if path is not None:  # torch loads only when there is a checkpoint to run
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


def engine_name(settings: Any = None) -> str:
    """The beat engine this process would use (part of the cache key)."""
    s = settings or get_settings()
    if s.beat_engine == "dsp":
        return ENGINE
    from functions.beat_this_engine import ENGINE_NAME, find_beat_this_checkpoint

    if s.beat_engine == "beat_this" or find_beat_this_checkpoint(s.weights_dir):
        return ENGINE_NAME
    return ENGINE


def cache_key(sha256: str | None, settings: Any = None) -> str | None:
    """The analysis cache key of a file's content (None when the hash is unknown)."""
    return f"{sha256}:{ANALYSIS_VERSION}:{engine_name(settings)}" if sha256 else None


# ``audio_analysis``'s default: the beat tracker this process is configured with.
CONFIGURED = object()


def audio_analysis(
    audio_bytes: bytes,
    filename: str = "track",
    progress: Callable[[float, str], None] | None = None,
    tracker: Any = CONFIGURED,
) -> dict:
    """The stage: decode ``audio_bytes`` (any supported format, recognised by content) and
    analyse it; ``progress(fraction, message)`` as it goes. Raises InvalidAudio for
    undecodable, silent or too-short audio.

    ``tracker``: a neural beat tracker already loaded (a Modal container loads it when it
    starts) or None for the DSP tracker; by default the one ``beat_tracker()`` configures.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (Path(filename).name or "track")
        path.write_bytes(audio_bytes)
        audio = load_audio(path)
    if tracker is CONFIGURED:
        tracker = beat_tracker()
    return analyze_audio(audio, progress, beat_tracker=tracker)


def cached_analysis(ctx: Any, sha256: str | None) -> tuple[str | None, dict | None]:
    """``(cache key, the analysis this user's jobs cached for this content or None)``."""
    key = cache_key(sha256, ctx.settings)
    return key, (ctx.cache_get(CACHE_NAMESPACE, key) if key else None)


def analyses_of(
    ctx: Any,
    tracks: list[Any],
    progress: Callable[[float, str | None], None],
    *,
    sha256s: list[str] | None = None,
) -> list[dict]:
    """The analysis of each track (``InputFile``s): cached where this user has one for the same
    content, else computed (fanned out with ``ctx.map``, their progress summed into
    ``progress(fraction, message)``) and cached for the next job."""
    looked_up = [cached_analysis(ctx, s) for s in (sha256s or [t.sha256 for t in tracks])]
    found = [analysis for _, analysis in looked_up]
    todo = [i for i, a in enumerate(found) if a is None]
    if todo:
        done = [0.0] * len(todo)

        def report(k: int, fraction: float, message: str | None = None) -> None:
            done[k] = fraction
            progress(sum(done) / len(done), message)

        items = [
            {
                "audio_bytes": tracks[i].path.read_bytes(),
                "filename": tracks[i].filename,
                "progress": lambda f, message=None, k=k: report(k, f, message),
            }
            for k, i in enumerate(todo)
        ]
        for i, analysis in zip(todo, ctx.map(audio_analysis, items), strict=True):
            found[i] = analysis
            if looked_up[i][0]:
                ctx.cache_put(CACHE_NAMESPACE, looked_up[i][0], analysis)
    return found


def _check_duration(path: Path, filename: str, limit_s: float) -> None:
    duration_s = float(probe(path).get("duration_s") or 0.0)
    if duration_s > limit_s:
        raise InvalidInput(
            f"'{filename}' is {duration_s / 60:.1f} minutes long; the limit is "
            f"{limit_s / 60:.0f} minutes.",
            code="TOO_LONG",
        )


def run(ctx) -> dict:
    """Analyse ``ctx.inputs[0]``, or return the cached analysis of the same content."""
    track = ctx.inputs[0]
    key, cached = cached_analysis(ctx, track.sha256)
    if cached is not None:
        with ctx.stage(STAGE, engine="cache") as st:
            ctx.message("This track was analysed before; using the cached analysis.")
            st.progress(1.0, "cached")
        return {**cached, "cached": True}
    with ctx.stage(STAGE, engine=engine_name(ctx.settings)) as st:
        _check_duration(track.path, track.filename, ctx.settings.max_duration_s)
        st.progress(0.05, "decoding")
        started = time.monotonic()
        result = ctx.call(
            audio_analysis,
            audio_bytes=track.path.read_bytes(),
            filename=track.filename,
            progress=lambda f, message=None: st.progress(0.05 + 0.9 * f, message),
        )
        wall_s = time.monotonic() - started
        st.engine = result.get("engine", ENGINE)
        ctx.compute_cost(audio_analysis, wall_s, detail="analysis")
        st.progress(1.0, f"analysed in {wall_s:.1f} s")
    if key:
        ctx.cache_put(CACHE_NAMESPACE, key, result)
    return {**result, "cached": False}


def _estimate_s(params: BaseModel, files: list[dict]) -> float:
    duration_s = sum(input_durations_s(files))
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
    stages=[(STAGE, 1.0)],
    run=run,
    description="Tempo, beats, downbeats, key, sections and loudness of one track.",
    min_files=1,
    max_files=1,
    estimate_s=_estimate_s,
    summarize=summarize,
)
