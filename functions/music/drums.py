"""Drums for the procedural engine: synthesised kits and each genre family's bar patterns.

Offers:
- ``render_drum(kit, voice, sr, seed)``: one hit of a kit piece (kick, snare, clap, hat, ...),
  synthesised (pitch-swept sine kicks, tone + filtered-noise snares, metallic square-wave
  cymbals, multi-burst claps), mono float32.
- ``bar_pattern(feel, section, bar_in_phrase, rng, density)``: the hits of one bar as
  :class:`DrumHit` (position in sixteenths, voice, velocity). Feels: ``half-time`` (trap,
  dubstep: snare on 3, hi-hat rolls), ``drill`` (syncopated snares, triplet hats), ``boom-bap``,
  ``four-on-the-floor``, ``two-step`` (drum and bass breaks), ``rnb``, ``backbeat``, ``swing``.
- ``GM_DRUMS``: General MIDI note numbers for the MIDI export.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

GM_DRUMS = {
    "kick": 36, "rim": 37, "snare": 38, "clap": 39, "snap": 39, "hat": 42, "tom": 45,
    "open_hat": 46, "crash": 49, "ride": 51, "shaker": 70,
}  # fmt: skip

# Kit pieces: kick (start Hz, end Hz, pitch decay s, amp decay s, click), snare (tone Hz,
# tone decay, noise decay, noise highpass Hz), hats (highpass Hz, closed decay s).
_BASE_KIT = {
    "kick": (150.0, 50.0, 0.035, 0.32, 0.3),
    "snare": (190.0, 0.08, 0.16, 500.0),
    "hat": (7000.0, 0.045),
}
_KITS = {
    "808": {"kick": (160.0, 48.0, 0.04, 0.5, 0.2), "hat": (8000.0, 0.035)},
    "dusty": {
        "kick": (110.0, 50.0, 0.03, 0.25, 0.1),
        "snare": (180.0, 0.06, 0.14, 400.0),
        "hat": (5000.0, 0.03),
    },
    "boom-bap": {"kick": (140.0, 52.0, 0.03, 0.3, 0.5), "snare": (200.0, 0.08, 0.2, 450.0)},
    "909": {
        "kick": (220.0, 50.0, 0.022, 0.35, 0.35),
        "snare": (210.0, 0.06, 0.15, 700.0),
        "hat": (8000.0, 0.05),
    },
    "breaks": {
        "kick": (170.0, 58.0, 0.025, 0.2, 0.5),
        "snare": (230.0, 0.06, 0.15, 600.0),
        "hat": (7500.0, 0.035),
    },
    "acoustic": {
        "kick": (120.0, 55.0, 0.03, 0.3, 0.4),
        "snare": (180.0, 0.1, 0.2, 450.0),
        "hat": (6500.0, 0.06),
    },
    "jazz": {
        "kick": (100.0, 55.0, 0.03, 0.25, 0.05),
        "snare": (200.0, 0.03, 0.3, 600.0),
        "hat": (6000.0, 0.05),
    },
    "rnb": {"kick": (130.0, 48.0, 0.04, 0.4, 0.15), "snare": (220.0, 0.05, 0.12, 600.0)},
    "pop": {"kick": (150.0, 52.0, 0.03, 0.3, 0.4), "snare": (200.0, 0.08, 0.18, 500.0)},
    "dubstep": {"kick": (180.0, 45.0, 0.04, 0.45, 0.4), "snare": (220.0, 0.1, 0.25, 450.0)},
}
VOICES = (
    "kick",
    "snare",
    "clap",
    "snap",
    "rim",
    "hat",
    "open_hat",
    "ride",
    "crash",
    "tom",
    "shaker",
)


def _kit(kit: str, piece: str) -> tuple:
    return _KITS.get(kit, {}).get(piece, _BASE_KIT[piece])


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, n)


def _band(x: np.ndarray, sr: int, low_hz: float | None, high_hz: float | None) -> np.ndarray:
    from scipy.signal import butter, sosfilt  # off module load: the job registry imports this

    nyq = 0.49 * sr
    if low_hz and high_hz:
        sos = butter(2, [low_hz, min(high_hz, nyq)], btype="bandpass", fs=sr, output="sos")
    elif low_hz:
        sos = butter(2, low_hz, btype="highpass", fs=sr, output="sos")
    else:
        sos = butter(2, min(high_hz or nyq, nyq), btype="lowpass", fs=sr, output="sos")
    return sosfilt(sos, x)


def _metal(n: int, sr: int) -> np.ndarray:
    """The 808's cymbal: six detuned square waves at inharmonic ratios."""
    t = np.arange(n) / sr
    freqs = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)
    return sum(np.sign(np.sin(2 * np.pi * f * t)) for f in freqs) / 6.0


@functools.lru_cache(maxsize=256)
def render_drum(kit: str, voice: str, sr: int, seed: int = 0) -> np.ndarray:
    """One hit of ``voice`` from ``kit``, mono float32 peaking near 1.0 (cached: hits repeat)."""
    rng = np.random.default_rng(seed)

    def env(n: int, decay_s: float, attack_s: float = 0.0005) -> np.ndarray:
        t = np.arange(n) / sr
        return np.clip(t / attack_s, 0, 1) * np.exp(-t / decay_s)

    if voice in ("kick", "tom"):
        f0, f1, pdec, adec, click = _kit(kit, "kick")
        if voice == "tom":
            f0, f1, adec, click = f1 * 3.0, f1 * 2.0, 0.25, 0.1
        n = int((adec * 5) * sr)
        t = np.arange(n) / sr
        freq = f1 + (f0 - f1) * np.exp(-t / pdec)
        body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * env(n, adec)
        k = int(0.004 * sr)
        body[:k] += click * _band(_noise(k, rng), sr, 2000, None) * np.linspace(1, 0, k)
        out = np.tanh(1.5 * body)
    elif voice in ("snare", "rim"):
        tone_hz, tdec, ndec, hp = _kit(kit, "snare")
        if voice == "rim":
            tone_hz, tdec, ndec, hp = tone_hz * 2.2, 0.02, 0.02, 3000.0
        n = int(max(tdec, ndec) * 6 * sr)
        t = np.arange(n) / sr
        tone = np.sin(2 * np.pi * tone_hz * t) * env(n, tdec) + 0.5 * np.sin(
            2 * np.pi * tone_hz * 1.6 * t
        ) * env(n, tdec * 0.6)
        noise = _band(_noise(n, rng), sr, hp, None) * env(n, ndec)
        out = 0.6 * tone + noise
    elif voice in ("clap", "snap"):
        n = int(0.35 * sr)
        burst = np.zeros(n)
        spacing = int(0.011 * sr)
        bursts = 3 if voice == "clap" else 1
        for i in range(bursts):
            burst[i * spacing :] += env(n - i * spacing, 0.006)
        tail = env(n, 0.12 if voice == "clap" else 0.04)
        out = _band(_noise(n, rng), sr, 600, 3500) * (burst + 0.5 * tail)
    elif voice in ("hat", "open_hat"):
        hp, dec = _kit(kit, "hat")
        dec = dec * (6.0 if voice == "open_hat" else 1.0)
        n = int(dec * 6 * sr)
        src = 0.6 * _metal(n, sr) + 0.4 * _noise(n, rng)
        out = _band(src, sr, hp, None) * env(n, dec)
    elif voice == "ride":
        n = int(1.6 * sr)
        t = np.arange(n) / sr
        src = _band(0.7 * _metal(n, sr) + 0.3 * _noise(n, rng), sr, 3000, 9000) * env(n, 0.6)
        out = src + 0.3 * np.sin(2 * np.pi * 3200 * t) * env(n, 0.25)
    elif voice == "crash":
        n = int(2.0 * sr)
        out = _band(0.5 * _metal(n, sr) + 0.5 * _noise(n, rng), sr, 4000, None) * env(n, 0.7, 0.002)
    elif voice == "shaker":
        n = int(0.12 * sr)
        out = _band(_noise(n, rng), sr, 5000, 11000) * env(n, 0.03, 0.006)
    else:
        raise ValueError(f"unknown drum voice {voice!r}")
    out = np.asarray(out, dtype=np.float64)
    return (out / (np.max(np.abs(out)) + 1e-9)).astype(np.float32)


@dataclass(frozen=True)
class DrumHit:
    step: float  # position in sixteenths from the bar's start (fractions: rolls and triplets)
    voice: str
    velocity: float


def _hats(steps, velocity_on_beat: float, velocity_off: float, voice: str = "hat") -> list[DrumHit]:
    return [
        DrumHit(float(s), voice, velocity_on_beat if s % 4 == 0 else velocity_off) for s in steps
    ]


def _roll(start: float, length: float, division: float, voice: str = "hat") -> list[DrumHit]:
    """A roll from ``start`` for ``length`` sixteenths, ``division`` hits per sixteenth, rising."""
    count = int(round(length * division))
    return [
        DrumHit(start + i / division, voice, 0.45 + 0.4 * i / max(count - 1, 1))
        for i in range(count)
    ]


def bar_pattern(
    feel: str, section: str, bar_in_phrase: int, rng: np.random.Generator, density: float = 0.7
) -> list[DrumHit]:
    """The drum hits of one bar for a feel in a section (``intro``, ``loop``, ``variation``, ``outro``).

    ``bar_in_phrase`` (0..3) places fills and crashes on four-bar phrases; ``density`` (0..1, from
    the mood) sets how often rolls, ghost notes and fills appear. ``rng`` makes it repeatable.
    """
    hits: list[DrumHit] = []
    end_of_phrase = bar_in_phrase == 3
    fill = section == "variation" and end_of_phrase and rng.random() < 0.4 + 0.5 * density
    if feel == "half-time":
        kick = [[0, 10], [0, 7, 10], [0, 3, 10], [0, 11, 14]][rng.integers(4)]
        hits += [DrumHit(s, "kick", 1.0) for s in kick]
        hits += [DrumHit(8, "snare", 1.0), DrumHit(8, "clap", 0.8)]
        # A rim on 2 and 4 keeps the pulse under the half-time snare.
        hits += [DrumHit(4, "rim", 0.9), DrumHit(12, "rim", 0.9)]
        hats = _hats(range(0, 16, 2), 0.8, 0.55)
        if rng.random() < 0.25 + 0.6 * density:  # a roll on beat 2 or 4 (trap's signature)
            beat = int(rng.choice([4, 12]))
            hats = [h for h in hats if not beat <= h.step < beat + 4]
            hats += _roll(beat, 4.0, float(rng.choice([1.5, 2.0, 3.0])))
        hits += hats
        if fill:
            hits += [DrumHit(s, "snare", 0.5 + 0.1 * i) for i, s in enumerate((13, 14, 15))]
    elif feel == "drill":
        hits += [DrumHit(0, "kick", 1.0), DrumHit(float(rng.choice([6, 11])), "kick", 0.9)]
        hits += [
            DrumHit(8, "snare", 1.0),
            DrumHit(8, "clap", 0.7),
            DrumHit(4, "rim", 0.9),
            DrumHit(12, "rim", 0.8),
        ]
        if bar_in_phrase % 2 == 1:
            hits.append(DrumHit(14, "snare", 0.85))  # the late, syncopated second snare
        hits += _hats(range(0, 12, 2), 0.8, 0.55)
        # The drill hat: a triplet run into the next bar, every other bar.
        hits += _roll(12, 4, 1.5) if bar_in_phrase % 2 == 1 else _hats([12, 14], 0.8, 0.55)
    elif feel == "boom-bap":
        kick = [[0, 8, 10], [0, 7, 8], [0, 8, 11], [0, 3, 8]][rng.integers(4)]
        hits += [DrumHit(s, "kick", 1.0 if s % 4 == 0 else 0.7) for s in kick]
        hits += [DrumHit(4, "snare", 1.0), DrumHit(12, "snare", 1.0)]
        if rng.random() < density:
            hits.append(DrumHit(float(rng.choice([7, 15])), "snare", 0.3))  # ghost note
        step = 1 if density > 0.6 else 2
        hits += _hats(range(0, 16, step), 0.75, 0.4)
    elif feel == "four-on-the-floor":
        hits += [DrumHit(s, "kick", 1.0) for s in (0, 4, 8, 12)]
        hits += [DrumHit(4, "clap", 0.9), DrumHit(12, "clap", 0.9)]
        hits += [DrumHit(s, "open_hat", 0.6) for s in (2, 6, 10, 14)]
        hits += [DrumHit(s, "hat", 0.35) for s in (1, 3, 5, 7, 9, 11, 13, 15)]
        if section == "variation":
            hits += [DrumHit(s, "ride", 0.4) for s in range(0, 16, 2)]
        if fill:
            hits += _roll(8, 8, 1.0, "snare")
    elif feel == "two-step":
        hits += [DrumHit(0, "kick", 1.0), DrumHit(10, "kick", 0.95)]
        hits += [DrumHit(4, "snare", 1.0), DrumHit(12, "snare", 1.0)]
        hits += [DrumHit(s, "snare", 0.28) for s in (7, 9) if rng.random() < 0.3 + 0.6 * density]
        hits += _hats(range(0, 16, 2), 0.7, 0.5)
        hits += [DrumHit(s, "shaker", 0.3) for s in range(1, 16, 2)]
        if fill:
            hits += _roll(12, 4, 2.0, "snare")
    elif feel == "rnb":
        kick = [[0, 8, 10], [0, 3, 8], [0, 8, 9]][rng.integers(3)]
        hits += [DrumHit(s, "kick", 0.95 if s % 4 == 0 else 0.65) for s in kick]
        hits += [
            DrumHit(4, "snap", 0.9),
            DrumHit(12, "snap", 0.9),
            DrumHit(4, "snare", 0.5),
            DrumHit(12, "snare", 0.5),
        ]
        hits += _hats(range(0, 16), 0.55, 0.3)
        if rng.random() < density:
            hits += _roll(14, 2, 2.0)
    elif feel == "backbeat":
        kick = [[0, 8], [0, 6, 8], [0, 8, 10], [0, 7, 8, 10]][rng.integers(4)]
        hits += [DrumHit(s, "kick", 1.0 if s % 4 == 0 else 0.7) for s in kick]
        hits += [DrumHit(4, "snare", 1.0), DrumHit(12, "snare", 1.0)]
        hits += _hats(range(0, 16, 2), 0.7, 0.5)
        if bar_in_phrase == 0 and section in ("loop", "variation"):
            hits.append(DrumHit(0, "crash", 0.7))
        if fill:
            hits = [h for h in hits if h.step < 12 or h.voice == "kick"]
            hits += [DrumHit(s, "tom", 0.7 + 0.05 * i) for i, s in enumerate((12, 13, 14, 15))]
    elif feel == "swing":
        # Spang-a-lang ride, hi-hat foot on 2 and 4, feathered kick and brushed comping.
        hits += [DrumHit(s, "ride", 0.75 if s % 8 == 0 else 0.65) for s in (0, 4, 6, 8, 12, 14)]
        hits += [DrumHit(4, "hat", 0.55), DrumHit(12, "hat", 0.55)]
        hits += [DrumHit(s, "kick", 0.35) for s in (0, 4, 8, 12)]
        hits += [DrumHit(4, "snare", 0.45), DrumHit(12, "snare", 0.45)]  # brushes on 2 and 4
        hits += [
            DrumHit(float(s), "snare", 0.25)
            for s in rng.choice([2, 6, 10, 14], size=2, replace=False)
        ]
    else:
        raise ValueError(f"unknown feel {feel!r}")

    if section == "intro":
        # Intros hold back the backbeat: kick and cymbals only.
        hits = [h for h in hits if h.voice not in ("snare", "clap", "snap", "tom", "crash")]
    elif section == "outro":
        # Outros keep the groove as the track fades, without fills, rolls or crashes.
        hits = [h for h in hits if h.voice not in ("tom", "crash") and h.step == int(h.step)]
    return hits


def apply_swing(step: float, swing: float, unit: int) -> float:
    """Delay off-beat subdivisions: with unit 16 every odd sixteenth, with unit 8 every off-beat
    eighth, by ``swing`` of one subdivision (1/3 turns straight pairs into a triplet feel)."""
    if swing <= 0 or step != int(step):
        return step
    sub = 1 if unit == 16 else 2
    if int(step) % (2 * sub) == sub:
        return step + swing * sub
    return step
