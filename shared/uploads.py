"""Uploaded files on their way into a job: spooled to local disk under a cap, checked there
(format by content, duration from the container before any decode, then a bounded decode for
silence and damage) and labelled with the content type their bytes show, not the one the
client declared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from shared.audio_port import AudioTools
from shared.errors import InvalidAudio, InvalidInput, SoundstageError
from shared.input_checks import printable_name
from shared.registry import JobKind
from shared.storage import copy_with_limit, safe_filename

MIN_DURATION_S = 1.0

AUDIO_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
}


@dataclass
class SpooledInput:
    index: int
    filename: str  # as the user named it (printable), for display
    name: str  # safe for an object path
    local: Path
    size_bytes: int
    content_type: str
    sha256: str
    info: dict[str, Any] = field(default_factory=dict)


def sniff_content_type(audio: AudioTools, path: Path) -> str:
    """The type the file's first bytes show; never what the client claimed."""
    fmt = audio.sniff_format(path)
    if fmt in AUDIO_TYPES:
        return AUDIO_TYPES[fmt]
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return "application/octet-stream"


def spool(stream: BinaryIO, dest: Path, max_bytes: int) -> tuple[int, str]:
    """Copy an upload to ``dest`` (0600), stopping at ``max_bytes`` (FileTooLarge); returns
    its size and sha256 (storage takes both over rather than reading the file again)."""
    with open(dest, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
        return copy_with_limit(stream, fh, max_bytes)


def spool_uploads(
    audio: AudioTools,
    kind: JobKind,
    uploads: list,
    tmp: Path,
    max_bytes: int,
    max_duration_s: float,
) -> list[SpooledInput]:
    """Spool and check every upload with ``audio``; raises a typed 4xx on the first bad one."""
    out: list[SpooledInput] = []
    for i, up in enumerate(uploads):
        name = safe_filename(up.filename, f"input-{i}")
        filename = printable_name(up.filename or "") or name
        local = tmp / f"{i}"
        size, sha256 = spool(up.stream, local, max_bytes)
        info = (
            check_audio(audio, local, filename, kind, max_duration_s) if kind.audio_inputs else {}
        )
        content_type = sniff_content_type(audio, local)
        out.append(SpooledInput(i, filename, name, local, size, content_type, sha256, info))
    return out


def check_audio(
    audio: AudioTools, local: Path, filename: str, kind: JobKind, default_limit_s: float
) -> dict:
    """Check a spooled upload against the kind's limits; returns what the job records."""
    limit_s = kind.max_duration_s or default_limit_s
    try:
        # The container says how long the file is: refuse a 2-hour file before decoding it.
        declared = audio.probe(local).get("duration_s") or 0.0
    except (InvalidAudio, OSError, ValueError):
        declared = 0.0  # unreadable headers: the full check below names the problem
    if declared > limit_s:
        raise _too_long(filename, declared, limit_s)
    try:
        info = audio.inspect_audio(local)
    except SoundstageError as e:
        e.message = f"'{filename}': {e.message}"
        raise
    if kind.input_formats and info["format"] not in kind.input_formats:
        raise InvalidInput(
            f"'{filename}' is {info['format']}; a '{kind.name}' job takes "
            f"{', '.join(kind.input_formats)}.",
            code="UNSUPPORTED_FORMAT",
        )
    if info["duration_s"] > limit_s:
        raise _too_long(filename, info["duration_s"], limit_s)
    if info["duration_s"] < MIN_DURATION_S:
        raise InvalidInput(
            f"'{filename}' is shorter than {MIN_DURATION_S:.0f} second.", code="TOO_SHORT"
        )
    return {
        "format": info["format"],
        "duration_s": info["duration_s"],
        "sample_rate": info["sample_rate"],
        "channels": info["channels"],
    }


def _too_long(filename: str, duration_s: float, limit_s: float) -> InvalidInput:
    return InvalidInput(
        f"'{filename}' is {duration_s / 60:.1f} minutes long; the limit is "
        f"{limit_s / 60:.0f} minutes.",
        code="TOO_LONG",
    )
