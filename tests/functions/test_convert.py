"""Conversion with ffmpeg: formats, bit depths, rates, channels, the metadata reported, and
combinations a format cannot carry rejected before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from functions.audio_io import load_audio, resample, save_audio
from functions.convert import check_conversion, convert_file
from shared.errors import InvalidAudio, InvalidInput
from tests.synth import synth_song


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    audio, _ = synth_song(bpm=120, key="A minor", duration_s=4.0)
    path = tmp_path_factory.mktemp("convert") / "song.wav"
    save_audio(path, audio, "wav", bit_depth=24)
    return path


def test_flac_24_bit_is_lossless_and_reported(song, tmp_path):
    meta = convert_file(song, tmp_path / "out.flac", output_format="flac", bit_depth=24)
    info = sf.info(str(tmp_path / "out.flac"))
    assert (info.format, info.subtype) == ("FLAC", "PCM_24")
    assert meta["input"]["format"] == "wav" and meta["output"]["format"] == "flac"
    assert meta["output"]["duration_s"] == pytest.approx(4.0, abs=0.01)
    assert meta["resampled"] is False
    assert np.array_equal(load_audio(song).samples, load_audio(tmp_path / "out.flac").samples)


def test_resampling_and_downmix_keep_the_music(song, tmp_path):
    meta = convert_file(
        song, tmp_path / "out.wav", output_format="wav", sample_rate_hz=48000, channels=1
    )
    assert meta["output"]["sample_rate"] == 48000 and meta["output"]["channels"] == 1
    assert meta["resampled"] is True
    ours = load_audio(tmp_path / "out.wav").samples[0]
    reference = resample(load_audio(song, mono=True), 48000).samples[0]
    n = min(len(ours), len(reference))
    assert abs(len(ours) - len(reference)) <= 2
    assert np.corrcoef(ours[:n], reference[:n])[0, 1] > 0.999


def test_mp3_bitrate_and_rate_follow_what_mp3_can_carry(song, tmp_path):
    meta = convert_file(song, tmp_path / "out.mp3", output_format="mp3", bitrate_kbps=128)
    assert meta["output"]["format"] == "mp3"
    assert meta["output"]["bitrate_kbps"] == pytest.approx(128, rel=0.1)
    # 96 kHz has no mp3 equivalent: the nearest supported rate below is used and reported.
    hi = tmp_path / "hi.wav"
    convert_file(song, hi, output_format="wav", sample_rate_hz=96000)
    meta = convert_file(hi, tmp_path / "hi.mp3", output_format="mp3")
    assert meta["input"]["sample_rate"] == 96000 and meta["output"]["sample_rate"] == 48000


def test_ogg_output(song, tmp_path):
    meta = convert_file(song, tmp_path / "out.ogg", output_format="ogg", bitrate_kbps=96)
    assert meta["output"]["format"] == "ogg" and sf.info(str(tmp_path / "out.ogg")).format == "OGG"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"output_format": "aiff"}, "BAD_FORMAT"),
        ({"output_format": "wav", "bit_depth": 8}, "BAD_BIT_DEPTH"),
        ({"output_format": "mp3", "bitrate_kbps": 100}, "BAD_BITRATE"),
        ({"output_format": "mp3", "bitrate_kbps": 192, "sample_rate_hz": 22050}, "BAD_BITRATE"),
        ({"output_format": "flac", "bitrate_kbps": 320}, "BAD_BITRATE"),
        ({"output_format": "mp3", "sample_rate_hz": 96000}, "BAD_SAMPLE_RATE"),
        ({"output_format": "wav", "sample_rate_hz": 4000}, "BAD_SAMPLE_RATE"),
        ({"output_format": "wav", "channels": 6}, "BAD_CHANNELS"),
    ],
)
def test_impossible_combinations_are_typed_errors(kwargs, code):
    fmt = kwargs.pop("output_format")
    with pytest.raises(InvalidInput) as err:
        check_conversion(fmt, **kwargs)
    assert err.value.code == code and err.value.status == 422


def test_a_text_file_is_not_audio(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio\n" * 20)
    with pytest.raises(InvalidAudio) as err:
        convert_file(bad, tmp_path / "x.mp3", output_format="mp3")
    assert err.value.code == "UNSUPPORTED_FORMAT"


def test_convert_kind_outputs_the_file_and_metadata(song, run_pipeline):
    run = run_pipeline(
        "convert", [song], {"output_format": "flac", "sample_rate_hz": 32000, "channels": 1}
    )
    assert run.stages == [
        {
            "name": "converting",
            "status": "completed",
            "engine": "ffmpeg",
            "duration_s": run.stages[0]["duration_s"],
        }
    ]
    out = run.outputs["converted"]
    assert sf.info(str(out)).samplerate == 32000 and sf.info(str(out)).channels == 1
    assert (
        run.result["output"]["sample_rate"] == 32000 and run.result["input"]["sample_rate"] == 44100
    )


def test_convert_kind_rejects_a_bitrate_for_lossless_at_validation(song, run_pipeline):
    with pytest.raises(InvalidInput) as err:
        run_pipeline("convert", [song], {"output_format": "wav", "bitrate_kbps": 320})
    assert err.value.code == "BAD_BITRATE"
