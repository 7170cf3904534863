"""Mastering: from inputs of very different loudness, every preset lands within 0.5 LU of its
target (pyloudnorm, BS.1770-4) with a true peak at most -1.0 dBTP by every meter a user may
hold it to (ours, ffmpeg's ebur128, a long-filter 4x resampler); the job reports loudness
before and after."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from functions.audio_io import Audio, load_audio, save_audio
from functions.loudness import integrated_lufs, loudness_report, reconstructed_peak_dbtp
from functions.master import (
    PRESETS,
    check_target,
    master_to_target,
    preset_for_target,
    soft_clip,
    tonal_balance_db,
)
from shared.errors import InvalidAudio, InvalidInput
from tests.functions.peak_meters import (
    ffmpeg_true_peak_dbtp,
    pyloudnorm_lufs,
    resampled_peak_dbtp,
)
from tests.synth import synth_song, tilted_noise

TOLERANCE_LU = 0.5
CEILING_DBTP = -1.0


@pytest.fixture(scope="module")
def inputs() -> dict[str, Audio]:
    """Three mixes: a quiet dynamic one (~-33 LUFS), a moderate one, a hot brick-walled one."""
    a, _ = synth_song(bpm=96, key="F minor", duration_s=8.0, seed=4, vocals=True)
    b, _ = synth_song(bpm=128, key="E major", duration_s=8.0, seed=5)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(b.samples.shape).astype(np.float32) * 0.02
    hot = np.clip((b.samples + noise) * 4.0, -1.0, 1.0)  # clipped: already "mastered" loud
    return {
        "quiet": Audio(a.samples * np.float32(10 ** (-16 / 20)), a.sample_rate),
        "moderate": a,
        "hot": Audio(hot.astype(np.float32), b.sample_rate),
    }


@pytest.mark.parametrize(
    ("source", "preset", "target"),
    [
        ("quiet", "streaming", None),
        ("quiet", "club", None),
        ("moderate", "cd", None),
        ("hot", "streaming", None),
        ("hot", "club", None),
        ("moderate", None, -18.0),
    ],
)
def test_lands_on_target_under_the_ceiling(inputs, source, preset, target, tmp_path):
    audio = inputs[source]
    target_lufs = target if target is not None else PRESETS[preset].target_lufs
    out = master_to_target(audio, target_lufs, preset=preset)
    measured = pyloudnorm_lufs(out.audio)
    report = loudness_report(out.audio)
    assert abs(measured - target_lufs) <= TOLERANCE_LU, (source, preset, measured, out.chain)
    # A short track is its own excerpt: the gain search's last try is the first full pass, so
    # the loop measures once (the cost of a master is one limiter pass and one loudness).
    assert out.chain["iterations"] == 1, out.chain
    assert out.audio.samples.shape == audio.samples.shape
    # The ceiling holds by every meter, on the file as a user gets it (24-bit WAV).
    path = save_audio(tmp_path / "master.wav", out.audio, "wav", bit_depth=24)
    written = load_audio(path)
    meters = {
        "ours (BS.1770 4x)": report["true_peak_dbtp"],
        "reconstructed": reconstructed_peak_dbtp(written),
        "ffmpeg ebur128": ffmpeg_true_peak_dbtp(path),
        "resample_poly 4x": resampled_peak_dbtp(written),
    }
    assert all(v <= CEILING_DBTP for v in meters.values()), (source, preset, meters)


def test_fast_meter_agrees_with_pyloudnorm(inputs):
    rng = np.random.default_rng(1)
    cases = [
        *inputs.values(),
        Audio((rng.standard_normal((1, 48000 * 3)) * 0.1).astype(np.float32), 48000),
    ]
    for audio in cases:
        ours = integrated_lufs(audio)
        assert ours == pytest.approx(pyloudnorm_lufs(audio), abs=0.05)


def test_soft_clip_is_transparent_below_its_knee_and_bounded_above():
    x = np.linspace(-3.0, 3.0, 10001).astype(np.float32)
    y = soft_clip(x, ceiling=1.0, knee_db=3.0)
    knee = 10 ** (-3 / 20)
    below = np.abs(x) <= knee
    np.testing.assert_array_equal(y[below], x[below])
    assert np.max(np.abs(y)) < 1.0 and np.all(np.diff(y) >= 0)  # bounded and monotonic


def test_silence_and_impossible_targets_are_typed_errors(inputs):
    silent = Audio(np.zeros((2, 44100 * 2), np.float32), 44100)
    with pytest.raises(InvalidAudio) as err:
        master_to_target(silent, -14.0)
    assert err.value.code == "SILENT_AUDIO"
    assert str(err.value) == "The audio is silent or too short to master."
    # Under the -70 LUFS gate (a -75 dBFS tone) is silence too.
    t = np.arange(44100 * 2) / 44100
    whisper = (10 ** (-75 / 20) * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    with pytest.raises(InvalidAudio):
        master_to_target(Audio(np.stack([whisper, whisper]), 44100), -14.0)
    with pytest.raises(InvalidInput) as err:
        master_to_target(inputs["moderate"], -3.0)
    assert err.value.code == "BAD_TARGET"


def test_master_kind_reports_before_and_after_and_keeps_mp3_under_the_ceiling(
    inputs, tmp_path, run_pipeline
):
    src = tmp_path / "quiet.wav"
    save_audio(src, inputs["quiet"], "wav", bit_depth=24)
    run = run_pipeline("master", [src], {"preset": "club", "output_format": "mp3"})
    r = run.result
    for report in (r["before"], r["after"]):
        assert set(report) == {"integrated_lufs", "lra_lu", "true_peak_dbtp", "sample_peak_dbfs"}
    assert r["before"]["integrated_lufs"] < -25
    assert abs(r["after"]["integrated_lufs"] - (-8.0)) <= TOLERANCE_LU
    # The after report is of the file as written: decode it and measure again.
    written = load_audio(run.outputs["master"])
    assert loudness_report(written)["true_peak_dbtp"] <= CEILING_DBTP
    assert [s["name"] for s in run.stages] == ["analyzing", "mastering"]


def test_custom_target_is_validated(tmp_path, run_pipeline, inputs):
    src = tmp_path / "m.wav"
    save_audio(src, inputs["moderate"], "wav")
    with pytest.raises(InvalidInput):
        run_pipeline("master", [src], {"target_lufs": -2.0})
    run = run_pipeline("master", [src], {"target_lufs": -16.0, "output_format": "flac"})
    assert (
        run.result["target_lufs"] == -16.0 and abs(run.result["loudness_error_lu"]) <= TOLERANCE_LU
    )


def test_master_through_the_api_and_its_bad_input(api, inputs, tmp_path):
    src = tmp_path / "moderate.flac"
    save_audio(src, inputs["moderate"], "flac")
    bad = api.create_job("master", [src], {"preset": "club", "target_lufs": -3})
    assert bad.status_code == 422 and bad.json()["code"] == "INVALID_PARAMS"
    job = api.run("master", [src], {"preset": "streaming"})
    assert job["status"] == "completed", job["error"]
    assert abs(job["result"]["after"]["integrated_lufs"] + 14.0) <= TOLERANCE_LU
    (out,) = job["outputs"]
    path = tmp_path / out["filename"]
    path.write_bytes(api.fetch(out["url"]))
    assert loudness_report(load_audio(path))["true_peak_dbtp"] <= CEILING_DBTP


@pytest.mark.parametrize(
    ("target", "ok"), [(-24.0, True), (-6.0, True), (-24.1, False), (-5.9, False)]
)
def test_targets_from_minus_24_to_minus_6_lufs_are_accepted(target, ok):
    if ok:
        check_target(target)
        return
    with pytest.raises(InvalidInput) as err:
        check_target(target)
    assert err.value.code == "BAD_TARGET"
    assert str(err.value) == "The loudness target must be between -24 and -6 LUFS."


def test_a_loud_master_uses_its_headroom_up_to_the_ceiling_it_is_given(inputs):
    # At -8 LUFS the limiter works on every beat: the peaks sit just under the ceiling (the
    # last stage keeps 0.05 dB, the limiter's margin a few tenths), not more than a dB below.
    for ceiling, kwargs in ((-1.0, {}), (-2.0, {"ceiling_dbtp": -2.0})):
        out = master_to_target(inputs["hot"], -8.0, **kwargs)
        peak = resampled_peak_dbtp(out.audio)
        assert ceiling - 1.0 <= peak <= ceiling, (ceiling, peak, out.chain)
    # The quiet mix takes 19 dB to reach the streaming -14: its drum hits meet the sample-peak
    # limiter, which holds the samples 0.6 dB under the ceiling (the last stage takes the
    # inter-sample overs it lets through).
    out = master_to_target(inputs["quiet"], -14.0, preset="streaming")
    sample_peak = 20 * np.log10(float(np.abs(out.audio.samples).max()))
    assert -1.0 - 0.8 <= sample_peak <= -1.0 - 0.4, (sample_peak, out.chain)
    assert resampled_peak_dbtp(out.audio) <= -1.0


@pytest.mark.parametrize(
    ("noise_slope", "shelves"),
    [
        (-7.5, (0.0, 0.0)),  # octave bands fall 4.5 dB/oct: the reference, left alone
        (-9.5, (-2.37, 2.37)),  # 2 dB/oct darker: half of 2 x log2(4000/150) dB, split in two
        (-20.0, (-3.0, 3.0)),  # far darker: brightened by 3 dB at most
        (0.0, (3.0, -3.0)),  # white noise, +3 dB/oct: darkened by 3 dB at most
    ],
)
def test_tonal_balance_shelves_pull_half_the_tilt_back_within_three_db(noise_slope, shelves):
    # The noise's density falls ``noise_slope`` dB per octave, so its octave bands (twice as
    # wide each octave up) fall 3 dB less: -7.5 is the reference's -4.5 dB/oct.
    tilt, low_db, high_db = tonal_balance_db(tilted_noise(noise_slope))
    assert tilt == pytest.approx(noise_slope + 3.0, abs=0.25)
    assert (low_db, high_db) == (
        pytest.approx(shelves[0], abs=0.15),
        pytest.approx(shelves[1], abs=0.15),
    )


def test_soft_clip_knee_sits_three_db_under_the_ceiling_by_default():
    x = np.array([10 ** (-3.05 / 20), 10 ** (-2.95 / 20), 2.0], dtype=np.float32)
    y = soft_clip(x, ceiling=1.0)
    assert y[0] == x[0]  # linear 3.05 dB under the ceiling
    assert y[1] < x[1]  # rounded 2.95 dB under it
    assert 10 ** (-3 / 20) < y[2] < 1.0
    # The curve leaves the line with its slope (1) and closes on the ceiling: tanh's shape.
    knee = 10 ** (-3 / 20)
    step = np.float32(1e-3)
    assert (soft_clip(np.array([knee + step], np.float32), 1.0)[0] - knee) / step == (
        pytest.approx(1.0, abs=0.02)
    )
    assert soft_clip(np.array([knee + 3 * (1 - knee)], np.float32), 1.0)[0] == pytest.approx(
        knee + (1 - knee) * np.tanh(3.0), abs=1e-4
    )


def test_presets_are_the_published_targets_and_a_custom_target_takes_the_nearest():
    # The targets the README publishes: streaming -14, CD -9, club -8 LUFS.
    assert {k: p.target_lufs for k, p in PRESETS.items()} == {
        "streaming": -14.0,
        "cd": -9.0,
        "club": -8.0,
    }
    cases = {-18.0: "streaming", -11.6: "streaming", -11.4: "cd", -8.6: "cd", -8.4: "club"}
    assert {t: preset_for_target(t) for t in cases} == cases
    with pytest.raises(dataclasses.FrozenInstanceError):  # no job can change a preset for all
        PRESETS["club"].target_lufs = -3.0  # type: ignore[misc]


def test_tonal_balance_of_a_clip_shorter_than_its_analysis_window():
    # 0.15 s of white noise (6615 samples, under Welch's 8192): still measured, still bright.
    rng = np.random.default_rng(3)
    clip = Audio((0.1 * rng.standard_normal((2, 6615))).astype(np.float32), 44100)
    tilt, low_db, high_db = tonal_balance_db(clip)
    assert tilt == pytest.approx(3.0, abs=1.0)
    assert (low_db, high_db) == (3.0, -3.0)


def test_the_fast_spectrum_is_scipys_welch():
    # The tonal balance reads a Welch spectrum computed without scipy's per-segment loop: it
    # must be scipy's (back-to-back Hann segments, each with its mean removed), bin for bin.
    from scipy.signal import welch

    from functions.master import _welch

    rng = np.random.default_rng(7)
    x = (0.3 + rng.standard_normal(44100 * 2)).astype(np.float32)  # with an offset to remove
    freqs, psd = _welch(x, 44100, 8192)
    ref_freqs, ref_psd = welch(x, fs=44100, nperseg=8192, noverlap=0, average="mean")
    np.testing.assert_allclose(freqs, ref_freqs)
    np.testing.assert_allclose(psd, ref_psd, rtol=1e-4, atol=1e-12)


def _noise_at(sample_rate: int, slope_db_per_oct: float, seconds: float = 6.0) -> Audio:
    """Mono noise at ``sample_rate`` whose density falls ``slope_db_per_oct`` per octave."""
    rng = np.random.default_rng(11)
    n = int(seconds * sample_rate)
    f = np.fft.rfftfreq(n, 1 / sample_rate)
    shape = (np.maximum(f, 20.0) / 1000.0) ** (slope_db_per_oct / (20 * np.log10(2)))
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n=n)
    return Audio((0.1 * x / np.abs(x).max()).astype(np.float32)[None, :], sample_rate)


@pytest.mark.parametrize("sample_rate", [1000, 8000, 16000, 22050])
def test_tonal_balance_reads_the_same_tilt_at_low_sample_rates(sample_rate):
    # Octave bands that would reach past Nyquist are left out, so a telephone-rate or 16 kHz
    # file's tilt is the noise's own (its octave bands fall 3 dB/oct less than its density);
    # at 1 kHz three bands fit (60, 120, 240 Hz): enough for a tilt.
    tilt, low_db, high_db = tonal_balance_db(_noise_at(sample_rate, -9.5))
    assert tilt == pytest.approx(-6.5, abs=0.4)
    assert low_db == pytest.approx(-2.37, abs=0.3) and high_db == -low_db


def test_tonal_balance_leaves_audio_with_under_three_octave_bands_alone():
    # At 600 Hz only the 60 and 120 Hz bands fit under Nyquist: too few for a tilt.
    assert tonal_balance_db(_noise_at(600, 0.0)) == (0.0, 0.0, 0.0)


def _band_levels_db(audio: Audio) -> np.ndarray:
    """Levels (dB) of the 60-100 Hz, 0.8-1.25 kHz and 8-12 kHz bands (scipy's Welch PSD)."""
    from scipy.signal import welch

    f, psd = welch(audio.mono(), fs=audio.sample_rate, nperseg=8192)
    edges = [(60, 100), (800, 1250), (8000, 12000)]
    return np.array([10 * np.log10(psd[(f >= lo) & (f < hi)].sum()) for lo, hi in edges])


@pytest.mark.parametrize(
    ("slope", "shelf_db"),
    [
        (0.0, -3.0),  # white noise (octave bands +3 dB/oct): far brighter, darkened by 3 dB
        (-9.0, 1.78),  # octave bands -6 dB/oct: 1.5 dB/oct dark, a quarter of 1.5 x 4.74 dB
    ],
)
def test_tonal_balance_moves_the_measured_bands_by_the_shelves(slope, shelf_db):
    # Measured on the audio, not on the chain report: relative to the 1 kHz band, the band an
    # octave over the 4 kHz shelf moves by the shelf's full gain, the 60-100 Hz band (most of
    # an octave under the 150 Hz shelf) by most of the opposite gain.
    audio = tilted_noise(slope, seconds=2.0)
    out = master_to_target(audio, -14.0)
    change = _band_levels_db(out.audio) - _band_levels_db(audio)
    low, high = change[0] - change[1], change[2] - change[1]
    assert high == pytest.approx(shelf_db, abs=0.3), (change, out.chain)
    assert 0.7 <= low / -shelf_db <= 1.4, (change, out.chain)


def test_a_target_out_of_reach_ends_as_loud_as_the_ceiling_lets_it():
    # Noise falling 20 dB/oct keeps its energy under the K-weighting's 38 Hz high pass: the
    # limiter holds it near -19 LUFS however much gain goes in. The master must stop there,
    # finite and under the ceiling, and report the loudness it reached; not run the gain off
    # to infinity (which made it NaN).
    out = master_to_target(tilted_noise(-20.0, seconds=2.0), -14.0)
    assert np.isfinite(out.audio.samples).all()
    measured = pyloudnorm_lufs(out.audio)
    assert measured == pytest.approx(out.integrated_lufs, abs=0.1)
    assert -24.0 < measured < -14.0 - TOLERANCE_LU
    # The loudest gain tried (-18.8 LUFS), not the last one (past the plateau, -19.2).
    assert measured > -19.0
    assert resampled_peak_dbtp(out.audio) <= CEILING_DBTP


def _shaped_noise(
    boost: tuple[float, float, float] | None = None, lowpass_hz=None, sr: int = 44100
) -> Audio:
    """Stereo noise whose octave bands fall 4.5 dB/oct (the reference tilt), with
    ``(lo_hz, hi_hz, db)`` boosted and nothing above ``lowpass_hz``, where given."""
    n = 6 * sr
    rng = np.random.default_rng(5)
    f = np.fft.rfftfreq(n, 1 / sr)
    shape = (np.maximum(f, 20.0) / 1000.0) ** (-7.5 / (20 * np.log10(2)))
    if boost:
        lo, hi, db = boost
        shape = shape * np.where((f >= lo) & (f < hi), 10 ** (db / 20), 1.0)
    if lowpass_hz:
        shape = shape * (f < lowpass_hz)
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal((2, n)), axis=1) * shape, n=n, axis=1)
    return Audio((0.1 * x / np.abs(x).max()).astype(np.float32), sr)


@pytest.mark.parametrize(("sample_rate", "band", "change"), [(44100, 0, -1.0), (22050, 7, 1.0)])
def test_tonal_balance_fits_the_eight_octave_bands_from_60_hz_to_11_khz(sample_rate, band, change):
    # The tilt is the least-squares slope over octave bands centred 60 Hz .. 7.7 kHz (x = 0..7):
    # 12 dB more in band x alone moves it by 12 x (x - 3.5) / 42 dB/oct: -1 for the lowest,
    # +1 for the highest (5.4 - 10.9 kHz, under a 22.05 kHz file's Nyquist: it counts).
    reference, _, _ = tonal_balance_db(_shaped_noise(sr=sample_rate))
    lo = 60.0 * 2**band / np.sqrt(2)
    boosted, _, _ = tonal_balance_db(_shaped_noise(boost=(lo, 2 * lo, 12.0), sr=sample_rate))
    assert boosted - reference == pytest.approx(change, abs=0.15)


def test_tonal_balance_leaves_out_everything_over_its_top_band():
    # Nothing above the top band's 10.9 kHz edge counts: an MP3-like cut at 11.5 kHz leaves it.
    reference, _, _ = tonal_balance_db(_shaped_noise())
    cut, _, _ = tonal_balance_db(_shaped_noise(lowpass_hz=11500.0))
    assert cut == pytest.approx(reference, abs=0.02)
