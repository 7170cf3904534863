"""The procedural beat engine: compose, render, master — no weights, deterministic per seed.

``render_beat(genre, bpm, key, mood, duration_s, seed, melody=None)`` composes a score from the
genre's template (functions/music/compose.py), renders it to stems (render.py) and returns a
:class:`ProceduralBeat`; ``master_beat(beat)`` brings the mix to -14 LUFS with peaks under
-1 dBTP and scales the stems by the same gain, so they still add up to the track. Because the
engine knows every note it played, the beat also exports as MIDI (``beat.write_midi(path)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from functions.audio_io import Audio
from functions.genres import Genre
from functions.music.compose import MelodyNote, Score, compose
from functions.music.mastering import master_to_lufs
from functions.music.midi import write_midi
from functions.music.render import mix_stems, render_score
from functions.music.theory import Key

ENGINE = "procedural"
SAMPLE_RATE = 44100
TARGET_LUFS = -14.0
CEILING_DBTP = -1.0


@dataclass
class ProceduralBeat:
    score: Score
    stems: dict[str, np.ndarray]  # part -> (2, n) float32
    mix: Audio

    def write_midi(self, path: str | Path) -> Path:
        g = self.score.genre
        programs = {
            "bass": g.bass.replace("808-glide", "808"),
            "chords": g.chords,
            "lead": {"saw": "saw_lead"}.get(g.lead, g.lead),
        }
        return write_midi(
            path, self.score.parts, self.score.bpm, key=self.score.key, programs=programs
        )

    def notes_json(self) -> dict:
        """Every note per part (seconds, MIDI pitch, velocity) and the section plan."""
        return {
            "bpm": self.score.bpm,
            "key": self.score.key.name,
            "sections": [
                {
                    "name": s.name,
                    "start_s": round(s.start_bar * self.score.bar_s, 4),
                    "bars": s.bars,
                }
                for s in self.score.sections
            ],
            "parts": {
                part: [
                    {
                        "start_s": round(e.start_s, 4),
                        "duration_s": round(e.duration_s, 4),
                        "pitch": e.pitch,
                        "velocity": round(e.velocity, 3),
                    }
                    for e in events
                ]
                for part, events in self.score.parts.items()
            },
        }


def render_beat(
    genre: Genre,
    bpm: float,
    key: Key,
    mood: str,
    duration_s: float,
    seed: int,
    *,
    melody: list[MelodyNote] | None = None,
    sample_rate: int = SAMPLE_RATE,
    progress: Callable[[float], None] | None = None,
) -> ProceduralBeat:
    """Compose and render an unmastered beat exactly ``duration_s`` long."""
    score = compose(genre, bpm, key, mood, duration_s, seed, melody=melody)
    stems = render_score(score, sample_rate, progress)
    return ProceduralBeat(score, stems, Audio(mix_stems(stems), sample_rate))


def master_beat(
    beat: ProceduralBeat, target_lufs: float = TARGET_LUFS
) -> tuple[ProceduralBeat, dict]:
    """Master the mix to ``target_lufs`` / -1 dBTP; stems get the same make-up gain (unlimited)."""
    mastered, report = master_to_lufs(beat.mix, target_lufs, CEILING_DBTP)
    gain = 10 ** (report["gain_db"] / 20.0)
    stems = {k: (v * gain).astype(np.float32) for k, v in beat.stems.items()}
    return ProceduralBeat(beat.score, stems, mastered), report
