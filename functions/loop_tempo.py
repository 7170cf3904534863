"""A loop's tempo from its length, for short recordings whose onsets show no pulse.

Loop samples (a DAW's loop library, Sonic Pi's samples) are cut to whole bars so that they
repeat seamlessly: a pad or drone loop of 8 beats at 97 BPM lasts 4.948 s. Its onsets may show
no beat at all (a drone only wobbles), but its length still says the tempo, up to which whole
number of bars it holds, as DAWs assume when they warp a short sample.

Offers:
- ``loop_track(track, duration_s, mel_power, frame_rate_hz)``: the :class:`BeatTrack` of a
  loop (tempo from the length, beats on the loop's grid from 0 s), or None when the recording
  is not a pulseless loop and ``track`` stands.
"""

from __future__ import annotations

import math

import numpy as np

from functions.beats import MAX_BPM, MIN_BPM, BeatTrack, TempoLevel, tempo_prior_log

# Loops are a few bars long; 8 bars at 60 BPM last 32 s.
LOOP_MAX_S = 32.0
# Below this beat confidence the onsets show no pulse (a drone's wobble, a held pad); a drum
# loop's own beats are trusted over its length.
NO_PULSE_CONFIDENCE = 0.1
# A loop sounds from its first moment to its last (it wraps into its own start): both ends'
# level is within this many dB of the recording's mean. A fade or trailing silence is not cut
# to repeat.
LOOP_END_DB = 10.0
END_S = 0.1
BEATS_PER_BAR = 4


def _ends_sound(frame_power: np.ndarray, frame_rate_hz: float) -> bool:
    """Whether the first and last ``END_S`` are within ``LOOP_END_DB`` of the mean level.

    The outermost frame of each end is left out: the STFT's centring pads it with zeros.
    """
    k = max(1, int(round(END_S * frame_rate_hz)))
    if len(frame_power) < 2 * k + 2:
        return False
    mean = float(frame_power.mean())
    if mean <= 0:
        return False
    ends = (frame_power[1 : 1 + k].mean(), frame_power[-1 - k : -1].mean())
    return all(10.0 * math.log10(max(float(e), 1e-20) / mean) >= -LOOP_END_DB for e in ends)


def loop_track(
    track: BeatTrack, duration_s: float, mel_power: np.ndarray, frame_rate_hz: float
) -> BeatTrack | None:
    """The beats of a pulseless loop, from its length; None when ``track`` stands.

    A loop is a recording of at most ``LOOP_MAX_S`` whose ends both sound (``_ends_sound`` on
    the frames' power, from ``mel_power`` ``(frames, bands)``) and whose onset ``track`` has a
    confidence under ``NO_PULSE_CONFIDENCE``. It holds 1, 2, 4, 8... bars of four beats; each
    count within ``MIN_BPM..MAX_BPM`` is a tempo level, scored by the tempo prior alone (there
    is no pulse to weigh), and the likeliest is the tempo. Beats start at 0 s, where the loop
    starts.
    """
    if duration_s > LOOP_MAX_S or track.confidence >= NO_PULSE_CONFIDENCE:
        return None
    if not _ends_sound(np.asarray(mel_power, dtype=np.float64).sum(axis=1), frame_rate_hz):
        return None
    counts = [
        BEATS_PER_BAR * 2**k
        for k in range(12)
        if MIN_BPM <= 60.0 * BEATS_PER_BAR * 2**k / duration_s <= MAX_BPM
    ]
    if not counts:
        return None
    scores = np.array([tempo_prior_log(60.0 * n / duration_s) for n in counts])
    share = np.exp(scores - scores.max())
    share /= share.sum()
    levels = [
        TempoLevel(60.0 * n / duration_s, 0.0, 0.0, float(s), float(c))
        for n, s, c in zip(counts, scores, share, strict=True)
    ]
    beats = counts[int(np.argmax(scores))]
    period_s = duration_s / beats
    return BeatTrack(
        60.0 / period_s, np.arange(beats) * period_s, track.confidence, period_s, levels
    )
