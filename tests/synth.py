"""Synthesised test music with known ground truth (tempo, beats, downbeats, key).

``synth_song(bpm=120, key="A minor", duration_s=20)`` returns ``(Audio, truth)`` where ``truth``
has ``beats_s``, ``downbeats_s``, ``tempo_bpm``, ``key``. Drums (kick on 1 and 3, snare on 2 and 4,
hats on eighths), a root-note bass and the key's i-VI-III-VII (minor) or I-V-vi-IV (major)
progression, so key estimators and beat trackers have something musical to find.
"""

from __future__ import annotations

import numpy as np

from functions.audio_io import Audio

NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def parse_simple_key(key: str) -> tuple[int, str]:
    tonic, _, mode = key.partition(" ")
    return NOTE_NAMES.index(tonic), (mode or "major")


def _midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


def _env(n: int, sr: int, attack_s: float, decay_s: float) -> np.ndarray:
    t = np.arange(n) / sr
    a = np.clip(t / max(attack_s, 1e-4), 0, 1)
    return a * np.exp(-t / decay_s)


def synth_song(
    bpm: float = 120.0,
    key: str = "A minor",
    duration_s: float = 20.0,
    sr: int = 44100,
    stereo: bool = True,
    seed: int = 0,
    offset_s: float = 0.0,
    vocals: bool = False,
) -> tuple[Audio, dict]:
    rng = np.random.default_rng(seed)
    n = int(duration_s * sr)
    drums = np.zeros(n, np.float32)
    bass = np.zeros(n, np.float32)
    chords = np.zeros(n, np.float32)
    lead = np.zeros(n, np.float32)
    beat = 60.0 / bpm
    tonic, mode = parse_simple_key(key)
    if mode == "minor":
        degrees = [0, 8, 3, 10]  # i VI III VII
        qualities = ["min", "maj", "maj", "maj"]
        scale = [0, 2, 3, 5, 7, 8, 10]
    else:
        degrees = [0, 7, 9, 5]  # I V vi IV
        qualities = ["maj", "maj", "min", "maj"]
        scale = [0, 2, 4, 5, 7, 9, 11]
    beats = np.arange(offset_s, duration_s - 1e-6, beat)
    kick_len = int(0.25 * sr)
    tk = np.arange(kick_len) / sr
    kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-tk * 30)) * tk) * np.exp(-tk * 12)
    snare_len = int(0.18 * sr)
    snare = rng.standard_normal(snare_len) * np.exp(-np.arange(snare_len) / sr * 25) * 0.5
    hat_len = int(0.05 * sr)
    hat = np.diff(rng.standard_normal(hat_len + 1)) * np.exp(-np.arange(hat_len) / sr * 90) * 0.15

    def add(buf: np.ndarray, sig: np.ndarray, t0: float) -> None:
        i = int(round(t0 * sr))
        if i >= n:
            return
        j = min(n, i + len(sig))
        buf[i:j] += sig[: j - i].astype(np.float32)

    for bi, t in enumerate(beats):
        pos = bi % 4
        if pos in (0, 2):
            add(drums, kick * (1.0 if pos == 0 else 0.8), t)
        else:
            add(drums, snare, t)
        add(drums, hat, t)
        add(drums, hat * 0.6, t + beat / 2)
    bar = 4 * beat
    bars = np.arange(offset_s, duration_s - 1e-6, bar)
    for k, t0 in enumerate(bars):
        deg = degrees[k % 4]
        root = 48 + (tonic + deg) % 12
        third = 4 if qualities[k % 4] == "maj" else 3
        seg = int(bar * sr)
        tt = np.arange(seg) / sr
        env = np.clip(tt / 0.02, 0, 1) * np.exp(-tt / (bar * 0.9))
        ch = (
            sum(np.sin(2 * np.pi * _midi_hz(root + 12 + iv) * tt) for iv in (0, third, 7))
            * env
            * 0.12
        )
        add(chords, ch, t0)
        for q in range(4):
            tb = np.arange(int(beat * sr)) / sr
            b = np.sin(2 * np.pi * _midi_hz(root - 12) * tb) * _env(len(tb), sr, 0.005, 0.25) * 0.35
            add(bass, b, t0 + q * beat)
        if vocals:
            for q in range(4):
                m = 60 + tonic + scale[(k + q * 2) % 7]
                tl = np.arange(int(beat * sr * 0.9)) / sr
                vib = 0.3 * np.sin(2 * np.pi * 5.5 * tl)
                ph = 2 * np.pi * np.cumsum(_midi_hz(m) * 2 ** (vib / 12)) / sr
                v = (
                    (np.sin(ph) + 0.4 * np.sin(2 * ph) + 0.2 * np.sin(3 * ph))
                    * _env(len(tl), sr, 0.03, 0.6)
                    * 0.1
                )
                add(lead, v, t0 + q * beat)
    mix = drums * 0.6 + bass + chords + lead
    mix = mix / (np.max(np.abs(mix)) + 1e-9) * 0.8
    if stereo:
        left = mix + 0.05 * chords
        right = mix - 0.05 * chords
        samples = np.stack([left, right]).astype(np.float32)
        samples /= np.max(np.abs(samples)) / 0.8
    else:
        samples = mix[None, :].astype(np.float32)
    truth = {
        "tempo_bpm": float(bpm),
        "beats_s": beats.tolist(),
        "downbeats_s": beats[::4].tolist(),
        "key": f"{NOTE_NAMES[tonic]} {mode}",
        "stems": {"drums": drums, "bass": bass, "chords": chords, "lead": lead},
    }
    return Audio(samples, sr), truth


def tilted_noise(slope_db_per_oct: float, seconds: float = 6.0, sr: int = 44100) -> Audio:
    """Stereo noise whose spectrum falls (or rises) ``slope_db_per_oct`` per octave."""
    rng = np.random.default_rng(5)
    n = int(seconds * sr)
    spec = np.fft.rfft(rng.standard_normal((2, n)), axis=1)
    f = np.fft.rfftfreq(n, 1 / sr)
    shape = (np.maximum(f, 20.0) / 1000.0) ** (slope_db_per_oct / (20 * np.log10(2)))
    x = np.fft.irfft(spec * shape, n=n, axis=1)
    return Audio((0.1 * x / np.abs(x).max()).astype(np.float32), sr)


def sine_segments(
    segments: list[tuple[float, float]], freq_hz: float = 1000.0, sr: int = 48000
) -> Audio:
    """A stereo sine of ``freq_hz`` whose peak level steps through ``(dBFS, seconds)`` segments
    with a continuous phase (the EBU signals are built this way)."""
    levels = np.concatenate(
        [np.full(int(round(d * sr)), 10 ** (db / 20), np.float64) for db, d in segments]
    )
    x = levels * np.sin(2 * np.pi * freq_hz * np.arange(levels.size) / sr)
    return Audio(np.stack([x, x]).astype(np.float32), sr)
