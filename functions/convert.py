"""Format, sample-rate and channel conversion with ffmpeg, which streams (no whole-file decode).

Offers ``convert_file(src, dest, output_format=..., ...) -> dict`` with the metadata of the input
and the output (format, bitrate, sample rate, channels, duration), and the tables of what each
format accepts (``MP3_BITRATES_KBPS``, ``MP3_SAMPLE_RATES_HZ``).

Resampling uses the SoX resampler (``soxr``) when this ffmpeg has it, else ffmpeg's own at a
high-quality setting; reducing to 16-bit adds triangular dither so quantisation error is noise,
not distortion.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from functions.audio_io import probe, sniff_format
from functions.ffmpeg_command import audio_codec_args, ffmpeg_command, ffmpeg_report_command
from shared.errors import InvalidAudio, InvalidInput, StageFailed

OUTPUT_FORMATS = ("wav", "flac", "mp3", "ogg")
MP3_BITRATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MP3_SAMPLE_RATES_HZ = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OGG_BITRATE_RANGE_KBPS = (45, 500)  # libvorbis nominal bitrates, stereo
MAX_SAMPLE_RATE_HZ = 192000
MIN_SAMPLE_RATE_HZ = 8000


@functools.cache
def _has_soxr() -> bool:
    proc = subprocess.run(ffmpeg_report_command("-buildconf"), capture_output=True)
    return b"--enable-libsoxr" in proc.stdout + proc.stderr


def check_conversion(
    output_format: str,
    *,
    bit_depth: int = 16,
    bitrate_kbps: int | None = None,
    sample_rate_hz: int | None = None,
    channels: int | None = None,
) -> None:
    """Raise InvalidInput when the combination cannot be written."""
    if output_format not in OUTPUT_FORMATS:
        raise InvalidInput(
            f"Unknown output format '{output_format}'; use wav, flac, mp3 or ogg.",
            code="BAD_FORMAT",
        )
    if output_format in ("wav", "flac") and bit_depth not in (16, 24):
        raise InvalidInput(f"{output_format} output is 16- or 24-bit.", code="BAD_BIT_DEPTH")
    if bitrate_kbps is not None:
        if output_format == "mp3" and bitrate_kbps not in MP3_BITRATES_KBPS:
            raise InvalidInput(
                f"mp3 bitrates are {', '.join(map(str, MP3_BITRATES_KBPS))} kbps; got {bitrate_kbps}.",
                code="BAD_BITRATE",
            )
        lo, hi = OGG_BITRATE_RANGE_KBPS
        if output_format == "ogg" and not lo <= bitrate_kbps <= hi:
            raise InvalidInput(f"ogg bitrates are {lo}-{hi} kbps.", code="BAD_BITRATE")
        if output_format in ("wav", "flac"):
            raise InvalidInput(
                f"{output_format} is lossless: it takes a bit depth, not a bitrate.",
                code="BAD_BITRATE",
            )
    if sample_rate_hz is not None:
        if not MIN_SAMPLE_RATE_HZ <= sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
            raise InvalidInput(
                f"Sample rates are {MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ} Hz.",
                code="BAD_SAMPLE_RATE",
            )
        if output_format == "mp3" and sample_rate_hz not in MP3_SAMPLE_RATES_HZ:
            raise InvalidInput(
                f"mp3 supports {', '.join(map(str, MP3_SAMPLE_RATES_HZ))} Hz; got {sample_rate_hz}.",
                code="BAD_SAMPLE_RATE",
            )
        if output_format == "mp3" and sample_rate_hz < 32000 and (bitrate_kbps or 0) > 160:
            # MPEG-2/2.5 layer III (the rates below 32 kHz) tops out at 160 kbps.
            raise InvalidInput("mp3 below 32 kHz carries at most 160 kbps.", code="BAD_BITRATE")
    if channels is not None and channels not in (1, 2):
        raise InvalidInput("Channels are 1 (mono) or 2 (stereo).", code="BAD_CHANNELS")


def _mp3_rate(source_rate_hz: int) -> int:
    """The mp3 rate for a source rate mp3 cannot carry: the nearest supported one below."""
    fitting = [r for r in MP3_SAMPLE_RATES_HZ if r <= source_rate_hz]
    return fitting[-1] if fitting else MP3_SAMPLE_RATES_HZ[0]


def convert_file(
    src: str | Path,
    dest: str | Path,
    *,
    output_format: str,
    bit_depth: int = 16,
    bitrate_kbps: int | None = None,
    sample_rate_hz: int | None = None,
    channels: int | None = None,
) -> dict:
    """Convert ``src`` to ``dest``; returns ``{"input": meta, "output": meta, "resampled": bool}``.

    ``meta`` is ``{format, sample_rate, channels, duration_s, bitrate_kbps}``. Unset options keep
    the input's value (an mp3 from a source above 48 kHz is written at 48 kHz and says so).
    Raises InvalidAudio for an unreadable input, InvalidInput for an impossible combination.
    """
    check_conversion(
        output_format,
        bit_depth=bit_depth,
        bitrate_kbps=bitrate_kbps,
        sample_rate_hz=sample_rate_hz,
        channels=channels,
    )
    src, dest = Path(src), Path(dest)
    if sniff_format(src) is None:
        raise InvalidAudio(
            "This file is not a recognised audio format; upload mp3, wav, flac, m4a or ogg.",
            code="UNSUPPORTED_FORMAT",
        )
    source = probe(src)
    rate = int(sample_rate_hz or source["sample_rate"])
    if output_format == "mp3" and rate not in MP3_SAMPLE_RATES_HZ:
        rate = _mp3_rate(rate)
    out_channels = int(channels or min(int(source["channels"]), 2))

    filters = []
    resampler = "soxr:precision=28" if _has_soxr() else "swr:filter_size=64:cutoff=0.97"
    if rate != source["sample_rate"] or (output_format in ("wav", "flac") and bit_depth == 16):
        # dither only matters when the output is 16-bit PCM; the resampler applies it.
        dither = ":dither_method=triangular" if bit_depth == 16 else ""
        filters.append(f"aresample={rate}:resampler={resampler}{dither}")
    codec = audio_codec_args(
        output_format,
        bit_depth=bit_depth,
        mp3_kbps=bitrate_kbps or (320 if rate >= 32000 else 160),
        ogg_kbps=bitrate_kbps,
    )
    cmd = ffmpeg_command("-i", src, "-vn", "-map_metadata", "0")
    if filters:
        cmd += ["-af", ",".join(filters)]
    cmd += ["-ar", str(rate), "-ac", str(out_channels), *codec, "-f", output_format, str(dest)]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace")[-300:]
        if "Invalid data" in message or "could not find codec" in message.lower():
            raise InvalidAudio("The file could not be decoded as audio.", code="UNDECODABLE_AUDIO")
        raise StageFailed(f"ffmpeg could not convert the file: {message}")
    return {
        "input": _public(source),
        "output": _public(probe(dest)),
        "resampled": rate != source["sample_rate"],
    }


def _public(meta: dict) -> dict:
    return {
        "format": meta.get("format"),
        "sample_rate": meta.get("sample_rate"),
        "channels": meta.get("channels"),
        "duration_s": meta.get("duration_s"),
        "bitrate_kbps": meta.get("bitrate_kbps"),
    }
