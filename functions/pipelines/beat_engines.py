"""How the ``beat`` and ``hum`` kinds make their track: one :class:`BeatEngine` interface, its
two engines, and the generate -> master -> encode stages both kinds run (``make_track``).

- :class:`TrackSpec`: what to make (genre, tempo, key, mood, length, seed, the MusicGen prompt
  and model, and a melody to follow: notes for the procedural engine, audio for MusicGen).
- :class:`BeatEngine`: ``generate(spec, progress) -> GeneratedTrack``; ``progress(fraction,
  message)`` is the ``generating`` stage's. :class:`MusicGenBeatEngine` calls the MusicGen stage
  through the job context (wherever the executor runs it, its compute priced there);
  :class:`ProceduralBeatEngine` renders genre templates in this process.
- ``choose_engine(requested, settings)``: the engine that will run and, for a fallback, why.
- ``make_track(ctx, engine, spec, ...)``: the ``generating``, ``mastering`` and ``encoding``
  stages; returns the file metadata, the loudness report and what the engine generated.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from functions.audio_io import Audio, resample, save_audio
from functions.genres import Genre
from functions.music import musicgen
from functions.music.compose import MelodyNote
from functions.music.mastering import master_to_lufs
from functions.music.procedural import (
    CEILING_DBTP,
    SAMPLE_RATE,
    TARGET_LUFS,
    ProceduralBeat,
    master_beat,
    render_beat,
)
from functions.music.theory import Key
from shared.errors import InvalidInput
from shared.executors import runs_stages_remotely
from shared.prices import deployed_compute_usd

FORMATS = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac"}
MP3_BITRATE_KBPS = 320
# Estimated GPU seconds per second of generated audio on an L4 (unmeasured here: no GPU). From
# published figures: ~1.5-2 s per audio second for musicgen-small on an RTX 3060-class card
# (runlocalai.co, "Music generation"), ~3.2 for musicgen-large on an A100 via transformers
# (15 s in 47 s); medium and melody (1.5B) sit between.
MUSICGEN_GPU_S_PER_AUDIO_S = {"small": 1.5, "medium": 3.0, "melody": 3.0}

EngineName = Literal["musicgen", "procedural"]
Progress = Callable[..., None]


@dataclass(frozen=True)
class TrackSpec:
    """What to generate. ``prompt`` and ``model`` are MusicGen's; ``melody_notes`` (procedural)
    or ``melody_audio`` (MusicGen's melody conditioning) make the track follow a melody."""

    genre: Genre
    bpm: float
    key: Key
    mood: str
    duration_s: float
    seed: int
    prompt: str = ""
    model: str = "small"
    melody_notes: list[MelodyNote] | None = None
    melody_audio: Audio | None = None


@dataclass
class GeneratedTrack:
    """An engine's answer: the unmastered ``audio``, or a procedural ``beat`` (which also knows
    its stems and notes); ``extra`` goes into the job's result."""

    audio: Audio | None = None
    beat: ProceduralBeat | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BeatEngine(Protocol):
    name: EngineName

    def generate(self, spec: TrackSpec, progress: Progress) -> GeneratedTrack: ...


class ProceduralBeatEngine:
    """Genre templates (drums, bass, chords in key at the tempo; an optional melody as lead),
    rendered in this process: no model, deterministic per seed."""

    name: EngineName = "procedural"

    def generate(self, spec: TrackSpec, progress: Progress) -> GeneratedTrack:
        beat = render_beat(
            spec.genre,
            spec.bpm,
            spec.key,
            spec.mood,
            spec.duration_s,
            spec.seed,
            melody=spec.melody_notes,
            progress=lambda f: progress(f, "synthesising"),
        )
        return GeneratedTrack(beat=beat)


class MusicGenBeatEngine:
    """MusicGen through its stage function, run where the job's executor puts it (a GPU class
    in production); checked against the budget before, priced after."""

    name: EngineName = "musicgen"

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def generate(self, spec: TrackSpec, progress: Progress) -> GeneratedTrack:
        ctx = self.ctx
        kwargs: dict[str, Any] = {
            "prompt": spec.prompt,
            "duration_s": spec.duration_s,
            "model": spec.model,
            "seed": spec.seed,
            "progress": lambda f: progress(0.95 * f, "generating"),
        }
        if spec.melody_audio is not None:
            kwargs["melody_wav"] = musicgen._wav_bytes(spec.melody_audio)
        gpu_s = estimate_musicgen_gpu_s(spec.model, spec.duration_s)
        ctx.ensure_budget(
            ctx.compute_price(musicgen.musicgen_stage, gpu_s), "generating with MusicGen"
        )
        started = time.monotonic()
        out = ctx.call(musicgen.musicgen_stage, **kwargs)
        ctx.compute_cost(
            musicgen.musicgen_stage,
            float(out.get("gpu_s") or (time.monotonic() - started)),
            detail=str(out.get("model")),
            unit="gpu_seconds",
        )
        audio = resample(musicgen.decode_stage_audio(out), SAMPLE_RATE)
        stereo = np.repeat(audio.samples[:1], 2, axis=0)
        n = int(round(spec.duration_s * SAMPLE_RATE))
        stereo = np.pad(stereo, ((0, 0), (0, max(0, n - stereo.shape[1]))))[:, :n]
        return GeneratedTrack(
            audio=Audio(stereo.astype(np.float32), SAMPLE_RATE),
            extra={"model": out.get("model"), "windows": out.get("windows"), "prompt": spec.prompt},
        )


def musicgen_available(settings: Any) -> bool:
    """MusicGen can run: audiocraft is importable here, or stages run on the GPU deployment."""
    return runs_stages_remotely(settings) or importlib.util.find_spec("audiocraft") is not None


def choose_engine(requested: str | None, settings: Any) -> tuple[EngineName, str | None]:
    """(engine, note): the engine that will run and, for a fallback, a sentence saying why."""
    choice = requested or settings.music_engine
    if choice == "procedural":
        return "procedural", None
    if musicgen_available(settings):
        return "musicgen", None
    if choice == "musicgen":
        raise InvalidInput(
            "MusicGen is not available on this server (it runs on the GPU deployment); "
            "use engine 'procedural' or 'auto'.",
            code="ENGINE_UNAVAILABLE",
            status=422,
        )
    return (
        "procedural",
        "MusicGen is not available here; the procedural engine (genre templates, no model) made this track.",
    )


def beat_engine(name: EngineName, ctx: Any) -> BeatEngine:
    return MusicGenBeatEngine(ctx) if name == "musicgen" else ProceduralBeatEngine()


def estimate_musicgen_gpu_s(model: str, duration_s: float) -> float:
    size = next((k for k, v in musicgen.MODELS.items() if model in (k, v)), "medium")
    return MUSICGEN_GPU_S_PER_AUDIO_S[size] * duration_s


def estimate_musicgen_usd(model: str, duration_s: float, settings: Any) -> float:
    """A MusicGen track's pre-flight price on the deployment's MusicGen GPU."""
    gpu_s = estimate_musicgen_gpu_s(model, duration_s)
    return deployed_compute_usd(settings, gpu_s, gpu=settings.musicgen_gpu)


def make_track(
    ctx: Any,
    engine: BeatEngine,
    spec: TrackSpec,
    *,
    fmt: str,
    file_stem: str,
    keep_stems: bool,
    note: str | None = None,
    notes_outputs: bool = True,
    more_outputs: Callable[[Path], None] | None = None,
) -> tuple[dict, dict, GeneratedTrack]:
    """The ``generating``, ``mastering`` (-14 LUFS, peaks under -1 dBTP) and ``encoding``
    stages. A procedural beat also writes its stems (``keep_stems``) and, with
    ``notes_outputs``, its MIDI and notes; ``more_outputs(workdir)`` adds a kind's own files in
    the encoding stage. Returns ``(file metadata, loudness report, what was generated)``."""
    with ctx.stage("generating", engine=engine.name) as st:
        if note:
            ctx.message(note)
        made = engine.generate(spec, st.progress)
        st.progress(1.0)
    with ctx.stage("mastering", engine="soundstage-dsp") as st:
        if made.beat is not None:
            made.beat, loudness = master_beat(made.beat)
            track = made.beat.mix
        else:
            track, loudness = master_to_lufs(made.audio, TARGET_LUFS, CEILING_DBTP)
        st.progress(1.0, f"{loudness['loudness_lufs']} LUFS")
    with ctx.stage("encoding", engine="ffmpeg") as st:
        beat = made.beat
        files = write_outputs(
            ctx,
            track=track,
            fmt=fmt,
            stem=file_stem,
            stems=beat.stems if (beat is not None and keep_stems) else None,
            beat=beat if notes_outputs else None,
        )
        if more_outputs is not None:
            more_outputs(Path(ctx.workdir))
        st.progress(1.0)
    return files, loudness, made


def write_outputs(
    ctx,
    *,
    track: Audio,
    fmt: str,
    stem: str,
    stems: dict[str, np.ndarray] | None = None,
    beat: ProceduralBeat | None = None,
    extra_json: dict[str, Any] | None = None,
) -> dict:
    """Encode the track (and stems / MIDI / notes where the engine has them) as job outputs.

    Returns the result's file metadata: format, bitrate, sample rate, channels, duration.
    """
    workdir = Path(ctx.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = save_audio(
        workdir / f"{stem}.{fmt}", track, fmt, bit_depth=16, bitrate_kbps=MP3_BITRATE_KBPS
    )
    ctx.output("track", path, content_type=FORMATS[fmt], filename=path.name)
    bitrate = MP3_BITRATE_KBPS if fmt == "mp3" else None
    if fmt == "wav":
        bitrate = track.sample_rate * 16 * track.channels // 1000
    meta = {
        "format": fmt,
        "bitrate_kbps": bitrate,
        "sample_rate": track.sample_rate,
        "channels": track.channels,
        "duration_s": round(track.duration_s, 3),
    }
    stem_names = []
    if stems:
        # Stems carry the master's make-up gain but not its limiter, so their sum can peak
        # over full scale: one shared trim keeps them summing to the track's balance.
        peak = max(float(np.max(np.abs(x))) for x in stems.values())
        trim = min(1.0, 0.999 / peak) if peak > 0 else 1.0
        for name, x in stems.items():
            p = save_audio(
                workdir / f"{stem}-{name}.flac",
                Audio((x * trim).astype(np.float32), track.sample_rate),
                "flac",
                bit_depth=24,
            )
            ctx.output(name, p, bucket="stems", content_type="audio/flac", filename=p.name)
            p.unlink(missing_ok=True)
            stem_names.append(name)
        meta["stems_trim_db"] = round(20 * np.log10(trim), 2)
    meta["stems"] = stem_names
    if beat is not None:
        midi_path = beat.write_midi(workdir / f"{stem}.mid")
        ctx.output("midi", midi_path, content_type="audio/midi", filename=midi_path.name)
        notes = {**beat.notes_json(), **(extra_json or {})}
        notes_path = workdir / f"{stem}-notes.json"
        notes_path.write_text(json.dumps(notes))
        ctx.output("notes", notes_path, content_type="application/json", filename=notes_path.name)
    path.unlink(missing_ok=True)
    return meta
