"""FFmpeg command lines, built in one place: the binary, the standing flags, raw-sample input
and the audio codecs, so every stage that runs ffmpeg runs it the same way.

Offers:
- ``ffmpeg_exe()``: the ffmpeg binary (``SOUNDSTAGE_FFMPEG`` when set, else the system's, else
  the one that ships with imageio-ffmpeg).
- ``ffmpeg_command(*args)``: an argv that logs errors only, never reads the terminal (a worker
  has none) and overwrites its output.
- ``ffmpeg_report_command(*args)``: an argv whose stderr is ffmpeg's report on its input (stream
  facts, duration, build configuration), which callers parse since ffprobe is not shipped by
  imageio-ffmpeg.
- ``raw_float_input(sample_rate, channels)``: the input arguments for float32 little-endian
  samples on stdin (how stages hand ffmpeg audio they computed).
- ``audio_codec_args(fmt, ...)``: the codec arguments of each output format (wav, flac, mp3,
  ogg) at a bit depth or bitrate.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

AUDIO_FORMATS = ("wav", "flac", "mp3", "ogg")
OGG_QUALITY = "6"  # libvorbis' quality scale (about 192 kbps stereo) when no bitrate is asked


@functools.cache
def ffmpeg_exe() -> str:
    """Path of an ffmpeg binary: the system's when present, else imageio-ffmpeg's."""
    env = os.environ.get("SOUNDSTAGE_FFMPEG")
    if env:
        return env
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_command(*args: str | Path | int | float) -> list[str]:
    """``ffmpeg -v error -nostdin -y`` followed by ``args`` (as strings)."""
    return [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *map(str, args)]


def ffmpeg_report_command(*args: str | Path | int | float) -> list[str]:
    """``ffmpeg -hide_banner -nostdin`` followed by ``args``: run it to read stderr, not to
    write a file."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", *map(str, args)]


def raw_float_input(sample_rate: int, channels: int) -> list[str]:
    """Input arguments for interleaved float32 little-endian samples read from stdin."""
    return ["-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels), "-i", "-"]


def audio_codec_args(
    fmt: str, *, bit_depth: int = 16, mp3_kbps: int = 320, ogg_kbps: int | None = None
) -> list[str]:
    """Codec arguments for ``fmt``: PCM at ``bit_depth`` (16 or 24) in wav, FLAC at 16 or 24
    bits, LAME mp3 at ``mp3_kbps``, Vorbis at ``ogg_kbps`` or else quality 6.

    Raises KeyError for a format outside ``AUDIO_FORMATS`` (callers validate first).
    """
    if fmt == "wav":
        return ["-c:a", "pcm_s16le" if bit_depth == 16 else "pcm_s24le"]
    if fmt == "flac":
        if bit_depth == 16:
            return ["-c:a", "flac", "-sample_fmt", "s16"]
        return ["-c:a", "flac", "-sample_fmt", "s32", "-bits_per_raw_sample", "24"]
    if fmt == "mp3":
        return ["-c:a", "libmp3lame", "-b:a", f"{mp3_kbps}k"]
    if fmt == "ogg":
        return [
            "-c:a",
            "libvorbis",
            *(["-b:a", f"{ogg_kbps}k"] if ogg_kbps else ["-q:a", OGG_QUALITY]),
        ]
    raise KeyError(fmt)
