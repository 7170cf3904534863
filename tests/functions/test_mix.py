"""Mixing: profiles colour the spectrum as described, pan/mute/offset do what they say, and the
mix never clips however hot the inputs are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import welch

from functions.audio_io import Audio, load_audio, resample, save_audio
from functions.loudness import loudness_report, sample_peak_dbfs, true_peak_dbtp
from functions.mix import CEILING_DBTP, MIX_PROFILES, MixInput, mix_tracks, pan_gains, profile_chain
from shared.errors import InvalidInput
from tests.synth import synth_song

SR = 44100


@pytest.fixture(scope="module")
def songs() -> tuple[Audio, Audio]:
    a, _ = synth_song(bpm=120, key="A minor", duration_s=4.0, seed=1)
    b, _ = synth_song(bpm=120, key="C major", duration_s=4.0, seed=2, vocals=True)
    return a, b


def _band_share(audio: Audio, lo_hz: float, hi_hz: float) -> float:
    f, psd = welch(audio.mono(), fs=audio.sample_rate, nperseg=4096)
    return float(psd[(f >= lo_hz) & (f < hi_hz)].sum() / psd.sum())


@pytest.mark.parametrize("profile", sorted(MIX_PROFILES))
def test_hot_inputs_never_clip(songs, profile):
    a, b = songs
    result = mix_tracks([MixInput(a, gain_db=18.0), MixInput(b, gain_db=12.0, pan=0.7)], profile)
    assert true_peak_dbtp(result.audio) <= CEILING_DBTP + 1e-6
    assert sample_peak_dbfs(result.audio) < 0.0
    assert result.audio.channels == 2 and result.audio.samples.shape[1] == a.samples.shape[1]
    assert result.profile == profile


def test_profiles_shape_the_spectrum_as_named(songs):
    a, b = songs
    mixes = {p: mix_tracks([MixInput(a), MixInput(b)], p).audio for p in MIX_PROFILES}
    low = {p: _band_share(m, 20, 150) for p, m in mixes.items()}
    high = {p: _band_share(m, 4000, 16000) for p, m in mixes.items()}
    assert low["bass-heavy"] > max(low[p] for p in ("balanced", "bright"))
    assert high["bright"] > max(high[p] for p in ("balanced", "warm", "bass-heavy"))
    assert high["warm"] < high["balanced"]


def _tone_burst(freq_hz: float, seconds: float, tail_s: float, level: float = 0.3) -> Audio:
    t = np.arange(int(seconds * SR)) / SR
    tone = level * np.sin(2 * np.pi * freq_hz * t)
    x = np.concatenate([tone, np.zeros(int(tail_s * SR))])
    return Audio(np.stack([x, x]).astype(np.float32), SR)


def _harmonic_distortion(x: np.ndarray, f0: float) -> float:
    """Energy at 2f0..5f0 over energy at f0, from a Hann-windowed spectrum (bins +-3 summed)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    hz_per_bin = SR / len(x)

    def band(f: float) -> float:
        k = int(round(f / hz_per_bin))
        return float(spec[k - 3 : k + 4].sum())

    return sum(band(h * f0) for h in range(2, 6)) / band(f0)


def test_saturating_profiles_add_harmonics_and_the_clean_ones_do_not():
    # Measured on a pure tone, not read from the profile table: "warm" promises tape-like
    # saturation and "bass-heavy" harmonics that make bass audible; the others stay clean.
    f0 = 220.0
    thd = {}
    for name in MIX_PROFILES:
        out = mix_tracks([MixInput(_tone_burst(f0, 2.0, 0.0))], name).audio.mono()
        thd[name] = _harmonic_distortion(out[SR // 2 : SR // 2 + SR], f0)
    assert min(thd["warm"], thd["bass-heavy"]) > 10 * max(thd["balanced"], thd["bright"])
    assert min(thd["warm"], thd["bass-heavy"]) > 1e-6
    assert max(thd["balanced"], thd["bright"]) < 1e-9


def test_every_profile_leaves_a_reverb_tail_and_a_bigger_room_a_longer_one():
    tails = {}
    for name in MIX_PROFILES:
        out = mix_tracks([MixInput(_tone_burst(1000.0, 0.5, 1.5))], name).audio.mono()
        body = float(np.sqrt(np.mean(out[SR // 10 : SR // 2] ** 2)))
        # 100-600 ms after the tone stops: only the reverb can still sound there.
        tail = out[SR // 2 + SR // 10 : SR // 2 + 6 * SR // 10]
        tails[name] = 20 * np.log10(float(np.sqrt(np.mean(tail**2))) / body + 1e-12)
    assert all(-80.0 < db < -15.0 for db in tails.values()), tails
    assert tails["warm"] > tails["balanced"], tails  # room 0.5 vs 0.25 in the design


def test_an_unknown_profile_is_refused_by_name():
    with pytest.raises(InvalidInput) as err:
        profile_chain("loud")
    assert err.value.code == "BAD_PROFILE"
    assert "loud" in str(err.value) and "warm" in str(err.value)


def test_pan_law_and_hard_pan():
    left, right = pan_gains(0.0)
    assert left == pytest.approx(1.0) and right == pytest.approx(1.0)
    left, right = pan_gains(-1.0)
    assert right == pytest.approx(0.0, abs=1e-12) and left == pytest.approx(np.sqrt(2))
    # Constant power: the two sides' power sums to the same at every position.
    for pan in np.linspace(-1, 1, 9):
        lg, rg = pan_gains(pan)
        assert lg**2 + rg**2 == pytest.approx(2.0)


def test_hard_left_mono_input_leaves_the_right_side_to_the_reverb(songs):
    mono = Audio(songs[0].samples[:1], SR)
    out = mix_tracks([MixInput(mono, pan=-1.0)], "bass-heavy").audio
    left, right = np.sqrt(np.mean(out.samples**2, axis=1))
    assert 20 * np.log10(right / left) < -20  # only the stereo reverb's return reaches it


def test_a_muted_input_contributes_nothing(songs):
    a, b = songs
    alone = mix_tracks([MixInput(a)], "balanced").audio.samples
    with_muted = mix_tracks(
        [MixInput(a), MixInput(b, gain_db=6.0, mute=True)], "balanced"
    ).audio.samples
    np.testing.assert_allclose(with_muted, alone, atol=1e-6)


def test_offsets_delay_an_input_and_lengthen_the_mix(songs):
    a, b = songs
    out = mix_tracks([MixInput(a), MixInput(b, offset_s=1.5)], "balanced").audio
    assert out.samples.shape[1] == a.samples.shape[1] + int(1.5 * SR)


def test_nothing_to_mix_is_a_typed_error(songs):
    a, _ = songs
    with pytest.raises(InvalidInput) as err:
        mix_tracks([MixInput(a, mute=True)], "balanced")
    assert err.value.code == "NOTHING_TO_MIX"
    silent = Audio(np.zeros((2, SR), np.float32), SR)
    with pytest.raises(InvalidInput):
        mix_tracks([MixInput(silent)], "balanced")


def test_mix_kind_with_different_rates_and_track_settings(songs, tmp_path, run_pipeline):
    a, b = songs
    save_audio(tmp_path / "a.wav", a, "wav")
    save_audio(tmp_path / "b.flac", resample(b, 48000), "flac")
    params = {
        "profile": "warm",
        "tracks": [{"gain_db": -3, "pan": -0.4}, {"offset_s": 0.5}],
        "output_format": "flac",
    }
    run = run_pipeline("mix", [tmp_path / "a.wav", tmp_path / "b.flac"], params)
    assert run.result["sample_rate"] == 48000 and run.result["profile"] == "warm"
    assert run.result["loudness"]["true_peak_dbtp"] <= CEILING_DBTP
    assert run.result["duration_s"] == pytest.approx(4.5, abs=0.01)
    assert run.outputs["mix"].suffix == ".flac"
    with pytest.raises(InvalidInput) as err:
        run_pipeline("mix", [tmp_path / "a.wav", tmp_path / "b.flac"], {"tracks": [{}, {}, {}]})
    assert err.value.code == "TRACK_SETTINGS_MISMATCH"


def test_cli_mixes_then_masters_with_per_track_settings(songs, tmp_path):
    """``soundstage mix`` and ``soundstage master`` through the real entry point, locally."""
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "SOUNDSTAGE_DATA_DIR": str(tmp_path / "data"),
        "SOUNDSTAGE_CONFIG_DIR": str(tmp_path / "config"),
        "SOUNDSTAGE_LOG_LEVEL": "WARNING",
    }
    a, b = songs
    save_audio(tmp_path / "a.wav", a, "wav")
    save_audio(tmp_path / "b.wav", b, "wav")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    mixed = cli(
        "mix",
        str(tmp_path / "a.wav"),
        str(tmp_path / "b.wav"),
        "--profile",
        "warm",
        "--gains=-3,0",
        "--mute",
        "1",
        "-o",
        str(tmp_path / "mix.flac"),
        "--json",
        "--quiet",
    )
    assert mixed.returncode == 0, mixed.stderr
    result = json.loads(mixed.stdout)
    assert [x["mute"] for x in result["inputs"]] == [False, True] and result["inputs"][0][
        "gain_db"
    ] == -3.0
    assert (tmp_path / "mix.flac").exists()
    mastered = cli(
        "master",
        str(tmp_path / "mix.flac"),
        "--preset",
        "streaming",
        "-o",
        str(tmp_path / "master.wav"),
    )
    assert mastered.returncode == 0, mastered.stderr
    assert "before" in mastered.stderr and "after" in mastered.stderr
    assert (
        abs(loudness_report(load_audio(tmp_path / "master.wav"))["integrated_lufs"] + 14.0) <= 0.5
    )
    bad = cli("master", str(tmp_path / "mix.flac"), "-o", str(tmp_path / "master.aiff"))
    assert bad.returncode == 2 and "cannot write '.aiff'" in bad.stderr


@pytest.mark.parametrize("profile", sorted(MIX_PROFILES))
@pytest.mark.parametrize("sample_rate", [16000, 22050])
def test_every_profile_works_at_low_sample_rates(songs, profile, sample_rate):
    # The warm profile's 16 kHz low-pass sits above a 22.05 kHz file's Nyquist: tuned there, a
    # biquad blows up (inf, then a silent "mix" that mastering refused as SILENT_AUDIO).
    mono = resample(Audio(songs[0].samples[:1], SR), sample_rate)
    result = mix_tracks([MixInput(mono), MixInput(songs[1], gain_db=-3.0)], profile)
    out = result.audio.samples
    assert result.audio.sample_rate == SR  # the highest input rate
    low = mix_tracks([MixInput(mono)], profile, sample_rate=sample_rate)
    for samples in (out, low.audio.samples):
        assert np.all(np.isfinite(samples))
        assert float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > 0.01
    assert low.true_peak_dbtp <= CEILING_DBTP
