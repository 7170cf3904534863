"""What the ``beat`` and ``hum`` kinds share: params checks, engine choice, MusicGen calls,
mastering and writing the outputs. (A leading underscore: not a job kind of its own.)"""

from __future__ import annotations

import importlib.util
import json
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from functions.audio_io import Audio, resample, save_audio
from functions.genres import Genre, get_genre
from functions.music import musicgen, prompt_words
from functions.music.procedural import (
    SAMPLE_RATE,
    ProceduralBeat,
)
from functions.music.theory import parse_key
from functions.video.pricing import modal_gpu_usd_per_s
from shared.config import get_settings
from shared.errors import InvalidInput
from shared.registry import CliFlag

MIN_DURATION_S = 5.0
MAX_DURATION_S = 120.0
ANY_BPM_LIMITS = (40.0, 240.0)  # what allow_any_bpm still accepts: a playable tempo
FORMATS = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac"}
MP3_BITRATE_KBPS = 320
# Estimated GPU seconds per second of generated audio on an L4 (unmeasured here: no GPU). From
# published figures: ~1.5-2 s per audio second for musicgen-small on an RTX 3060-class card
# (runlocalai.co, "Music generation"), ~3.2 for musicgen-large on an A100 via transformers
# (15 s in 47 s); medium and melody (1.5B) sit between.
MUSICGEN_GPU_S_PER_AUDIO_S = {"small": 1.5, "medium": 3.0, "melody": 3.0}

EngineName = Literal["musicgen", "procedural"]


def check_genre(value: str | None) -> str | None:
    return None if value is None else get_genre(value).name


def check_key(value: str | None) -> str | None:
    return None if value is None else parse_key(value).name


def check_mood(genre: Genre, mood: str | None) -> str:
    """One of the genre's moods: ``mood`` itself, or the nearest to its everyday words."""
    return prompt_words.nearest_mood(genre, mood).value


@dataclass(frozen=True)
class MusicChoice:
    """What a request resolves to: the genre template (with any voices the prompt names), its
    mood and tempo, and for each choice how it was made (the result's ``inferred``)."""

    genre: Genre
    mood: str
    bpm: float
    inferred: dict[str, Any]


def interpret(
    genre: str | None, mood: str | None, prompt: str, bpm: float | None, allow_any_bpm: bool
) -> MusicChoice:
    """Resolve genre, mood, tempo and voices from the params and the prompt's words.

    A genre inferred from the prompt (rather than chosen) accepts any playable tempo. Raises
    ``GENRE_OR_PROMPT_REQUIRED`` when there is neither, ``UNKNOWN_MOOD``, ``BPM_OUT_OF_RANGE``.
    """
    if genre is None and not prompt.strip():
        raise InvalidInput(
            "Give a genre or describe the music in a prompt.",
            code="GENRE_OR_PROMPT_REQUIRED",
            status=422,
        )
    if genre is None:
        g_inf = prompt_words.infer_genre(prompt, bpm)
    else:
        g_inf = prompt_words.Inferred(get_genre(genre).name, "given", ())
    base = get_genre(g_inf.value)
    checked_bpm = check_bpm(base, bpm, allow_any_bpm or genre is None)
    mood_inf = prompt_words.nearest_mood(base, mood, prompt=prompt if mood is None else "")
    voices = prompt_words.infer_instruments(prompt)
    # A voice the genre already plays a variant of (drill's "808-glide" for "808") stays.
    voices = {p: v for p, v in voices.items() if getattr(base, p).split("-")[0] != v.value}
    template = replace(base, **{part: inf.value for part, inf in voices.items()})
    inferred: dict[str, Any] = {"genre": g_inf.report(), "mood": mood_inf.report()}
    if mood is not None and mood_inf.how != "given":
        inferred["mood"]["requested"] = mood
    if voices:
        inferred["instruments"] = {part: inf.report() for part, inf in voices.items()}
    return MusicChoice(template, mood_inf.value, checked_bpm, inferred)


def check_bpm(genre: Genre, bpm: float | None, allow_any_bpm: bool) -> float:
    if bpm is None:
        return float(genre.default_bpm)
    lo, hi = ANY_BPM_LIMITS if allow_any_bpm else genre.bpm_range
    if not lo <= bpm <= hi:
        where = (
            "any genre" if allow_any_bpm else f"{genre.name} (set allow_any_bpm to go outside it)"
        )
        raise InvalidInput(
            f"{bpm:g} BPM is outside {lo:g}-{hi:g} BPM, the range for {where}.",
            code="BPM_OUT_OF_RANGE",
            status=422,
            details={"bpm_range": [lo, hi]},
        )
    return float(bpm)


def check_duration(duration_s: float | None) -> float | None:
    if duration_s is not None and not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
        raise InvalidInput(
            f"duration_s must be between {MIN_DURATION_S:g} and {MAX_DURATION_S:g} seconds (got {duration_s:g}).",
            code="DURATION_OUT_OF_RANGE",
            status=422,
        )
    return duration_s


def resolve_seed(seed: int | None) -> int:
    return int(seed) if seed is not None else secrets.randbelow(2**31)


def musicgen_available() -> bool:
    """audiocraft is importable here (the GPU image) or stages run on Modal."""
    return get_settings().runner == "modal" or importlib.util.find_spec("audiocraft") is not None


def choose_engine(requested: str | None) -> tuple[EngineName, str | None]:
    """(engine, note): the engine that will run and, for a fallback, a sentence saying why."""
    choice = requested or get_settings().music_engine
    if choice == "procedural":
        return "procedural", None
    if musicgen_available():
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


def run_musicgen(
    ctx, st, *, prompt: str, duration_s: float, model: str, seed: int, melody: Audio | None = None
) -> tuple[Audio, dict]:
    """Call the MusicGen stage (in-process with live progress, or on Modal), record its cost.

    Returns the audio as stereo at the project's rate and the stage's metadata.
    """
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "duration_s": duration_s,
        "model": model,
        "seed": seed,
    }
    if melody is not None:
        kwargs["melody_wav"] = musicgen._wav_bytes(melody)
    if get_settings().runner != "modal":
        kwargs["progress"] = lambda f: st.progress(0.95 * f, "generating")
    started = time.monotonic()
    out = ctx.call(musicgen.musicgen_stage, **kwargs)
    gpu_s = float(out.get("gpu_s") or (time.monotonic() - started))
    on_modal = get_settings().runner == "modal"
    gpu = musicgen_gpu()
    usd = gpu_s * modal_gpu_usd_per_s(gpu) if on_modal else 0.0
    ctx.cost(
        "modal" if on_modal else "local",
        round(gpu_s, 3),
        usd,
        unit="gpu_seconds",
        detail=f"{out.get('model')} on {gpu if on_modal else 'this machine'}",
    )
    audio = musicgen.decode_stage_audio(out)
    audio = resample(audio, SAMPLE_RATE)
    stereo = np.repeat(audio.samples[:1], 2, axis=0)
    n = int(round(duration_s * SAMPLE_RATE))
    stereo = np.pad(stereo, ((0, 0), (0, max(0, n - stereo.shape[1]))))[:, :n]
    return Audio(stereo.astype(np.float32), SAMPLE_RATE), {
        "model": out.get("model"),
        "windows": out.get("windows"),
        "prompt": prompt,
    }


def musicgen_gpu() -> str:
    """The GPU type of the MusicGen class in production (``SOUNDSTAGE_MUSICGEN_GPU``)."""
    return get_settings().musicgen_gpu


def estimate_musicgen_gpu_s(model: str, duration_s: float) -> float:
    size = next((k for k, v in musicgen.MODELS.items() if model in (k, v)), "medium")
    return MUSICGEN_GPU_S_PER_AUDIO_S[size] * duration_s


def estimate_musicgen_usd(model: str, duration_s: float) -> float:
    return estimate_musicgen_gpu_s(model, duration_s) * modal_gpu_usd_per_s(musicgen_gpu())


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


class MusicParams(BaseModel):
    """What ``beat`` and ``hum`` both take; each kind sets its own defaults and fills the rest
    from the genre in its own ``model_validator``."""

    model_config = ConfigDict(extra="forbid")

    genre: str | None = None
    bpm: float | None = None
    allow_any_bpm: bool = False
    key: str | None = None
    mood: str | None = None
    duration_s: Annotated[float | None, CliFlag("duration")] = Field(
        None, validation_alias=AliasChoices("duration_s", "duration")
    )  # "duration" accepted too: the name BeatFlow's clients send
    prompt: str = Field("", max_length=500)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    engine: Literal["auto", "musicgen", "procedural"] | None = None
    format: Literal["mp3", "wav", "flac"] = "mp3"
    stems: bool = True

    @field_validator("genre")
    @classmethod
    def known_genre(cls, value: str | None) -> str | None:
        return check_genre(value)

    @field_validator("key")
    @classmethod
    def readable_key(cls, value: str | None) -> str | None:
        return check_key(value)

    @field_validator("duration_s")
    @classmethod
    def duration_in_range(cls, value: float | None) -> float | None:
        return check_duration(value)


def summarize(r: dict, inputs: list[str], saved: list) -> str:
    """The terminal summary of a generated track: what was asked, what was inferred (rich
    markup); ``beat`` uses it as is, ``hum`` adds the melody."""
    loud = r.get("loudness") or {}
    lines = [
        f"[bold]{', '.join(str(p) for p in saved)}[/bold]",
        f"  {r.get('genre')} at {r.get('bpm'):g} BPM in {r.get('key')} ({r.get('mood')}), "
        f"{r.get('duration_s')} s, {r.get('format')} {r.get('sample_rate')} Hz",
        f"  engine     {r.get('engine')}"
        + (f"  [dim]{r['engine_note']}[/dim]" if r.get("engine_note") else ""),
        f"  loudness   {loud.get('loudness_lufs')} LUFS, true peak {loud.get('true_peak_dbtp')} dBTP",
        f"  seed       {r.get('seed')}",
    ]
    if r.get("stems"):
        lines.append(f"  stems      {', '.join(r['stems'])}")
    for what, inf in (r.get("inferred") or {}).items():
        if what == "instruments":
            said = ", ".join(f"{part} {i['value']}" for part, i in inf.items())
            lines.append(f"  inferred   instruments: {said}")
        elif inf.get("how") != "given":
            words = f" from '{', '.join(inf['words'])}'" if inf.get("words") else ""
            lines.append(f"  inferred   {what} {inf['value']} ({inf['how']}{words})")
    return "\n".join(lines)
