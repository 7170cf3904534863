"""What the kinds' run-time and cost estimates share (made at submit time, before any job runs).

- ``input_durations_s(files)``: each input's duration in seconds,
  ``audio_io.DEFAULT_TRACK_DURATION_S`` where the upload's duration is not known (always at
  least one entry).
"""

from __future__ import annotations

from functions.audio_io import DEFAULT_TRACK_DURATION_S


def input_durations_s(files: list[dict]) -> list[float]:
    """Each input's ``duration_s``, ``DEFAULT_TRACK_DURATION_S`` where unknown; one entry for
    none."""
    return [float(f.get("duration_s") or DEFAULT_TRACK_DURATION_S) for f in files] or [
        DEFAULT_TRACK_DURATION_S
    ]
