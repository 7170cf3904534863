"""How the audio job kinds (stems, convert, mix, master, mashup) keep their files as outputs.

- ``keep_output(ctx, name, path, ...)``: store a file as a job output with its metadata.
- ``write_under_ceiling(dest, audio, ...)``: write a master and measure the file as written,
  trimming once if a lossy encoder pushed its true peak over the ceiling.
- ``reuse_outputs(ctx, stored)``: attach outputs an earlier job stored (the content-hash caches),
  through the context's optional ``reuse_output``; None when the context cannot or an object is
  gone, and the caller computes afresh.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from functions.audio_io import Audio, load_audio, save_audio
from functions.audio_stream import CONTENT_TYPES
from functions.loudness import loudness_report
from shared.context import OutputFile


def keep_output(
    ctx: Any,
    name: str,
    path: Path,
    *,
    bucket: str = "audio-outputs",
    filename: str | None = None,
    meta: dict[str, Any] | None = None,
) -> OutputFile:
    """``ctx.output`` with the content type derived from the file's extension."""
    content_type = CONTENT_TYPES.get(path.suffix.lstrip(".").lower(), "application/octet-stream")
    if path.suffix == ".json":
        content_type = "application/json"
    return ctx.output(
        name, path, bucket=bucket, content_type=content_type, filename=filename, meta=meta
    )


def write_under_ceiling(
    dest: Path, audio: Audio, output_format: str, *, bit_depth: int = 24, ceiling_dbtp: float = -1.0
) -> tuple[Audio, dict[str, float], float]:
    """Write ``audio`` and return ``(as written, its loudness report, trim_db)``.

    The report is of the decoded file: mp3 encoding adds inter-sample peaks, so if the written
    true peak passes ``ceiling_dbtp`` the audio is trimmed by the excess (+0.1 dB) and written
    again.
    """
    bits = 16 if output_format == "mp3" else bit_depth
    save_audio(dest, audio, output_format, bit_depth=bits, bitrate_kbps=320)
    written = load_audio(dest)
    report = loudness_report(written)
    trim_db = 0.0
    if report["true_peak_dbtp"] > ceiling_dbtp:
        trim_db = ceiling_dbtp - report["true_peak_dbtp"] - 0.1
        trimmed = Audio(audio.samples * np.float32(10 ** (trim_db / 20)), audio.sample_rate)
        save_audio(dest, trimmed, output_format, bit_depth=bits, bitrate_kbps=320)
        written = load_audio(dest)
        report = loudness_report(written)
    return written, report, round(trim_db, 2)


def stored_record(out: OutputFile) -> dict[str, Any]:
    """What a cache entry keeps of an output: enough to attach the same object again."""
    return json.loads(json.dumps(asdict(out)))


def reuse_outputs(ctx: Any, stored: list[dict[str, Any]]) -> list[OutputFile] | None:
    """Attach every stored output to this job, or None if any cannot be (then recompute)."""
    reuse = getattr(ctx, "reuse_output", None)
    if reuse is None or not stored:
        return None
    attached = []
    for record in stored:
        out = reuse(record["name"], record)
        if out is None:
            return None
        attached.append(out)
    return attached
