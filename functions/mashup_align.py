"""A mashup part's stem fitted to the base's timeline: the signal work after the decisions.

Offers ``align_stem(audio, part, length_n, voice=)``: the stem time-stretched and
pitch-shifted in one Rubber Band pass (pedalboard's ``time_stretch``, formants kept for a
voice) by the ``TrackPart`` that ``functions.mashup.plan_mashup`` decided, then placed at the
part's offset and cut or padded to the base's length.
"""

from __future__ import annotations

import numpy as np

from functions.audio_io import Audio
from functions.mashup import TrackPart


def align_stem(audio: Audio, part: TrackPart, length_n: int, *, voice: bool = False) -> Audio:
    """``audio`` stretched and shifted as ``part`` says (Rubber Band, one pass), placed at its
    offset on the base timeline and cut or padded to ``length_n`` samples."""
    import pedalboard as pb  # off module load: the job registry imports this

    x = np.ascontiguousarray(audio.samples, dtype=np.float32)
    if abs(part.stretch_factor - 1.0) > 1e-4 or part.pitch_shift_semitones:
        x = pb.time_stretch(
            x,
            audio.sample_rate,
            stretch_factor=part.stretch_factor,
            pitch_shift_in_semitones=float(part.pitch_shift_semitones),
            high_quality=True,
            preserve_formants=voice,
        )
    offset = int(round(part.offset_s * audio.sample_rate))
    out = np.zeros((x.shape[0], length_n), dtype=np.float32)
    src_start = max(0, -offset)
    dst_start = max(0, offset)
    n = min(x.shape[1] - src_start, length_n - dst_start)
    if n > 0:
        out[:, dst_start : dst_start + n] = x[:, src_start : src_start + n]
    return Audio(out, audio.sample_rate)
