"""Parameter checks that need the files (their count or length) but not the job: run at
submit time, so a mistake is a 422 before any job exists and costs no rate-limit attempt.

The pipelines keep their own checks too (a job created another way is still safe); these only
answer earlier. Each names the same code the pipeline would.
"""

from __future__ import annotations

from typing import Any

from shared.errors import InvalidInput

# A music video needs at least three 4 s clips (functions.video.timing.MIN_CLIP_S).
VIDEO_MIN_SONG_S = 3 * 4.0


def check_params_against_files(kind: str, params: Any, n_files: int) -> None:
    """Checks that need only the number of files."""
    if kind == "mix":
        tracks = getattr(params, "tracks", None) or []
        if len(tracks) > n_files:
            raise InvalidInput(
                f"{len(tracks)} track settings were given for {n_files} files; give one per file.",
                code="TRACK_SETTINGS_MISMATCH",
            )
    if kind == "mashup":
        picks = [x.track for x in getattr(params, "stems", None) or []]
        base = getattr(params, "base_track", None)
        for i in [*picks, *([base] if base is not None else [])]:
            if i >= n_files:
                raise InvalidInput(
                    f"There is no track {i}: {n_files} file(s) were uploaded (0-{n_files - 1}).",
                    code="BAD_TRACK",
                )


def check_params_against_audio(kind: str, params: Any, infos: list[dict]) -> None:
    """Checks that need the uploaded files' durations."""
    if kind == "video" and infos:
        duration_s = float(infos[0].get("duration_s") or 0.0)
        if 0 < duration_s < VIDEO_MIN_SONG_S:
            raise InvalidInput(
                f"The song is {duration_s:.1f} s long; a music video needs at least "
                f"{VIDEO_MIN_SONG_S:.0f} s (three clips of 4 s).",
                code="TOO_SHORT",
            )
