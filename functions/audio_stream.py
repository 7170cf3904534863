"""Streaming audio I/O for long tracks: read in blocks, write incrementally.

Offers:
- ``BlockReader``: reads ``(channels, n)`` float32 frames from a file at a chosen sample rate
  and channel count without decoding the whole file into memory. Files libsndfile can read at
  the wanted rate are read directly; anything else (m4a, another rate) is first transcoded by
  ffmpeg, which streams, to a float WAV in a scratch folder.
- ``open_sink(path, ...)``: a writer that takes ``(channels, n)`` float blocks and produces
  wav (16/24-bit), flac (16/24-bit) or mp3 (CBR), converting the sample rate on the way when
  asked. libsndfile writes PCM/FLAC at the source rate; ffmpeg (fed through a pipe) does mp3
  and any rate change, so a 10-minute stem never sits in memory whole.

Errors a user can cause raise :class:`shared.errors.InvalidAudio`.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from functions.audio_io import probe, sniff_format
from functions.ffmpeg_command import audio_codec_args, ffmpeg_command, raw_float_input
from shared.errors import InvalidAudio, InvalidInput

PCM_SUBTYPES = {16: "PCM_16", 24: "PCM_24"}
CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "ogg": "audio/ogg"}


class BlockReader:
    """Random-access block reads from an audio file at ``sample_rate`` and ``channels``.

    Use as a context manager; ``frames`` is the length at the target rate.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        scratch_dir: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists() or self.path.stat().st_size == 0:
            raise InvalidAudio("The file is empty.", code="EMPTY_AUDIO")
        if sniff_format(self.path) is None:
            raise InvalidAudio(
                "This file is not a recognised audio format; upload mp3, wav, flac, m4a or ogg.",
                code="UNSUPPORTED_FORMAT",
            )
        info = probe(self.path)
        self.source_sample_rate = int(info["sample_rate"])
        self.source_channels = int(info["channels"])
        self.sample_rate = int(sample_rate or self.source_sample_rate)
        self.channels = int(channels or self.source_channels)
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._file = self._open(scratch_dir)
        self.frames = int(self._file.frames)
        if self.frames == 0:
            self.close()
            raise InvalidAudio("The file holds no audio samples.", code="EMPTY_AUDIO")

    def _open(self, scratch_dir: str | Path | None) -> sf.SoundFile:
        if self.sample_rate == self.source_sample_rate:
            try:
                return sf.SoundFile(str(self.path))
            except (sf.LibsndfileError, RuntimeError):
                pass  # not readable by libsndfile (m4a, odd mp3): transcode below
        # ffmpeg streams the conversion to disk; reading it back is then block by block.
        self._tmp = tempfile.TemporaryDirectory(dir=scratch_dir, prefix="decode-")
        out = Path(self._tmp.name) / "decoded.wav"
        cmd = ffmpeg_command(
            "-i", self.path, "-vn", "-ar", self.sample_rate, "-c:a", "pcm_f32le", "-f", "wav", out
        )
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0 or not out.exists():
            raise InvalidAudio(
                "The file could not be decoded as audio; it may be truncated or corrupt.",
                code="UNDECODABLE_AUDIO",
            )
        return sf.SoundFile(str(out))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` as float32 ``(channels, n)`` with the target channel count."""
        self._file.seek(max(0, start))
        data = self._file.read(frames=max(0, stop - start), dtype="float32", always_2d=True).T
        if not np.all(np.isfinite(data)):
            raise InvalidAudio(
                "The file holds invalid (non-finite) samples.", code="UNDECODABLE_AUDIO"
            )
        return match_channels(data, self.channels)

    def close(self) -> None:
        self._file.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> BlockReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def match_channels(data: np.ndarray, channels: int) -> np.ndarray:
    """Up-mix mono by copying, down-mix by averaging; ``data`` is ``(ch, n)``."""
    if data.shape[0] == channels:
        return np.ascontiguousarray(data, dtype=np.float32)
    if channels == 1:
        return data.mean(axis=0, keepdims=True).astype(np.float32)
    if data.shape[0] == 1:
        return np.repeat(data, channels, axis=0).astype(np.float32)
    # Surround layouts put front left/right first.
    return np.ascontiguousarray(data[:channels], dtype=np.float32)


class AudioSink(Protocol):
    path: Path

    def write(self, block: np.ndarray) -> None: ...

    def close(self) -> None: ...


class _SoundFileSink:
    """PCM WAV / FLAC through libsndfile at the block's own rate."""

    def __init__(self, path: Path, fmt: str, sample_rate: int, channels: int, bit_depth: int):
        self.path = path
        self._f = sf.SoundFile(
            str(path),
            "w",
            samplerate=sample_rate,
            channels=channels,
            subtype=PCM_SUBTYPES[bit_depth],
            format=fmt.upper(),
        )

    def write(self, block: np.ndarray) -> None:
        # libsndfile converts float to int without clipping; out-of-range samples would wrap.
        self._f.write(np.clip(block, -1.0, 1.0).T)

    def close(self) -> None:
        self._f.close()


class _FfmpegSink:
    """Any format/rate through an ffmpeg process fed raw float32 frames on stdin."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        in_rate: int,
        out_rate: int,
        channels: int,
        bit_depth: int,
        bitrate_kbps: int,
    ):
        self.path = path
        cmd = ffmpeg_command(
            *raw_float_input(in_rate, channels),
            "-ar",
            out_rate,
            *audio_codec_args(fmt, bit_depth=bit_depth, mp3_kbps=bitrate_kbps),
            "-f",
            fmt,
            path,
        )
        # stderr goes to a file, not a pipe: a chatty ffmpeg must never block on a full pipe.
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err
        )

    def write(self, block: np.ndarray) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(np.clip(block, -1.0, 1.0).T.astype("<f4").tobytes())

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        rc = self._proc.wait()
        self._err.seek(0)
        message = self._err.read().decode(errors="replace")[-400:]
        self._err.close()
        if rc != 0:
            raise RuntimeError(f"ffmpeg failed writing {self.path.name}: {message}")


def check_output_format(fmt: str, bit_depth: int) -> None:
    """Raise InvalidInput unless ``fmt``/``bit_depth`` is something we can write."""
    if fmt not in CONTENT_TYPES:
        raise InvalidInput(
            f"Unknown output format '{fmt}'; use wav, flac, mp3 or ogg.", code="BAD_FORMAT"
        )
    if fmt in ("wav", "flac") and bit_depth not in PCM_SUBTYPES:
        raise InvalidInput(
            f"{fmt} output is 16- or 24-bit, not {bit_depth}-bit.", code="BAD_BIT_DEPTH"
        )


def open_sink(
    path: str | Path,
    fmt: str,
    *,
    sample_rate: int,
    channels: int,
    out_sample_rate: int | None = None,
    bit_depth: int = 16,
    bitrate_kbps: int = 320,
) -> AudioSink:
    """A block writer for ``path``; blocks arrive at ``sample_rate`` and are stored at
    ``out_sample_rate`` (default: the same)."""
    check_output_format(fmt, bit_depth)
    path = Path(path)
    out_rate = int(out_sample_rate or sample_rate)
    if fmt in ("wav", "flac") and out_rate == sample_rate:
        return _SoundFileSink(path, fmt, sample_rate, channels, bit_depth)
    return _FfmpegSink(path, fmt, sample_rate, out_rate, channels, bit_depth, bitrate_kbps)
