"""Mixing 2-N tracks or stems into one stereo bus, coloured by a mix profile.

Offers:
- ``MIX_PROFILES``: every profile's settings, written down here and nowhere else
  (``balanced``, ``bass-heavy``, ``bright``, ``warm``), built into pedalboard chains by
  ``profile_chain(name)``: EQ, glue compression, saturation and a little reverb.
- ``MixInput``: one input with its gain (dB), pan (-1 left .. +1 right), mute and start offset.
- ``mix_tracks(inputs, profile) -> MixResult``: aligns rates and lengths, pans, sums, runs the
  profile's chain and guarantees the result never clips (true peak at most ``CEILING_DBTP``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from functions.audio_io import Audio, resample
from functions.audio_stream import match_channels
from functions.loudness import reconstructed_peak_dbtp
from shared.errors import InvalidInput

if TYPE_CHECKING:  # pedalboard loads on first use, not with the job registry
    import pedalboard as pb

CEILING_DBTP = -1.0
# The bus is brought to this RMS level before the chain, so that the compressor thresholds and
# saturation drives below mean the same thing whatever the inputs' levels.
BUS_RMS_DBFS = -20.0


@dataclass(frozen=True)
class MixProfile:
    """A profile's settings: EQ bands, compressor, saturation drive and reverb, all in units."""

    description: str
    highpass_hz: float
    low_shelf: tuple[float, float]  # (corner_hz, gain_db)
    mid_peak: tuple[float, float, float]  # (centre_hz, gain_db, q)
    high_shelf: tuple[float, float]  # (corner_hz, gain_db)
    compressor: tuple[float, float, float, float]  # (threshold_dbfs, ratio, attack_ms, release_ms)
    saturation_drive_db: float  # tanh waveshaper drive; 0 = off
    reverb: tuple[float, float, float]  # (room_size 0..1, damping 0..1, wet_level 0..1)
    lowpass_hz: float | None = None


MIX_PROFILES: dict[str, MixProfile] = {
    "balanced": MixProfile(
        description="Neutral: a little mud cut, gentle glue, a short room.",
        highpass_hz=30.0,
        low_shelf=(100.0, 0.0),
        mid_peak=(300.0, -1.5, 1.0),
        high_shelf=(10000.0, 1.0),
        compressor=(-18.0, 2.0, 20.0, 200.0),
        saturation_drive_db=0.0,
        reverb=(0.25, 0.5, 0.06),
    ),
    "bass-heavy": MixProfile(
        description="Enhanced low end for hip-hop/EDM: low shelf up, low-mids cleared, firmer glue.",
        highpass_hz=25.0,
        low_shelf=(90.0, 5.0),
        mid_peak=(400.0, -2.5, 1.0),
        high_shelf=(9000.0, 0.5),
        compressor=(-20.0, 3.0, 30.0, 150.0),
        saturation_drive_db=3.0,  # harmonics make the bass audible on small speakers
        reverb=(0.2, 0.6, 0.04),
    ),
    "bright": MixProfile(
        description="Pop/radio sheen: presence and air lifted, lows tidied, faster glue.",
        highpass_hz=40.0,
        low_shelf=(120.0, -1.5),
        mid_peak=(3000.0, 2.0, 0.8),
        high_shelf=(8000.0, 4.0),
        compressor=(-18.0, 2.5, 10.0, 120.0),
        saturation_drive_db=0.0,
        reverb=(0.3, 0.3, 0.08),
    ),
    "warm": MixProfile(
        description="Smooth, vintage: low-mid body, rolled-off highs, tape-like saturation, slow glue.",
        highpass_hz=30.0,
        low_shelf=(200.0, 2.5),
        mid_peak=(2500.0, -1.0, 0.7),
        high_shelf=(7000.0, -3.0),
        compressor=(-18.0, 2.0, 30.0, 300.0),
        saturation_drive_db=4.0,
        reverb=(0.5, 0.7, 0.1),
        lowpass_hz=16000.0,
    ),
}


# Filter corners are kept under this share of the sample rate: a biquad tuned at or above
# Nyquist is unstable (a 16 kHz low-pass at 22.05 kHz outputs inf), and a 22.05 kHz file has
# nothing up there to filter anyway.
MAX_CORNER_OF_RATE = 0.45


def profile_chain(name: str, sample_rate: int | None = None) -> pb.Pedalboard:
    """The pedalboard chain of profile ``name``; with ``sample_rate``, corners that would sit
    above ``MAX_CORNER_OF_RATE`` of it are lowered there (a low-pass there is dropped)."""
    import pedalboard as pb

    if name not in MIX_PROFILES:
        raise InvalidInput(
            f"Unknown mix profile '{name}'; choose from {', '.join(MIX_PROFILES)}.",
            code="BAD_PROFILE",
        )
    p = MIX_PROFILES[name]
    top_hz = MAX_CORNER_OF_RATE * sample_rate if sample_rate else math.inf

    def corner(hz: float) -> float:
        return min(hz, top_hz)

    chain: list[pb.Plugin] = [pb.HighpassFilter(cutoff_frequency_hz=corner(p.highpass_hz))]
    if p.low_shelf[1]:
        chain.append(
            pb.LowShelfFilter(cutoff_frequency_hz=corner(p.low_shelf[0]), gain_db=p.low_shelf[1])
        )
    if p.mid_peak[1]:
        chain.append(
            pb.PeakFilter(
                cutoff_frequency_hz=corner(p.mid_peak[0]), gain_db=p.mid_peak[1], q=p.mid_peak[2]
            )
        )
    if p.high_shelf[1]:
        chain.append(
            pb.HighShelfFilter(cutoff_frequency_hz=corner(p.high_shelf[0]), gain_db=p.high_shelf[1])
        )
    if p.lowpass_hz and p.lowpass_hz < top_hz:
        chain.append(pb.LowpassFilter(cutoff_frequency_hz=p.lowpass_hz))
    threshold, ratio, attack, release = p.compressor
    chain.append(
        pb.Compressor(threshold_db=threshold, ratio=ratio, attack_ms=attack, release_ms=release)
    )
    if p.saturation_drive_db:
        # tanh(drive * x) also raises the level by ~drive at low levels: undo that so the
        # saturation adds harmonics, not loudness.
        chain += [
            pb.Distortion(drive_db=p.saturation_drive_db),
            pb.Gain(gain_db=-p.saturation_drive_db),
        ]
    room, damping, wet = p.reverb
    if wet:
        chain.append(
            pb.Reverb(
                room_size=room, damping=damping, wet_level=wet, dry_level=1.0 - wet, width=1.0
            )
        )
    return pb.Pedalboard(chain)


@dataclass
class MixInput:
    """One input: ``pan`` -1 (left) .. +1 (right), constant power; ``offset_s`` delays its start."""

    audio: Audio
    gain_db: float = 0.0
    pan: float = 0.0
    mute: bool = False
    offset_s: float = 0.0
    name: str = ""


@dataclass
class MixResult:
    audio: Audio
    profile: str
    bus_gain_db: float  # gain applied to the summed bus before the profile chain
    safety_gain_db: float  # gain applied after it so the true peak stays at the ceiling
    true_peak_dbtp: float
    meta: dict[str, Any] = field(default_factory=dict)


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power balance: 0 dB on both sides at centre, +3 dB on one side when hard-panned."""
    theta = (min(1.0, max(-1.0, pan)) + 1.0) * math.pi / 4.0
    return math.sqrt(2.0) * math.cos(theta), math.sqrt(2.0) * math.sin(theta)


def mix_tracks(
    inputs: list[MixInput],
    profile: str = "balanced",
    *,
    sample_rate: int | None = None,
    ceiling_dbtp: float = CEILING_DBTP,
) -> MixResult:
    """Sum ``inputs`` into a stereo mix through ``profile``'s chain; never clips.

    Raises InvalidInput when there is nothing audible to mix (no inputs, all muted).
    """
    profile_chain(profile)  # an unknown profile is refused before any work
    audible = [x for x in inputs if not x.mute]
    if not audible:
        raise InvalidInput("Every input is muted; there is nothing to mix.", code="NOTHING_TO_MIX")
    sr = int(sample_rate or max(x.audio.sample_rate for x in audible))
    placed = []
    for x in audible:
        a = resample(x.audio, sr) if x.audio.sample_rate != sr else x.audio
        left, right = pan_gains(x.pan)
        gain = 10 ** (x.gain_db / 20.0)
        stereo = match_channels(a.samples, 2) * (
            np.array([[left], [right]], dtype=np.float32) * gain
        )
        placed.append((int(round(max(0.0, x.offset_s) * sr)), stereo))
    n = max(start + s.shape[1] for start, s in placed)
    bus = np.zeros((2, n), dtype=np.float32)
    for start, s in placed:
        bus[:, start : start + s.shape[1]] += s
    rms = float(np.sqrt(np.mean(bus.astype(np.float64) ** 2)))
    if rms < 1e-7:
        raise InvalidInput("The inputs are silent; there is nothing to mix.", code="NOTHING_TO_MIX")
    bus_gain_db = BUS_RMS_DBFS - 20.0 * math.log10(rms)
    bus *= 10 ** (bus_gain_db / 20.0)
    out = profile_chain(profile, sr)(bus, sr)
    # The reconstructed waveform's peak: no common true-peak meter reads above it.
    peak = reconstructed_peak_dbtp(Audio(out, sr))
    safety_db = min(0.0, ceiling_dbtp - 0.05 - peak)
    if safety_db < 0.0:
        out = out * np.float32(10 ** (safety_db / 20.0))
        peak += safety_db
    return MixResult(
        audio=Audio(np.ascontiguousarray(out, dtype=np.float32), sr),
        profile=profile,
        bus_gain_db=round(bus_gain_db, 2),
        safety_gain_db=round(safety_db, 2),
        true_peak_dbtp=round(peak, 2),
        meta={"inputs": len(inputs), "muted": len(inputs) - len(audible), "sample_rate": sr},
    )
