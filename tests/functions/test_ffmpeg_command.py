"""The one ffmpeg command builder: the standing flags every stage runs ffmpeg with, raw-sample
input, and the codec arguments per output format (what a converted or streamed file is)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from functions.ffmpeg_command import (
    audio_codec_args,
    ffmpeg_command,
    ffmpeg_exe,
    ffmpeg_report_command,
    raw_float_input,
)


def test_a_command_logs_errors_only_never_reads_stdin_and_overwrites():
    cmd = ffmpeg_command("-i", Path("in.wav"), "-ar", 48000, Path("out.flac"))
    assert cmd == [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-i", "in.wav", "-ar", "48000", "out.flac"]  # fmt: skip


def test_a_report_command_keeps_the_stream_report_and_writes_nothing():
    cmd = ffmpeg_report_command("-i", Path("in.m4a"))
    assert cmd == [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", "in.m4a"]
    assert "-y" not in cmd and "error" not in cmd


def test_raw_input_is_float32_little_endian_on_stdin():
    assert raw_float_input(44100, 2) == ["-f", "f32le", "-ar", "44100", "-ac", "2", "-i", "-"]


@pytest.mark.parametrize(
    ("fmt", "kwargs", "expected"),
    [
        ("wav", {}, ["-c:a", "pcm_s16le"]),
        ("wav", {"bit_depth": 24}, ["-c:a", "pcm_s24le"]),
        ("flac", {}, ["-c:a", "flac", "-sample_fmt", "s16"]),
        (
            "flac",
            {"bit_depth": 24},
            ["-c:a", "flac", "-sample_fmt", "s32", "-bits_per_raw_sample", "24"],
        ),
        ("mp3", {}, ["-c:a", "libmp3lame", "-b:a", "320k"]),
        ("mp3", {"mp3_kbps": 160}, ["-c:a", "libmp3lame", "-b:a", "160k"]),
        ("ogg", {}, ["-c:a", "libvorbis", "-q:a", "6"]),
        ("ogg", {"ogg_kbps": 128}, ["-c:a", "libvorbis", "-b:a", "128k"]),
    ],
)
def test_codec_arguments_per_format(fmt, kwargs, expected):
    assert audio_codec_args(fmt, **kwargs) == expected


def test_an_unknown_format_has_no_codec():
    with pytest.raises(KeyError):
        audio_codec_args("aiff")


def test_raw_samples_through_the_builder_become_a_24_bit_flac(tmp_path):
    out = tmp_path / "tone.flac"
    t = np.arange(4800, dtype=np.float32) / 48000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)]) * 0.5
    cmd = ffmpeg_command(
        *raw_float_input(48000, 2), *audio_codec_args("flac", bit_depth=24), "-f", "flac", out
    )
    proc = subprocess.run(cmd, input=stereo.T.astype("<f4").tobytes(), capture_output=True)
    assert proc.returncode == 0, proc.stderr
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (48000, 2, "PCM_24", 4800)
