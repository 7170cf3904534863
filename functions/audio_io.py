"""Audio I/O kept apart from compute: sniffing, decoding, encoding, probing.

Offers:
- ``sniff_format(path)``: the container recognised from the file's bytes (never its name).
- ``load_audio(path, sr=None, mono=False)``: ``Audio`` (float32 samples shaped
  ``(channels, n)``, sample rate) decoded with libsndfile, or ffmpeg for what it can't read.
- ``save_audio(path, audio, fmt=..., bit_depth=..., bitrate_kbps=...)``: wav/flac/mp3/ogg.
- ``probe(path)``: format, sample rate, channels, duration, bitrate.
- ``DEFAULT_TRACK_DURATION_S``: the length an estimate assumes for a track whose duration is
  not known yet.

ffmpeg runs through ``functions.ffmpeg_command``.

Errors a user can cause raise :class:`shared.errors.InvalidAudio` with a stable code.
"""

from __future__ import annotations

import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from functions.ffmpeg_command import (
    audio_codec_args,
    ffmpeg_command,
    ffmpeg_report_command,
    raw_float_input,
)
from shared.errors import InvalidAudio, InvalidInput

SUPPORTED_INPUT_FORMATS = ("wav", "flac", "mp3", "ogg", "m4a")
# Cost and time estimates assume a typical 3-minute song when a file's duration is unknown.
DEFAULT_TRACK_DURATION_S = 180.0


@dataclass
class Audio:
    """Samples travel with their rate: ``samples`` is float32 ``(channels, n)``."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / float(self.sample_rate)

    def mono(self) -> np.ndarray:
        """The channels' mean (``samples.mean(axis=0)``, the same values), summed row by row
        into one new array: no temporaries the size of the track."""
        x = self.samples
        out = np.array(x[0], dtype=np.result_type(x.dtype, np.float32))
        for row in x[1:]:
            out += row
        out /= out.dtype.type(x.shape[0])
        return out


def sniff_format(path: str | os.PathLike) -> str | None:
    """Return ``wav|flac|mp3|ogg|m4a`` from the file's first bytes, or None."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if len(head) < 4:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3":
        return "mp3"
    if head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0:
        return "mp3"  # MPEG audio frame sync, layer bits set
    if head[4:8] == b"ftyp":
        return "m4a"
    return None


def _decode_with_ffmpeg(path: Path, sr: int | None) -> Audio:
    # ffmpeg decodes to 32-bit float little-endian on stdout; we keep the source rate
    # unless asked for another, and read the channel count first.
    info = probe(path)
    channels = max(1, int(info.get("channels") or 2))
    rate = int(sr or info.get("sample_rate") or 44100)
    cmd = ffmpeg_command(
        "-i", path, "-f", "f32le", "-acodec", "pcm_f32le", "-ac", channels, "-ar", rate, "-"
    )
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        raise InvalidAudio(
            "The file could not be decoded as audio; it may be truncated or corrupt.",
            code="UNDECODABLE_AUDIO",
        )
    data = np.frombuffer(proc.stdout, dtype="<f4")
    n = len(data) // channels
    samples = data[: n * channels].reshape(n, channels).T.copy()
    return Audio(samples, rate)


def _energy(samples: np.ndarray) -> float:
    """The sum of the squared samples, from one dot product: it is not finite when any sample
    is NaN, infinite or too large to square, so it checks the samples without a boolean copy
    of the whole track."""
    flat = np.ascontiguousarray(samples).reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(flat @ flat)


# Integer PCM is read as integers and scaled channel by channel: the same values as
# libsndfile's float conversion (a division by full scale, exact in float32 up to 24 bits),
# without an interleaved float copy of the whole track to transpose.
_INTEGER_PCM = {"PCM_16": ("int16", 2.0**-15), "PCM_24": ("int32", 2.0**-31)}


def _read_frames(f: sf.SoundFile, frames: int = -1) -> np.ndarray:
    """The next ``frames`` frames (-1: all that are left) of an open file, float32
    ``(channels, n)``."""
    integer = _INTEGER_PCM.get(f.subtype)
    if integer is None:
        return np.ascontiguousarray(f.read(frames=frames, dtype="float32", always_2d=True).T)
    dtype, scale = integer
    data = f.read(frames=frames, dtype=dtype, always_2d=True)
    out = np.empty((data.shape[1], data.shape[0]), dtype=np.float32)
    for c in range(data.shape[1]):
        np.multiply(data[:, c], np.float32(scale), out=out[c])
    return out


def load_audio(
    path: str | os.PathLike,
    sr: int | None = None,
    mono: bool = False,
    *,
    offset_s: float = 0.0,
    duration_s: float | None = None,
) -> Audio:
    """Decode ``path`` to float32 ``(channels, n)``; resample to ``sr`` when given.

    Raises InvalidAudio (``UNSUPPORTED_FORMAT``, ``UNDECODABLE_AUDIO``, ``EMPTY_AUDIO``).
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise InvalidAudio("The file is empty.", code="EMPTY_AUDIO")
    fmt = sniff_format(path)
    if fmt is None:
        raise InvalidAudio(
            "This file is not a recognised audio format; upload mp3, wav, flac, m4a or ogg.",
            code="UNSUPPORTED_FORMAT",
        )
    audio: Audio | None = None
    if fmt in ("wav", "flac", "ogg", "mp3"):
        try:
            with sf.SoundFile(str(path)) as f:
                start = int(offset_s * f.samplerate)
                if start:
                    f.seek(min(start, f.frames))
                frames = -1 if duration_s is None else int(duration_s * f.samplerate)
                audio = Audio(_read_frames(f, frames), f.samplerate)
        except (sf.LibsndfileError, RuntimeError, ValueError):
            audio = None
    if audio is None:
        audio = _decode_with_ffmpeg(path, None)
        if offset_s or duration_s is not None:
            a = int(offset_s * audio.sample_rate)
            b = None if duration_s is None else a + int(duration_s * audio.sample_rate)
            audio = Audio(audio.samples[:, a:b].copy(), audio.sample_rate)
    if audio.samples.shape[1] == 0:
        raise InvalidAudio("The file holds no audio samples.", code="EMPTY_AUDIO")
    if not math.isfinite(_energy(audio.samples)):
        raise InvalidAudio("The file holds invalid (non-finite) samples.", code="UNDECODABLE_AUDIO")
    if mono and audio.channels > 1:
        audio = Audio(audio.samples.mean(axis=0, keepdims=True), audio.sample_rate)
    if sr is not None and sr != audio.sample_rate:
        audio = resample(audio, sr)
    return audio


def resample(audio: Audio, sr: int) -> Audio:
    """Band-limited polyphase resampling (scipy), cheap and good enough for analysis and mixing."""
    from math import gcd

    from scipy.signal import resample_poly

    if sr == audio.sample_rate:
        return audio
    g = gcd(int(sr), int(audio.sample_rate))
    up, down = int(sr) // g, int(audio.sample_rate) // g
    out = resample_poly(audio.samples, up, down, axis=1).astype(np.float32)
    return Audio(out, int(sr))


def save_audio(
    path: str | os.PathLike,
    audio: Audio,
    fmt: str | None = None,
    *,
    bit_depth: int = 16,
    bitrate_kbps: int = 320,
) -> Path:
    """Write ``audio`` as wav (16/24/32-bit), flac (16/24-bit), mp3 (CBR ``bitrate_kbps``) or ogg."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "wav").lower()
    data = np.ascontiguousarray(audio.samples.T)
    if fmt in ("wav", "flac"):
        subtype = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}.get(bit_depth)
        if subtype is None or (fmt == "flac" and bit_depth == 32):
            raise InvalidInput(
                f"{fmt} does not support {bit_depth}-bit output.", code="BAD_BIT_DEPTH"
            )
        if subtype != "FLOAT":
            data = np.clip(data, -1.0, 1.0)
        sf.write(str(path), data, audio.sample_rate, subtype=subtype, format=fmt.upper())
    elif fmt in ("mp3", "ogg"):
        cmd = ffmpeg_command(
            *raw_float_input(audio.sample_rate, audio.channels),
            *audio_codec_args(fmt, mp3_kbps=bitrate_kbps),
            "-f",
            fmt,
            path,
        )
        proc = subprocess.run(
            cmd, input=np.clip(data, -1, 1).astype("<f4").tobytes(), capture_output=True
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"ffmpeg failed to encode {fmt}: {proc.stderr.decode(errors='replace')[-400:]}"
            )
    else:
        raise InvalidInput(
            f"Unknown output format '{fmt}'; use wav, flac, mp3 or ogg.", code="BAD_FORMAT"
        )
    return path


def probe(path: str | os.PathLike) -> dict:
    """Format, sample_rate, channels, duration_s and bitrate_kbps of an audio file.

    Uses libsndfile where it can read the file, else parses ``ffmpeg -i`` (ffprobe is not
    shipped by imageio-ffmpeg).
    """
    import re

    path = Path(path)
    fmt = sniff_format(path)
    size_bits = path.stat().st_size * 8
    try:
        info = sf.info(str(path))
        dur = float(info.duration)
        return {
            "format": fmt or info.format.lower(),
            "sample_rate": int(info.samplerate),
            "channels": int(info.channels),
            "duration_s": round(dur, 3),
            "bitrate_kbps": round(size_bits / dur / 1000.0, 1) if dur > 0 else None,
            "subtype": info.subtype,
        }
    except Exception:  # noqa: BLE001 - fall through to ffmpeg's reading
        pass
    proc = subprocess.run(ffmpeg_report_command("-i", path), capture_output=True)
    text = proc.stderr.decode(errors="replace")
    m_dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    m_audio = re.search(r"Audio: [^,]+, (\d+) Hz, ([^,]+)", text)
    m_br = re.search(r"bitrate: (\d+) kb/s", text)
    if not m_audio:
        raise InvalidAudio("The file could not be read as audio.", code="UNDECODABLE_AUDIO")
    dur = (
        int(m_dur.group(1)) * 3600 + int(m_dur.group(2)) * 60 + float(m_dur.group(3))
        if m_dur
        else 0.0
    )
    layout = m_audio.group(2).strip()
    channels = {"mono": 1, "stereo": 2}.get(layout)
    if channels is None:
        m_ch = re.match(r"(\d+) channels", layout)
        channels = int(m_ch.group(1)) if m_ch else 2
    return {
        "format": fmt,
        "sample_rate": int(m_audio.group(1)),
        "channels": channels,
        "duration_s": round(dur, 3),
        "bitrate_kbps": float(m_br.group(1)) if m_br else None,
    }


SILENCE_PEAK_DBFS = -60.0


def _wav_truncated(path: Path) -> bool:
    """True when a WAV's data chunk claims more bytes than the file holds."""
    import struct

    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(12)
        while True:
            hdr = fh.read(8)
            if len(hdr) < 8:
                return False
            cid, clen = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"data":
                return fh.tell() + clen > size and clen != 0xFFFFFFFF
            fh.seek(clen + (clen & 1), 1)


def inspect_audio(path: str | os.PathLike, block_s: float = 2.0) -> dict:
    """Decode the whole file in blocks (bounded memory) and describe it.

    Returns format, sample_rate, channels, duration_s, peak_dbfs, rms_dbfs. Raises InvalidAudio
    with ``UNSUPPORTED_FORMAT``, ``EMPTY_AUDIO``, ``TRUNCATED_AUDIO``, ``UNDECODABLE_AUDIO`` or
    ``SILENT_AUDIO``. Used at upload so bad files get a 4xx before any job exists.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise InvalidAudio("The file is empty.", code="EMPTY_AUDIO")
    fmt = sniff_format(path)
    if fmt is None:
        raise InvalidAudio(
            "This file is not a recognised audio format; upload mp3, wav, flac, m4a or ogg.",
            code="UNSUPPORTED_FORMAT",
        )
    if fmt == "wav" and _wav_truncated(path):
        raise InvalidAudio(
            "The WAV file is truncated: it ends before its audio data does.", code="TRUNCATED_AUDIO"
        )
    peak, sumsq, frames = 0.0, 0.0, 0
    try:
        with sf.SoundFile(str(path)) as f:
            rate, channels = f.samplerate, f.channels
            while (block := _read_frames(f, int(block_s * rate))).size:
                energy = _energy(block)
                if not math.isfinite(energy):
                    raise InvalidAudio("The file holds invalid samples.", code="UNDECODABLE_AUDIO")
                peak = max(peak, float(block.max()), -float(block.min()))
                sumsq += energy
                frames += block.shape[1]
    except (sf.LibsndfileError, RuntimeError):
        if fmt in ("wav", "flac"):
            raise InvalidAudio(
                "The file could not be decoded as audio; it may be corrupt.",
                code="UNDECODABLE_AUDIO",
            ) from None
        audio = _decode_with_ffmpeg(path, None)
        rate, channels = audio.sample_rate, audio.channels
        frames = audio.samples.shape[1]
        peak = float(np.max(np.abs(audio.samples))) if frames else 0.0
        sumsq = float(np.sum(audio.samples.astype(np.float64) ** 2))
    if frames == 0:
        raise InvalidAudio("The file holds no audio samples.", code="EMPTY_AUDIO")
    peak_db = 20 * math.log10(peak) if peak > 0 else -120.0
    rms = math.sqrt(sumsq / (frames * channels))
    if peak_db < SILENCE_PEAK_DBFS:
        raise InvalidAudio(
            "The audio is silent; there is nothing to work with.", code="SILENT_AUDIO"
        )
    return {
        "format": fmt,
        "sample_rate": int(rate),
        "channels": int(channels),
        "duration_s": round(frames / float(rate), 3),
        "peak_dbfs": round(peak_db, 2),
        "rms_dbfs": round(20 * math.log10(rms), 2) if rms > 0 else -120.0,
    }
