"""Render a :class:`~functions.music.compose.Score` to stereo stems and their mix.

Each part's notes are synthesised once per distinct (pitch, length) and added where they
start, so a minute of music costs a few hundred short renders. Parts then get their effects
(pedalboard: reverb, delay, drive, filters), a pan, a level from the genre's balance and, for
four-on-the-floor genres, sidechain ducking from the kick. The stems sum to the mix.

Offers ``render_score(score, sr, progress)`` -> ``{part: (2, n) float32}`` and ``mix_stems``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from functions.music.compose import NoteEvent, Score
from functions.music.drums import render_drum
from functions.music.voices import render_note

if TYPE_CHECKING:  # pedalboard and scipy.signal load on first render, not with the job registry
    import pedalboard as pb

# Part levels (RMS dBFS while playing) before mastering; drums lead, harmony sits behind.
_LEVEL_DB = {"drums": -15.0, "bass": -17.0, "chords": -23.0, "lead": -21.0, "texture": -42.0}
_GENRE_LEVEL_DB = {
    "jazz": {"drums": -21.0, "bass": -17.0, "chords": -20.0, "lead": -20.0},
    "lo-fi": {"drums": -17.0, "chords": -20.0, "lead": -22.0},
    "techno": {"lead": -26.0, "chords": -26.0},
    "rock": {"chords": -19.0, "lead": -22.0},
}
# Pans (-1 left .. 1 right) of drum pieces; the rest of a kit sits in the middle.
_DRUM_PAN = {
    "hat": 0.25,
    "open_hat": 0.3,
    "shaker": -0.35,
    "ride": -0.3,
    "crash": -0.2,
    "tom": 0.15,
}
_SYNTH_VOICE = {"808-glide": "808"}  # the glide is in the notes; the sound is the 808


def _add_panned(stereo: np.ndarray, mono: np.ndarray, pan: float) -> None:
    """Add ``mono`` into ``stereo`` at ``pan`` (constant power, unity in the centre)."""
    angle = (pan + 1.0) * np.pi / 4.0
    stereo[0] += mono * np.float32(np.cos(angle) * np.sqrt(2.0))
    stereo[1] += mono * np.float32(np.sin(angle) * np.sqrt(2.0))


def _place(
    events: list[NoteEvent], n: int, sr: int, render: Callable[[NoteEvent], np.ndarray]
) -> np.ndarray:
    buf = np.zeros(n, dtype=np.float32)
    for e in events:
        i = int(round(e.start_s * sr))
        if i >= n:
            continue
        note = render(e)
        j = min(n, i + len(note))
        buf[i:j] += note[: j - i] * e.velocity
    return buf


def _active_rms_db(x: np.ndarray, sr: int) -> float:
    """RMS over the frames where the part plays (silent intros don't count)."""
    frame = 2048
    mono = x.mean(axis=0) if x.ndim == 2 else x
    usable = (len(mono) // frame) * frame
    if usable == 0:
        return -120.0
    rms = np.sqrt((mono[:usable].reshape(-1, frame) ** 2).mean(axis=1))
    loud = rms[rms > 10 ** (-60 / 20)]
    return float(20 * np.log10(np.sqrt((loud**2).mean()))) if loud.size else -120.0


def _sidechain(
    kick_times_s: list[float], n: int, sr: int, depth: float = 0.6, release_s: float = 0.14
) -> np.ndarray:
    """Gain that dips after every kick and recovers (the 'pumping' of house and EDM)."""
    from scipy.signal import lfilter

    impulses = np.zeros(n)
    idx = np.array([int(t * sr) for t in kick_times_s if t * sr < n], dtype=int)
    impulses[idx] = 1.0
    env = lfilter([1.0], [1.0, -np.exp(-1.0 / (release_s * sr))], impulses)
    return (1.0 - depth * np.clip(env, 0.0, 1.0)).astype(np.float32)


def _fx(part: str, score: Score, sr: int) -> pb.Pedalboard:
    import pedalboard as pb

    g = score.genre
    chain: list = []
    if part == "chords":
        if g.chords == "guitar":
            # Crunch rather than fuzz, through a dark cabinet: heavy clipping's odd harmonics
            # stack major thirds on minor chords.
            chain += [
                pb.Distortion(drive_db=4.0),
                pb.LadderFilter(mode=pb.LadderFilter.Mode.LPF12, cutoff_hz=2800.0),
                pb.HighpassFilter(90.0),
            ]
        else:
            chain += [pb.HighpassFilter(140.0)]
        chain += [pb.Reverb(room_size=0.5, damping=0.6, wet_level=0.15, dry_level=0.85, width=1.0)]
    elif part == "lead":
        if g.lead == "guitar":
            chain += [pb.Distortion(drive_db=6.0), pb.LowpassFilter(5000.0)]
        chain += [
            pb.Delay(delay_seconds=4 * score.step_s, feedback=0.25, mix=0.15),
            pb.Reverb(room_size=0.4, wet_level=0.16, dry_level=0.85, width=0.8),
        ]
    elif part == "bass" and g.bass in ("picked", "upright", "saw", "reese", "wobble"):
        # Bass lives low in a mix; its string and saw harmonics above that only mask the
        # snare (and their fifths and thirds blur the key). A 24 dB/octave ladder low-pass.
        cutoff = {"wobble": 1200.0, "saw": 900.0}.get(g.bass, 500.0)
        chain += [
            pb.LadderFilter(
                mode=pb.LadderFilter.Mode.LPF24, cutoff_hz=cutoff, resonance=0.0, drive=1.0
            )
        ]
    elif part == "drums" and g.kit in ("acoustic", "jazz", "boom-bap", "dusty"):
        chain += [pb.Reverb(room_size=0.2, damping=0.7, wet_level=0.08, dry_level=0.95, width=0.6)]
    if g.name == "lo-fi" and part != "texture":
        chain += [pb.LowpassFilter(5200.0)]  # the tape-worn top end
    return pb.Pedalboard(chain)


def _vinyl(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Crackle (sparse clicks) over a bed of filtered hiss."""
    from scipy.signal import lfilter

    clicks = np.zeros(n, dtype=np.float32)
    count = int(n / sr * 12)
    clicks[rng.integers(0, n, count)] = rng.uniform(0.3, 1.0, count) * rng.choice([-1, 1], count)
    hiss = lfilter([0.1], [1.0, -0.9], rng.standard_normal(n)).astype(np.float32) * 0.05
    return clicks + hiss


def render_score(
    score: Score, sr: int = 44100, progress: Callable[[float], None] | None = None
) -> dict[str, np.ndarray]:
    """Stereo stems ``{part: (2, n) float32}``, exactly ``duration_s`` long, summing to the mix.

    Parts render side by side on two threads: synthesis is numpy and the effects are
    pedalboard, both of which release the GIL for the heavy lifting.
    """
    n = int(round(score.duration_s * sr))
    g = score.genre
    parts = ["drums", "bass", "chords", "lead"] + (["texture"] if g.name == "lo-fi" else [])
    duck = None
    if g.feel == "four-on-the-floor":
        kicks = [e.start_s for e in score.parts.get("drums", []) if e.voice == "kick"]
        duck = _sidechain(kicks, n, sr, depth=0.7 if g.name == "edm" else 0.45)
    levels = {**_LEVEL_DB, **_GENRE_LEVEL_DB.get(g.name, {})}
    done = [0]

    def one(part: str) -> np.ndarray:
        x = _render_part(part, score, n, sr)
        if duck is not None and part in ("bass", "chords"):
            x *= duck
        board = _fx(part, score, sr)
        if len(board):
            x = board(x, sr, reset=True)
        rms_db = _active_rms_db(x, sr)
        if rms_db > -119.0:
            x = x * np.float32(10 ** ((levels[part] - rms_db) / 20.0))
        done[0] += 1
        if progress:
            progress(0.95 * done[0] / len(parts))
        return np.ascontiguousarray(x, dtype=np.float32)

    with ThreadPoolExecutor(max_workers=2) as pool:
        stems = dict(zip(parts, pool.map(one, parts), strict=True))
    _fade_in(stems, sr, min(1.5, score.bar_s / 2, 0.15 * score.duration_s))
    _fade_out(stems, sr, min(2.0, 0.1 * score.duration_s))
    if progress:
        progress(1.0)
    return stems


def _render_part(part: str, score: Score, n: int, sr: int) -> np.ndarray:
    """One part, dry, as stereo ``(2, n)``: notes placed, panned and widened."""
    g = score.genre
    stereo = np.zeros((2, n), dtype=np.float32)
    if part == "drums":
        groups: dict[float, list[NoteEvent]] = {}
        for e in score.parts.get("drums", []):
            groups.setdefault(_DRUM_PAN.get(e.voice, 0.0), []).append(e)
        for pan, events in groups.items():
            _add_panned(
                stereo,
                _place(events, n, sr, lambda e: render_drum(g.kit, e.voice, sr, score.seed % 7)),
                pan,
            )
        return stereo
    if part == "texture":
        _add_panned(stereo, _vinyl(n, sr, np.random.default_rng(score.seed + 1)), 0.0)
        return stereo
    voice = {
        "bass": _SYNTH_VOICE.get(g.bass, g.bass),
        "chords": g.chords,
        "lead": {"saw": "saw_lead"}.get(g.lead, g.lead),
    }[part]
    cache: dict[tuple, np.ndarray] = {}
    bright = score.brightness
    lfo_hz = score.bpm / 60.0 * 2.0  # wobble in eighth notes

    def render(e: NoteEvent) -> np.ndarray:
        # Lengths to 10 ms: repeated notes then share one rendering.
        key = (e.pitch, round(e.duration_s, 2), e.glide_from)
        if key not in cache:
            note_seed = zlib.crc32(
                repr((score.seed, voice, key)).encode()
            )  # stable across processes
            cache[key] = render_note(
                voice,
                e.pitch,
                key[1],
                sr,
                seed=note_seed,
                brightness=bright,
                glide_from=e.glide_from,
                lfo_hz=lfo_hz,
            )
        return cache[key]

    mono = _place(score.parts.get(part, []), n, sr, render)
    if part == "chords":
        # Double-tracked guitars / a little Haas width on keys and pads.
        delay = int((0.012 if g.chords == "guitar" else 0.007) * sr)
        stereo[0] = mono
        stereo[1, delay:] = mono[:-delay]
        return stereo
    _add_panned(stereo, mono, 0.0 if part == "bass" else 0.1)
    return stereo


def _fade_in(stems: dict[str, np.ndarray], sr: int, fade_s: float, floor_db: float = -80.0) -> None:
    """Swell in from silence, evenly in decibels: the intro rises like a fader pushed up,
    with no instant jump from nothing to full level at the first sample (which an onset
    detector would take for the loudest hit of the track)."""
    k = int(fade_s * sr)
    if k <= 0:
        return
    ramp = (10 ** (np.linspace(floor_db, 0.0, k) / 20.0)).astype(np.float32)
    for x in stems.values():
        x[:, :k] *= ramp


def _fade_out(stems: dict[str, np.ndarray], sr: int, fade_s: float) -> None:
    k = int(fade_s * sr)
    if k <= 0:
        return
    ramp = np.linspace(1.0, 0.0, k, dtype=np.float32) ** 2
    for x in stems.values():
        x[:, -k:] *= ramp


def mix_stems(stems: dict[str, np.ndarray]) -> np.ndarray:
    return np.sum(list(stems.values()), axis=0).astype(np.float32)
