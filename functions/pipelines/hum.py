"""The ``hum`` job kind (hum-to-beat): a hummed or sung melody in, a track that follows it out.

Stages: ``transcribing`` (pYIN pitch tracking, note segmentation, quantisation to the tempo, key
from the notes), ``generating`` (MusicGen melody conditioning with ``generate_with_chroma`` on
a GPU, or the procedural engine playing the transcribed melody as its lead over the genre's
beat, with chords chosen under the melody), ``mastering`` and ``encoding``. Outputs: the track,
the melody as MIDI and the notes as JSON (plus stems from the procedural engine).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pydantic import model_validator

from functions.audio_io import load_audio
from functions.genres import get_genre
from functions.music import prompt_words
from functions.music.compose import NoteEvent
from functions.music.hum import (
    MAX_DURATION_S,
    estimate_tempo_from_notes,
    quantize_notes,
    transcribe_hum,
)
from functions.music.midi import write_midi
from functions.music.musicgen import build_prompt
from functions.music.procedural import SAMPLE_RATE
from functions.music.theory import estimate_key, parse_key, pitch_name
from functions.pipelines import music_request as common
from functions.pipelines.beat_engines import (
    TrackSpec,
    beat_engine,
    choose_engine,
    estimate_musicgen_usd,
    make_track,
)
from shared.config import get_settings
from shared.registry import JobKind


class HumParams(common.MusicParams):
    """The beat to put under the melody. Without ``bpm`` the tempo is fitted to the hum inside
    the genre's range; without ``key`` the key is estimated from the hummed notes; without
    ``duration_s`` the track lasts the melody's length in whole bars (>= 5 s)."""

    genre: str = "lo-fi"

    @model_validator(mode="after")
    def fill_from_genre(self) -> HumParams:
        genre = get_genre(self.genre)
        if self.bpm is not None:
            self.bpm = common.check_bpm(genre, self.bpm, self.allow_any_bpm)
        common.check_mood(genre, self.mood)  # refused here; mapped and reported in run()
        return self


def run(ctx) -> dict:
    """Transcribe the hum, generate over it, master and encode (see module docstring)."""
    p: HumParams = ctx.params
    genre = get_genre(p.genre)
    mood_choice = prompt_words.nearest_mood(genre, p.mood)  # free text -> the nearest mood
    mood = mood_choice.value
    seed = common.resolve_seed(p.seed)
    engine, note = choose_engine(p.engine, ctx.settings)
    with ctx.stage("transcribing", engine="pyin") as st:
        hum = load_audio(ctx.inputs[0].path, mono=True)
        notes = transcribe_hum(hum, progress=lambda f: st.progress(0.9 * f, "tracking pitch"))
        bpm = p.bpm or estimate_tempo_from_notes(notes, genre.bpm_range)
        melody = quantize_notes(notes, bpm)
        if p.key:
            key, key_confidence = parse_key(p.key), None
        else:
            key, key_confidence = estimate_key(
                [n.pitch for n in notes], [n.duration_s for n in notes]
            )
        bar_s = 240.0 / bpm
        melody_bars = math.ceil((melody[-1].step + melody[-1].length_steps) / 16)
        duration_s = p.duration_s or min(
            common.MAX_DURATION_S, max(common.MIN_DURATION_S, melody_bars * bar_s)
        )
        st.progress(1.0, f"{len(notes)} notes, {bpm:g} BPM, {key.name}")
    notes_doc = {
        "bpm": bpm,
        "key": key.name,
        "key_confidence": None if key_confidence is None else round(key_confidence, 3),
        "notes": [n.to_dict() for n in notes],
        "quantized": [
            {"step": m.step, "length_steps": m.length_steps, "pitch": m.pitch} for m in melody
        ],
    }
    stem = f"hum-{genre.slug}-{round(bpm)}bpm"

    def melody_outputs(workdir: Path) -> None:
        step_s = 15.0 / bpm
        events = [NoteEvent(m.step * step_s, m.length_steps * step_s, m.pitch, 0.8) for m in melody]
        midi_path = write_midi(
            workdir / f"{stem}-melody.mid",
            {"melody": events},
            bpm,
            key=key,
            programs={"melody": "sine"},
        )
        ctx.output("melody_midi", midi_path, content_type="audio/midi", filename=midi_path.name)
        notes_path = workdir / f"{stem}-notes.json"
        notes_path.write_text(json.dumps(notes_doc))
        ctx.output("notes", notes_path, content_type="application/json", filename=notes_path.name)

    spec = TrackSpec(
        genre=genre,
        bpm=bpm,
        key=key,
        mood=mood,
        duration_s=duration_s,
        seed=seed,
        prompt=build_prompt(genre, mood, bpm, key, p.prompt),
        model="melody",
        melody_notes=melody,
        melody_audio=hum,
    )
    files, loudness, made = make_track(
        ctx,
        beat_engine(engine, ctx),
        spec,
        fmt=p.format,
        file_stem=stem,
        keep_stems=p.stems,
        note=note,
        notes_outputs=False,  # the hum's own notes and melody instead
        more_outputs=melody_outputs,
    )
    result = {
        **files,
        "genre": genre.name,
        "bpm": bpm,
        "key": key.name,
        "key_confidence": notes_doc["key_confidence"],
        "mood": mood,
        "seed": seed,
        "engine": engine,
        "notes_count": len(notes),
        "melody": [n.to_dict() for n in notes],
        "loudness": loudness,
    }
    if note:
        result["engine_note"] = note
    if p.mood and mood_choice.how != "given":
        result["inferred"] = {"mood": {**mood_choice.report(), "requested": p.mood}}
    result.update(made.extra)
    return result


def _estimate_s(params: HumParams, files: list[dict]) -> float:
    hum_s = float((files[0].get("duration_s") if files else None) or 10.0)
    return 3.0 + 0.3 * hum_s + 0.05 * float(params.duration_s or hum_s)


def _estimate_cost(params: HumParams, files: list[dict]) -> float:
    settings = get_settings()
    engine, _ = choose_engine(params.engine, settings)
    hum_s = float((files[0].get("duration_s") if files else None) or 10.0)
    if engine != "musicgen":
        return 0.0
    return estimate_musicgen_usd("melody", float(params.duration_s or hum_s), settings)


def summarize(r: dict, inputs: list[str], saved: list) -> str:
    """The generated track's summary plus the notes heard in the hum (rich markup)."""
    melody = " ".join(pitch_name(n["pitch"]) for n in r.get("melody", [])[:24])
    return (
        common.summarize(r, inputs, saved)
        + f"\n  melody     {r.get('notes_count')} notes: {melody}"
    )


KIND = JobKind(
    name="hum",
    params=HumParams,
    stages=[
        ("transcribing", 0.35),
        ("generating", 0.45),
        ("mastering", 0.1),
        ("encoding", 0.1),
    ],
    run=run,
    description="Hum or sing a melody; get a beat in your genre that follows it.",
    min_files=1,
    max_files=1,
    estimate_s=_estimate_s,
    estimate_cost_usd=_estimate_cost,
    max_duration_s=MAX_DURATION_S,
    extra={"sample_rate": SAMPLE_RATE},
    main_output="track",
    summarize=summarize,
)
