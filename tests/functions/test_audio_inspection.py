"""The upload check's description of a file: its level figures against a direct computation on
the decoded samples, and the samples no audio may hold (NaN, infinities) refused; and the
mono mixdown every kind reads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from functions.audio_io import Audio, inspect_audio
from shared.errors import InvalidAudio


def _noise(seconds: float, rate: int = 22050, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (0.1 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)


def test_levels_match_the_decoded_samples_across_blocks(tmp_path):
    x = _noise(5.3)  # several 2 s blocks and a partial one
    x[70_000, 1] = -0.9  # the peak is a negative sample in the last channel, past block one
    path = tmp_path / "n.wav"
    sf.write(path, x, 22050, subtype="FLOAT")
    info = inspect_audio(path)
    assert info["channels"] == 2 and info["sample_rate"] == 22050
    assert info["duration_s"] == pytest.approx(len(x) / 22050, abs=1e-3)
    assert info["peak_dbfs"] == pytest.approx(20 * math.log10(0.9), abs=0.01)
    rms = math.sqrt(float(np.mean(x.astype(np.float64) ** 2)))
    assert info["rms_dbfs"] == pytest.approx(20 * math.log10(rms), abs=0.01)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 3e30])
def test_samples_no_audio_holds_are_refused(tmp_path, bad):
    x = _noise(4.5)
    x[60_000, 0] = bad  # in the second block
    path = tmp_path / "bad.wav"
    sf.write(path, x, 22050, subtype="FLOAT")
    with pytest.raises(InvalidAudio) as e:
        inspect_audio(path)
    assert e.value.code == "UNDECODABLE_AUDIO"


@pytest.mark.parametrize("bad", [np.nan, np.inf, 3e30])
def test_decoding_refuses_samples_no_audio_holds(tmp_path, bad):
    from functions.audio_io import load_audio

    x = _noise(3.0)
    x[40_000, 1] = bad
    path = tmp_path / "bad.wav"
    sf.write(path, x, 22050, subtype="FLOAT")
    with pytest.raises(InvalidAudio) as e:
        load_audio(path)
    assert e.value.code == "UNDECODABLE_AUDIO"
    sf.write(path, _noise(3.0), 22050, subtype="FLOAT")
    assert load_audio(path).samples.shape == (2, 3 * 22050)


@pytest.mark.parametrize(
    ("fmt", "subtype", "channels"),
    [
        ("WAV", "PCM_16", 2),
        ("WAV", "PCM_24", 1),
        ("FLAC", "PCM_16", 1),
        ("FLAC", "PCM_24", 2),
        ("WAV", "FLOAT", 2),
        ("WAV", "PCM_U8", 2),
    ],
)
def test_decoding_gives_libsndfiles_float_samples_for_every_sample_format(
    tmp_path, fmt, subtype, channels
):
    """Integer PCM is read as integers and scaled: the samples must be the very floats
    libsndfile's own conversion gives, channel by channel, with full-scale extremes."""
    from functions.audio_io import load_audio

    x = _noise(2.5, channels=channels)
    x[100] = 1.0
    x[200] = -1.0
    x[300, -1] = 0.999
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, x, 22050, format=fmt, subtype=subtype)
    expected = sf.read(path, dtype="float32", always_2d=True)[0].T
    decoded = load_audio(path)
    assert decoded.samples.dtype == np.float32 and decoded.samples.flags.c_contiguous
    np.testing.assert_array_equal(decoded.samples, expected)
    info = inspect_audio(path)
    assert info["peak_dbfs"] == pytest.approx(20 * math.log10(np.abs(expected).max()), abs=1e-3)
    rms = math.sqrt(float(np.mean(expected.astype(np.float64) ** 2)))
    assert info["rms_dbfs"] == pytest.approx(20 * math.log10(rms), abs=0.01)
    assert info["duration_s"] == pytest.approx(2.5, abs=1e-3)


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mono_is_the_mean_of_the_channels_in_their_precision(channels, dtype):
    x = np.random.default_rng(channels).standard_normal((channels, 4099)).astype(dtype)
    mono = Audio(x, 44100).mono()
    assert mono.dtype == dtype and mono.shape == (4099,)
    assert np.array_equal(mono, x.mean(axis=0))
    assert not np.shares_memory(mono, x)  # a new array: the caller's samples are untouched
