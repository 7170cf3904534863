"""What the audio job kinds (stems, convert, mix, master, mashup) share.

Not a kind: the leading underscore keeps ``functions.pipelines`` from registering it.

- ``on_modal()`` / ``progress_kwargs(handle)``: a progress callback can only travel with a stage
  call that stays in this process; on Modal the call becomes ``.remote()`` and reports when done.
- ``record_compute(ctx, ...)``: the stage's compute as a cost row (free locally, priced on Modal).
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
from shared.config import get_settings
from shared.context import OutputFile


def stems_gpu() -> str:
    """The GPU type the stems stage runs on in production (``SOUNDSTAGE_STEMS_GPU``)."""
    return get_settings().stems_gpu


def on_modal() -> bool:
    return get_settings().runner == "modal"


def progress_kwargs(handle: Any) -> dict[str, Any]:
    """``{"progress": handle.progress}`` when stage calls run in this process, else nothing."""
    return {} if on_modal() else {"progress": handle.progress}


def record_compute(
    ctx: Any,
    what: str,
    wall_s: float,
    *,
    cores: float = 2.0,
    memory_gib: float = 4.0,
    gpu: str | None = None,
) -> None:
    """One cost row for ``wall_s`` seconds of compute: 0 USD locally, Modal's price there."""
    from functions.video.pricing import modal_compute_usd

    usd = 0.0
    provider = "local"
    if on_modal():
        provider = "modal"
        usd = modal_compute_usd(wall_s, cores, memory_gib, gpu)
    detail = f"{what} ({gpu + ' GPU, ' if gpu and on_modal() else ''}{cores:g} cores)"
    ctx.cost(provider, round(wall_s, 3), round(usd, 6), unit="wall_seconds", detail=detail)


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
