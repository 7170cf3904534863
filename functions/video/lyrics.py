"""Lyrics with word timestamps: OpenAI transcription (``verbose_json``, word granularity).

Offers ``transcribe_lyrics(audio_path, duration_s, api_key=..., model=...) -> Lyrics``. There are no lyrics
when no key is set or the track is instrumental, and the result says which (``status`` and
``reason``), so the planner and the user know why. Transient failures (timeouts, 429, 5xx)
are retried per ``providers.WHISPER`` (60 s, 3 attempts, 2/4 s backoff); after the last
attempt the stage reports ``failed`` with the error instead of failing the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import providers

TRANSCRIBE_MODEL = "whisper-1"

# Whisper invents filler ("Thank you for watching.") on music without voice; a real vocal
# line carries at least this many words per minute.
MIN_WORDS_PER_MINUTE = 8.0
MIN_WORDS = 4


@dataclass
class Lyrics:
    status: str  # "transcribed" | "instrumental" | "skipped" | "failed"
    engine: str
    reason: str = ""
    text: str = ""
    language: str = ""
    words: list[dict[str, Any]] = field(default_factory=list)  # {word, start_s, end_s}
    billed_audio_s: float = 0.0

    def to_dict(self, max_words: int | None = None) -> dict[str, Any]:
        words = self.words if max_words is None else self.words[:max_words]
        return {
            "status": self.status,
            "engine": self.engine,
            "reason": self.reason,
            "text": self.text,
            "language": self.language,
            "word_count": len(self.words),
            "words": words,
        }

    def lines(self, gap_s: float = 0.8) -> list[dict[str, Any]]:
        """Words grouped into lines at pauses longer than ``gap_s`` ({start_s, end_s, text})."""
        out: list[dict[str, Any]] = []
        for w in self.words:
            if out and w["start_s"] - out[-1]["end_s"] <= gap_s:
                out[-1]["end_s"] = w["end_s"]
                out[-1]["text"] += " " + w["word"]
            else:
                out.append({"start_s": w["start_s"], "end_s": w["end_s"], "text": w["word"]})
        return out


def _looks_instrumental(words: list[dict[str, Any]], duration_s: float) -> bool:
    if len(words) < MIN_WORDS:
        return True
    return len(words) / max(duration_s / 60.0, 1e-6) < MIN_WORDS_PER_MINUTE


def transcribe_lyrics(
    audio_path: Path,
    duration_s: float,
    *,
    client: Any | None = None,
    api_key: str = "",
    model: str = TRANSCRIBE_MODEL,
    policy: providers.RetryPolicy = providers.WHISPER,
) -> Lyrics:
    """Transcribe ``audio_path`` with word timestamps using OpenAI's ``model``.

    ``client`` defaults to ``providers.openai_client(api_key)``; without one (no key) the
    lyrics are ``skipped``.
    """
    if client is None:
        client = providers.openai_client(api_key, policy.timeout_s)
    if client is None:
        return Lyrics(
            status="skipped",
            engine="none",
            reason="No OpenAI key is configured, so lyrics were not transcribed.",
        )

    def attempt() -> Any:
        with open(audio_path, "rb") as fh:
            return client.audio.transcriptions.create(
                model=model,
                file=(Path(audio_path).name, fh),
                response_format="verbose_json",
                timestamp_granularities=["word"],
                timeout=policy.timeout_s,
            )

    engine = f"openai:{model}"
    try:
        answer = policy.retrying()(attempt)
    except Exception as exc:  # noqa: BLE001 - lyrics are optional: the video goes on without
        return Lyrics(
            status="failed",
            engine=engine,
            reason=f"Transcription failed after {policy.attempts} attempts ({type(exc).__name__}); "
            "the video is planned without lyrics.",
        )
    words = [
        {
            "word": str(w.word).strip(),
            "start_s": round(float(w.start), 3),
            "end_s": round(float(w.end), 3),
        }
        for w in (getattr(answer, "words", None) or [])
        if str(w.word).strip()
    ]
    billed = float(getattr(answer, "duration", None) or duration_s)
    if _looks_instrumental(words, duration_s):
        return Lyrics(
            status="instrumental",
            engine=engine,
            reason="No sung words were found; the track is treated as instrumental.",
            language=str(getattr(answer, "language", "") or ""),
            billed_audio_s=billed,
        )
    return Lyrics(
        status="transcribed",
        engine=engine,
        text=str(getattr(answer, "text", "")).strip(),
        language=str(getattr(answer, "language", "") or ""),
        words=words,
        billed_audio_s=billed,
    )
