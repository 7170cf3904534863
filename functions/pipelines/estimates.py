"""What the kinds' run-time and cost estimates share (made at submit time, before any job runs).

- ``input_durations_s(files)``: each input's duration in seconds, a typical song's where the
  upload's duration is not known (always at least one entry).
"""

from __future__ import annotations

TYPICAL_TRACK_S = 180.0  # a song's length, for estimates of inputs whose duration is unknown


def input_durations_s(files: list[dict]) -> list[float]:
    """Each input's ``duration_s``, ``TYPICAL_TRACK_S`` where unknown; one entry for none."""
    return [float(f.get("duration_s") or TYPICAL_TRACK_S) for f in files] or [TYPICAL_TRACK_S]
