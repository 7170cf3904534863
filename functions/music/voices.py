"""Synthesised instrument voices for the procedural engine: one note in, mono samples out.

Every voice is real, cheap DSP chosen so a one-minute beat renders many times faster than real
time: band-limited wavetables (saw/square built from their harmonics, so nothing aliases),
FM pairs (electric piano, bells), additive partials (piano, vibraphone, organ) and Karplus-Strong
plucked strings (computed one delay-line period at a time, so the recursion is vectorised).

Offers ``render_note(voice, pitch_midi, duration_s, sr, ...)`` for ``VOICES`` and ``adsr``.
Notes ring past ``duration_s`` by the voice's release; callers add them where the note starts.
"""

from __future__ import annotations

import functools

import numpy as np

from functions.music.theory import midi_to_hz

TABLE_SIZE = 2048


@functools.lru_cache(maxsize=256)
def _wavetable(shape: str, harmonics: int) -> np.ndarray:
    """One period of a band-limited ``saw`` or ``square`` with ``harmonics`` partials (+1 wrap)."""
    k = np.arange(1, harmonics + 1)
    if shape == "square":
        k = k[k % 2 == 1]
    phase = np.arange(TABLE_SIZE) / TABLE_SIZE
    # Sum sin(2 pi k phase)/k; a Lanczos sigma factor tames the Gibbs ripple at the edges.
    sigma = np.sinc(k / (harmonics + 1))
    table = (np.sin(2 * np.pi * np.outer(k, phase)) * (sigma / k)[:, None]).sum(axis=0)
    table /= np.max(np.abs(table)) + 1e-12
    return np.append(table, table[0]).astype(np.float32)


def _phase(freq_hz: np.ndarray | float, n: int, sr: int) -> np.ndarray:
    """Running phase in cycles for a constant or per-sample frequency."""
    if np.isscalar(freq_hz):
        return np.arange(n) * (float(freq_hz) / sr)
    return np.cumsum(np.asarray(freq_hz, dtype=np.float64)) / sr


def wavetable_osc(
    shape: str,
    freq_hz: np.ndarray | float,
    n: int,
    sr: int,
    max_harmonics: int = 60,
    cutoff_hz: float | None = None,
) -> np.ndarray:
    """A band-limited oscillator: partials stop below Nyquist (and below ``cutoff_hz`` if given)."""
    f_top = float(np.max(freq_hz)) if not np.isscalar(freq_hz) else float(freq_hz)
    limit = 0.45 * sr if cutoff_hz is None else min(0.45 * sr, cutoff_hz)
    harmonics = int(np.clip(limit // max(f_top, 1.0), 1, max_harmonics))
    table = _wavetable(shape, harmonics)
    pos = (_phase(freq_hz, n, sr) % 1.0) * TABLE_SIZE
    i = pos.astype(np.int64)
    frac = (pos - i).astype(np.float32)
    return table[i] * (1.0 - frac) + table[i + 1] * frac


def adsr(
    n: int,
    sr: int,
    attack_s: float,
    decay_s: float,
    sustain: float,
    release_s: float,
    gate_s: float,
) -> np.ndarray:
    """Piecewise-linear attack, exponential decay to ``sustain``, linear release after the gate."""
    t = np.arange(n) / sr
    att = np.clip(t / max(attack_s, 1e-4), 0.0, 1.0)
    dec = sustain + (1.0 - sustain) * np.exp(-np.maximum(t - attack_s, 0.0) / max(decay_s, 1e-4))
    env = att * dec
    rel = np.clip(1.0 - (t - gate_s) / max(release_s, 1e-4), 0.0, 1.0)
    return (env * rel).astype(np.float32)


def karplus_strong(
    freq_hz: float,
    n: int,
    sr: int,
    rng: np.random.Generator,
    decay: float = 0.996,
    brightness: float = 0.5,
) -> np.ndarray:
    """A plucked string: a noise burst circulating in a damped, tuned delay line.

    The loop filter averages neighbouring samples (the string's damping) and interpolates the
    fractional part of the period, so the pitch is exact. The recursion only reaches back one
    period, so each period-long block is one vectorised step.
    """
    period = sr / freq_hz
    # Taps at m, m+1, m+2 weighted (1-frac)/2, 1/2, frac/2 delay by m + 0.5 + frac = period.
    m = int(np.floor(period - 0.5))
    frac = float(np.clip(period - 0.5 - m, 0.0, 1.0))
    taps = np.array([0.5 * (1.0 - frac), 0.5, 0.5 * frac]) * decay
    burst = rng.uniform(-1.0, 1.0, m + 2)
    if brightness < 1.0:  # a darker excitation (one-pole lowpass) for a softer pluck
        from scipy.signal import lfilter  # off module load: the job registry imports this

        a = 1.0 - 0.8 * (1.0 - brightness)
        burst = lfilter([a], [1.0, -(1.0 - a)], burst)
    y = np.zeros(n + m + 2)
    y[: m + 2] = burst
    pos = m + 2
    while pos < len(y):
        end = min(pos + m, len(y))
        span = end - pos
        y[pos:end] = (
            taps[0] * y[pos - m : pos - m + span]
            + taps[1] * y[pos - m - 1 : pos - m - 1 + span]
            + taps[2] * y[pos - m - 2 : pos - m - 2 + span]
        )
        pos = end
    out = y[:n]
    return (out / (np.max(np.abs(out)) + 1e-9)).astype(np.float32)


def _fm(freq_hz: float, n: int, sr: int, ratio: float, index: np.ndarray) -> np.ndarray:
    t = np.arange(n) / sr
    return np.sin(2 * np.pi * freq_hz * t + index * np.sin(2 * np.pi * freq_hz * ratio * t)).astype(
        np.float32
    )


def _additive(
    freq_hz: float, n: int, sr: int, partials: list[tuple[float, float, float]]
) -> np.ndarray:
    """Sum of (ratio, amplitude, decay_s) partials, each below Nyquist."""
    t = np.arange(n) / sr
    out = np.zeros(n, dtype=np.float32)
    for ratio, amp, decay_s in partials:
        f = freq_hz * ratio
        if f < 0.45 * sr:
            out += (amp * np.sin(2 * np.pi * f * t) * np.exp(-t / decay_s)).astype(np.float32)
    return out


def _glide_freq(
    pitch_midi: float, glide_from: float | None, n: int, sr: int, glide_s: float = 0.09
) -> np.ndarray | float:
    if glide_from is None:
        return float(midi_to_hz(pitch_midi))
    t = np.arange(n) / sr
    curve = np.clip(t / glide_s, 0.0, 1.0)
    midi = glide_from + (pitch_midi - glide_from) * (1 - (1 - curve) ** 2)
    return midi_to_hz(midi)


# Release tail (seconds) each voice rings after its gate.
RELEASE_S = {
    "808": 0.05, "sub": 0.06, "saw": 0.05, "reese": 0.08, "rumble": 0.05, "wobble": 0.05,
    "upright": 0.15, "picked": 0.1, "pad": 0.4, "epiano": 0.35, "piano": 0.5, "stab": 0.08,
    "supersaw": 0.25, "guitar": 0.12, "strings": 0.45, "organ": 0.08, "bell": 0.9,
    "pluck": 0.25, "saw_lead": 0.1, "square": 0.08, "sine": 0.12, "vibes": 0.8,
}  # fmt: skip
VOICES = tuple(RELEASE_S)


def render_note(
    voice: str,
    pitch_midi: float,
    duration_s: float,
    sr: int,
    *,
    seed: int = 0,
    brightness: float = 0.5,
    glide_from: float | None = None,
    lfo_hz: float = 0.0,
) -> np.ndarray:
    """One note of ``voice`` at ``pitch_midi`` held for ``duration_s``; mono float32 at ``sr``.

    ``brightness`` (0..1) opens filters and adds partials; ``glide_from`` slides the pitch in
    (808 slides); ``lfo_hz`` sets the wobble rate. Peak level is about 1.0.
    """
    gate = max(duration_s, 0.02)
    rel = RELEASE_S[voice]
    n = int((gate + rel) * sr)
    f = float(midi_to_hz(pitch_midi))
    rng = np.random.default_rng(seed)
    bright_cut = 400.0 + 7000.0 * brightness**2
    if voice == "808":
        freq = _glide_freq(pitch_midi, glide_from, n, sr)
        phase = 2 * np.pi * _phase(freq, n, sr)
        # A long sine boom; the octave partial (not odd harmonics, which would read as the
        # fifth and the major third) makes the sub audible on small speakers.
        env = adsr(n, sr, 0.003, 0.7, 0.3, rel, gate)
        out = (np.sin(phase) + 0.3 * np.sin(2 * phase)) * env
    elif voice == "sub":
        t = np.arange(n) / sr
        out = (np.sin(2 * np.pi * f * t) + 0.12 * np.sin(4 * np.pi * f * t)) * adsr(
            n, sr, 0.01, 0.4, 0.8, rel, gate
        )
    elif voice in ("saw", "rumble"):
        cut = 250.0 + 900.0 * brightness if voice == "saw" else 250.0
        tone = wavetable_osc("saw", f, n, sr, cutoff_hz=cut) + 0.6 * np.sin(
            2 * np.pi * f * np.arange(n) / sr
        )
        out = tone * adsr(n, sr, 0.004, 0.18 if voice == "saw" else 0.12, 0.5, rel, gate)
    elif voice == "reese":
        tone = sum(wavetable_osc("saw", f * d, n, sr, cutoff_hz=600.0) for d in (0.993, 1.0, 1.007))
        out = (tone / 2.2 + 0.5 * np.sin(2 * np.pi * f * np.arange(n) / sr)) * adsr(
            n, sr, 0.02, 0.5, 0.85, rel, gate
        )
    elif voice == "wobble":
        rich = wavetable_osc("saw", f, n, sr, cutoff_hz=1500.0)
        dark = np.sin(2 * np.pi * f * np.arange(n) / sr).astype(np.float32)
        lfo = 0.5 - 0.5 * np.cos(2 * np.pi * max(lfo_hz, 0.5) * np.arange(n) / sr)
        out = (rich * lfo + dark * (1.0 - 0.5 * lfo)) * adsr(n, sr, 0.01, 0.5, 0.9, rel, gate)
    elif voice in ("upright", "picked"):
        string = karplus_strong(
            f,
            n,
            sr,
            rng,
            decay=0.995 if voice == "upright" else 0.997,
            brightness=0.25 if voice == "upright" else 0.6,
        )
        body = np.sin(2 * np.pi * f * np.arange(n) / sr) * np.exp(-np.arange(n) / sr / 0.5)
        out = (string + 0.5 * body) * adsr(n, sr, 0.002, 10.0, 1.0, rel, gate)
    elif voice == "pad":
        tone = sum(
            wavetable_osc("saw", f * d, n, sr, cutoff_hz=bright_cut * 0.5, max_harmonics=24)
            for d in (0.995, 1.005)
        )
        out = tone / 2.0 * adsr(n, sr, 0.18, 1.0, 0.8, rel, gate)
    elif voice == "strings":
        vib = f * (1.0 + 0.004 * np.sin(2 * np.pi * 5.0 * np.arange(n) / sr))
        tone = wavetable_osc("saw", vib, n, sr, cutoff_hz=bright_cut * 0.6, max_harmonics=30)
        out = tone * adsr(n, sr, 0.25, 1.0, 0.85, rel, gate)
    elif voice == "epiano":
        t = np.arange(n) / sr
        index = 1.2 * np.exp(-t / 0.35) + 0.15 + 0.6 * brightness * np.exp(-t / 0.1)
        out = _fm(f, n, sr, 1.0, index) * adsr(n, sr, 0.002, 1.6, 0.0, rel, gate)
        out *= 1.0 + 0.15 * np.sin(2 * np.pi * 4.5 * t)  # the Rhodes' tremolo
    elif voice == "piano":
        b = 0.0004  # string stiffness: partials run slightly sharp
        partials = [(k * np.sqrt(1 + b * k * k), 1.0 / k**1.8, 2.2 / k**0.7) for k in range(1, 9)]
        out = _additive(f, n, sr, partials) * adsr(n, sr, 0.002, 10.0, 1.0, rel, gate)
    elif voice == "stab":
        tone = wavetable_osc("saw", f, n, sr, cutoff_hz=bright_cut, max_harmonics=30)
        out = tone * adsr(n, sr, 0.003, 0.16, 0.1, rel, gate)
    elif voice == "supersaw":
        detunes = (0.985, 0.993, 1.0, 1.007, 1.015)
        tone = sum(
            wavetable_osc("saw", f * d, n, sr, cutoff_hz=bright_cut, max_harmonics=30)
            for d in detunes
        )
        out = tone / 3.0 * adsr(n, sr, 0.01, 1.0, 0.9, rel, gate)
    elif voice == "guitar":
        string = karplus_strong(f, n, sr, rng, decay=0.998, brightness=0.35)
        out = string * adsr(n, sr, 0.002, 10.0, 1.0, rel, gate)
    elif voice == "organ":
        partials = [
            (1.0, 1.0, 30.0),
            (2.0, 0.6, 30.0),
            (3.0, 0.4, 30.0),
            (4.0, 0.25, 30.0),
            (0.5, 0.5, 30.0),
        ]
        out = _additive(f, n, sr, partials) * adsr(n, sr, 0.01, 1.0, 1.0, rel, gate)
    elif voice == "bell":
        t = np.arange(n) / sr
        # A 3:1 FM pair keeps the partials harmonic: a glockenspiel-like bell with a clear pitch.
        out = _fm(f, n, sr, 3.0, 1.0 * np.exp(-t / 0.3)) * adsr(n, sr, 0.002, 0.7, 0.0, rel, gate)
    elif voice == "pluck":
        out = karplus_strong(f, n, sr, rng, decay=0.993, brightness=0.4 + 0.5 * brightness)
    elif voice in ("saw_lead", "square"):
        vib = f * (
            1.0
            + 0.005
            * np.sin(2 * np.pi * 5.5 * np.arange(n) / sr)
            * np.clip(np.arange(n) / sr / 0.3, 0, 1)
        )
        tone = wavetable_osc(
            "square" if voice == "square" else "saw",
            vib,
            n,
            sr,
            cutoff_hz=bright_cut,
            max_harmonics=24,
        )
        out = tone * adsr(n, sr, 0.008, 0.3, 0.7, rel, gate)
    elif voice == "sine":
        t = np.arange(n) / sr
        out = (np.sin(2 * np.pi * f * t) + 0.08 * np.sin(6 * np.pi * f * t)) * adsr(
            n, sr, 0.03, 0.5, 0.75, rel, gate
        )
    elif voice == "vibes":
        t = np.arange(n) / sr
        out = _additive(f, n, sr, [(1.0, 1.0, 1.4), (3.98, 0.25, 0.3)])
        out = (
            out
            * (1.0 + 0.25 * np.sin(2 * np.pi * 5.0 * t))
            * adsr(n, sr, 0.002, 10.0, 1.0, rel, gate)
        )
    else:
        raise ValueError(f"unknown voice {voice!r}")
    return np.asarray(out, dtype=np.float32)
