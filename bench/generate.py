"""Benchmark: the procedural beat engine's speed as a multiple of real time.

    python bench/generate.py [--duration 60] [--genres trap,house,jazz] [--repeat 2]

For each genre it times the whole engine on a ``--duration`` beat (compose, synthesise all
parts with their effects, master to -14 LUFS / -1 dBTP) and prints the real-time factor
(audio seconds per wall second; target: at least 50x on two cores for a 60 s beat).

Two baselines are measured in the same run:

- real time itself (1x): a beat must at least render faster than it plays;
- naive per-note synthesis of the same score: every note and drum hit synthesised on its own
  (no reuse of identical notes, no shared drum hits), added into a buffer, then mastered the
  same way, with no effects at all. That is what a straightforward synthesiser does, and the
  ratio shows what rendering each distinct note once buys.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from functions.audio_io import Audio  # noqa: E402
from functions.genres import GENRES  # noqa: E402
from functions.music.compose import compose  # noqa: E402
from functions.music.drums import render_drum  # noqa: E402
from functions.music.mastering import master_to_lufs  # noqa: E402
from functions.music.procedural import SAMPLE_RATE, master_beat, render_beat  # noqa: E402
from functions.music.theory import parse_key  # noqa: E402
from functions.music.voices import render_note  # noqa: E402


def engine_once(genre: str, duration_s: float, seed: int) -> float:
    g = GENRES[genre]
    t0 = time.perf_counter()
    beat = render_beat(g, g.default_bpm, parse_key(g.default_key), g.moods[0], duration_s, seed)
    master_beat(beat)
    return time.perf_counter() - t0


def naive_once(genre: str, duration_s: float, seed: int) -> float:
    """Every event synthesised from scratch into one mono buffer, then mastered."""
    g = GENRES[genre]
    sr = SAMPLE_RATE
    t0 = time.perf_counter()
    score = compose(g, g.default_bpm, parse_key(g.default_key), g.moods[0], duration_s, seed)
    n = int(round(duration_s * sr))
    buf = np.zeros(n + 4 * sr, dtype=np.float32)
    voices = {
        "bass": g.bass.replace("808-glide", "808"),
        "chords": g.chords,
        "lead": {"saw": "saw_lead"}.get(g.lead, g.lead),
    }
    for part, events in score.parts.items():
        for e in events:
            if part == "drums":
                note = render_drum.__wrapped__(g.kit, e.voice, sr, 0)  # uncached
            else:
                note = render_note(voices[part], e.pitch, e.duration_s, sr, glide_from=e.glide_from)
            i = int(round(e.start_s * sr))
            buf[i : i + len(note)] += note[: len(buf) - i] * e.velocity
    mono = buf[:n]
    master_to_lufs(Audio(np.stack([mono, mono]), sr))
    return time.perf_counter() - t0


def best_of(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of beat (default 60)")
    ap.add_argument(
        "--genres",
        default="trap,lo-fi,house,drum and bass,jazz,rock",
        help="comma-separated genres, or 'all'",
    )
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement (best is kept)")
    args = ap.parse_args()
    genres = list(GENRES) if args.genres == "all" else [s.strip() for s in args.genres.split(",")]
    print(f"{args.duration:.0f} s beats, {os.cpu_count()} CPU cores visible, best of {args.repeat}")
    engine_once(genres[0], 5.0, 0)  # warm imports and caches outside the timings
    rows = []
    for genre in genres:
        ours = best_of(lambda genre=genre: engine_once(genre, args.duration, 1), args.repeat)
        naive = best_of(lambda genre=genre: naive_once(genre, args.duration, 1), 1)
        rows.append((genre, ours, naive))
        print(
            f"  {genre:14s} engine {ours:5.2f} s = {args.duration / ours:5.1f}x real time | "
            f"naive per-note {naive:5.2f} s = {args.duration / naive:5.1f}x | engine {naive / ours:4.1f}x faster than naive"
        )
    total_ours = sum(r[1] for r in rows)
    total_naive = sum(r[2] for r in rows)
    audio_s = args.duration * len(rows)
    print(
        f"overall: engine {audio_s / total_ours:.1f}x real time (target >= 50x; baseline real time = 1x), "
        f"naive per-note synthesis {audio_s / total_naive:.1f}x; engine/naive speed ratio {total_naive / total_ours:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
