"""What a ``beat`` or ``hum`` request asks for: the params both kinds take, their checks, and
how genre, mood, tempo and voices are resolved from them and the prompt (``interpret``).
How the music is then made is in :mod:`functions.pipelines.beat_engines`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from functions.genres import Genre, get_genre
from functions.music import prompt_words
from functions.music.theory import parse_key
from shared.errors import InvalidInput
from shared.registry import CliFlag

MIN_DURATION_S = 5.0
MAX_DURATION_S = 120.0
ANY_BPM_LIMITS = (40.0, 240.0)  # what allow_any_bpm still accepts: a playable tempo


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
