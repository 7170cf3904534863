"""The master's stages on their own, against analytic curves and meters that share no code with
them: the gain search's secant law on known loudness curves, the excerpt the search runs on,
and the last stage that holds the true peak (a long-filter resampler and ffmpeg read it)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from functions import master
from functions.audio_io import Audio, save_audio
from functions.master import (
    CEILING_MARGIN_DB,
    MAX_GAIN_STEP_DB,
    _next_gain,
    _saturated,
    excerpt,
    hold_true_peak,
    master_to_target,
)
from tests.functions.peak_meters import (
    ffmpeg_true_peak_dbtp,
    pyloudnorm_lufs,
    resampled_peak_dbtp,
)
from tests.synth import synth_song, tilted_noise


def _iterate(
    loudness, target: float, gain: float = 0.0, steps: int = 8
) -> list[tuple[float, float]]:
    """Secant steps on ``loudness(gain)`` until within 0.15 LU or the curve stops rising."""
    tried = [(gain, loudness(gain))]
    while (
        len(tried) < steps and abs(tried[-1][1] - target) > 0.15 and not _saturated(tried, target)
    ):
        gain = _next_gain(tried, target)
        tried.append((gain, loudness(gain)))
    return tried


def test_a_linear_loudness_curve_is_hit_in_one_step():
    # Below the limiter, loudness follows the gain dB for dB: the first step is the difference.
    tried = _iterate(lambda g: -30.0 + g, -14.0)
    assert tried == [(0.0, -30.0), (16.0, -14.0)]
    tried = _iterate(lambda g: -6.0 + g, -14.0)  # and down as well as up
    assert tried == [(0.0, -6.0), (-8.0, -14.0)]


@pytest.mark.parametrize(("slope", "start"), [(0.5, -20.0), (0.25, -16.0)])
def test_a_limited_loudness_curve_is_hit_by_a_secant_step(slope, start):
    # Past the limiter's threshold a dB of gain buys ``slope`` LU: the first plain step lands
    # short, the secant through the two tries lands on the target.
    tried = _iterate(lambda g: start + slope * g, -14.0)
    assert len(tried) == 3
    assert tried[1][0] == pytest.approx(-14.0 - start)
    assert tried[-1][1] == pytest.approx(-14.0, abs=1e-9)


def test_the_secant_slope_is_held_between_a_tenth_and_one():
    # A curve that falls with gain (a pumping limiter) would send a secant step backwards, one
    # steeper than 1 LU/dB would undershoot; held at 0.1 and 1 the steps go the right way.
    assert _next_gain([(0.0, -20.0), (2.0, -20.5)], -14.0) == pytest.approx(2.0 + 12.0)
    assert _next_gain([(0.0, -20.0), (1.0, -17.0)], -14.0) == pytest.approx(1.0 + 3.0)
    assert _next_gain([(0.0, -20.0), (2.0, -19.0)], -14.0) == pytest.approx(2.0 + 10.0)
    # Two tries at the same gain carry no slope: a plain step.
    assert _next_gain([(3.0, -20.0), (3.0, -20.0)], -14.0) == pytest.approx(9.0)


def test_a_plateau_stops_the_steps_instead_of_running_the_gain_away():
    # The limiter holds the loudness at -19 LUFS: steps are at most MAX_GAIN_STEP_DB and the
    # search stops once a step no longer raises the loudness.
    def loudness(g):
        return min(-19.0, -40.0 + g)

    tried = _iterate(loudness, -14.0)
    assert _saturated(tried, -14.0) and tried[-1][1] == -19.0
    assert len(tried) == 3 and tried[-1][0] < 40.0  # 21 dB to reach it, a step past it
    # A curve rising 0.1 LU/dB asks for a 60 dB secant step: it is held to MAX_GAIN_STEP_DB.
    tried = _iterate(lambda g: -20.0 + 0.1 * g, -14.0, steps=3)
    assert tried[2][0] - tried[1][0] == pytest.approx(MAX_GAIN_STEP_DB)
    # Rising 0.1 LU per dB is still worth following; 0.02 is not.
    assert not _saturated([(0.0, -20.0), (5.0, -19.5)], -14.0)
    assert _saturated([(0.0, -20.0), (5.0, -19.9)], -14.0)
    assert not _saturated([(5.0, -20.0), (5.2, -20.0)], -14.0)  # too small a step to tell
    assert _saturated([(5.0, -20.0), (6.0, -20.0)], -14.0)  # a whole dB that bought nothing
    assert not _saturated([(0.0, -20.0)], -14.0)
    # Over the target, a limiter that holds the loudness is no reason to stop: less gain will
    # bring it down (a track its excerpt misjudged, mastered far too loud on the first pass).
    assert not _saturated([(27.7, -6.7), (18.4, -5.7)], -16.0)
    assert _saturated([(27.7, -16.7), (28.4, -16.7)], -16.0)


def test_the_excerpt_is_evenly_spaced_pieces_covering_a_quarter():
    sr = 100  # the law is in samples; a low rate keeps the arrays small
    x = np.arange(200 * sr, dtype=np.float32)[None, :].repeat(2, axis=0)
    x[1] *= -1
    out = excerpt(x, sr)
    chunk = 4 * sr
    pieces = out.reshape(2, -1, chunk)
    assert pieces.shape[1] == 200 // 4 // 4  # 12 pieces of 4 s: a quarter of 200 s
    starts = pieces[0, :, 0].astype(int)
    assert starts[0] == 0 and starts[-1] == x.shape[1] - chunk  # the first and last 4 s
    assert np.all(np.abs(np.diff(starts) - (x.shape[1] - chunk) / 11) <= 1)  # evenly spaced
    for i, s in enumerate(starts):  # each piece is the track in place, both channels
        np.testing.assert_array_equal(pieces[:, i], x[:, s : s + chunk])


def test_a_track_under_eight_pieces_long_is_its_own_excerpt():
    sr = 100
    short = np.ones((2, 4 * 4 * 8 * sr - 1), np.float32)  # a quarter of it is under 8 pieces
    assert excerpt(short, sr) is short
    long = np.ones((2, 4 * 4 * 8 * sr), np.float32)
    assert excerpt(long, sr).shape == (2, 8 * 4 * sr)


def test_a_long_track_whose_excerpt_is_silent_is_searched_whole():
    # The gain search runs on eight 4 s pieces of a track of 128 s or more (the law above).
    # Here the music plays only between those pieces: the excerpt is silent, has no loudness
    # to start from, and the search must fall back on the whole track. A 16 kHz mono track
    # keeps the 128 s cheap.
    sr, chunk = 16000, 4 * 16000
    n = 128 * sr
    t = np.arange(n)
    tone = (0.05 * np.sin(2 * np.pi * 440 * t / sr)).astype(np.float32)
    x = np.zeros((1, n), np.float32)
    starts = np.linspace(0, n - chunk, 8).astype(int)
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        x[0, a + chunk + 2 * sr : b - 2 * sr] = tone[a + chunk + 2 * sr : b - 2 * sr]
    assert not excerpt(x, sr).any()  # the case this test is for
    out = master_to_target(Audio(x, sr), -16.0)
    assert pyloudnorm_lufs(out.audio) == pytest.approx(-16.0, abs=0.2)
    assert out.integrated_lufs == pytest.approx(-16.0, abs=0.15)


def test_a_track_its_excerpt_misjudges_takes_more_passes_and_says_so():
    # The excerpt's pieces play a tone 20 dB under the rest of the track: the gain the search
    # finds on them is far too much for the whole track, so the first full pass lands nowhere
    # near the target. The master must still land, and its report count the passes it took
    # (the first cannot have landed: its loudness is known from the excerpt's error).
    sr, chunk = 16000, 4 * 16000
    n = 128 * sr
    t = np.arange(n)
    x = (0.1 * np.sin(2 * np.pi * 440 * t / sr)).astype(np.float32)[None, :]
    starts = np.linspace(0, n - chunk, 8).astype(int)
    for a in starts:
        x[0, a : a + chunk] *= 0.1
    probe = Audio(excerpt(x, sr), sr)
    assert pyloudnorm_lufs(Audio(x, sr)) - pyloudnorm_lufs(probe) > 15.0  # the case
    out = master_to_target(Audio(x, sr), -16.0)
    assert pyloudnorm_lufs(out.audio) == pytest.approx(-16.0, abs=0.2)
    assert 2 <= out.chain["iterations"] <= 8


def _peaky(sr: int = 48000, seconds: float = 2.0) -> np.ndarray:
    """A quiet 1 kHz tone with three loud bursts near a quarter of the sample rate sampled off
    their crests, so their inter-sample peaks stand 3 dB over their samples."""
    t = np.arange(int(sr * seconds))
    x = 0.1 * np.sin(2 * np.pi * 1000 * t / sr)
    for start in (0.3, 0.9, 1.5):
        a, b = int(start * sr), int((start + 0.02) * sr)
        x[a:b] += 0.95 * np.sin(np.pi * t[a:b] / 2 + np.pi / 4)
    return np.stack([x, 0.8 * x]).astype(np.float32)


def test_the_last_stage_holds_the_true_peak_by_independent_meters(tmp_path):
    sr = 48000
    x = _peaky(sr)
    before = resampled_peak_dbtp(Audio(x, sr), factor=16)
    assert before > -0.5  # the bursts' waveform peaks near 0 dBTP
    out, reduction_db, peak = hold_true_peak(x, sr, -1.0)
    written = Audio(out, sr)
    after = resampled_peak_dbtp(written, factor=16)
    path = save_audio(tmp_path / "held.wav", written, "wav", bit_depth=24)
    assert after <= -1.0 and ffmpeg_true_peak_dbtp(path) <= -1.0
    # Held just under the ceiling, not far below it: the rider aims 0.35 dB under it on the 4x
    # points (which read the bursts' crests about 0.1 dB low). The reported figures are the
    # measured ones.
    assert -1.0 - 0.4 <= after <= -1.0 - 0.15
    assert peak == pytest.approx(after, abs=0.05)
    assert reduction_db == pytest.approx(before - after, abs=0.02)
    # Only the bursts are touched: the tone between them keeps its level.
    quiet = slice(int(0.6 * sr), int(0.8 * sr))
    np.testing.assert_allclose(out[:, quiet], x[:, quiet], rtol=1e-6, atol=1e-7)


def test_the_last_stage_leaves_audio_under_the_ceiling_alone():
    x = _peaky() * np.float32(0.5)  # bursts peak near -6 dBTP
    out, reduction_db, peak = hold_true_peak(x, 48000, -1.0)
    np.testing.assert_array_equal(out, x)
    assert reduction_db == 0.0
    assert peak == pytest.approx(resampled_peak_dbtp(Audio(x, 48000), factor=16), abs=0.05)


def test_the_last_stage_catches_peaks_the_4x_grid_misses(tmp_path):
    # A tone at 0.46 of the sample rate that starts and stops abruptly: at its edges the
    # waveform rises between the 4x points, so the rider's first aim lets some through; it must
    # aim lower until no meter reads over the ceiling, and its figure is at or above theirs.
    sr = 44100
    t = np.arange(sr // 2)
    x = (0.99 * np.sin(2 * np.pi * 0.46 * t + 0.9)).astype(np.float32)[None, :]
    out, _, peak = hold_true_peak(x, sr, -1.0)
    written = Audio(out, sr)
    long_filter = resampled_peak_dbtp(written, factor=16)
    ffmpeg = ffmpeg_true_peak_dbtp(save_audio(tmp_path / "held.wav", written, "wav", bit_depth=24))
    assert max(long_filter, ffmpeg) <= -1.0
    assert max(long_filter, ffmpeg) - 0.05 <= peak <= -1.0 - CEILING_MARGIN_DB
    # The tone itself (its amplitude fitted mid-way) is held under the ceiling, not crushed.
    mid = t[sr // 8 : 3 * sr // 8]
    basis = np.stack([np.sin(2 * np.pi * 0.46 * mid), np.cos(2 * np.pi * 0.46 * mid)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, out[0, sr // 8 : 3 * sr // 8].astype(np.float64), rcond=None)
    assert -2.0 <= 20 * np.log10(np.hypot(*coef)) <= -1.0


def test_a_rider_that_falls_short_is_made_up_by_a_static_trim(monkeypatch):
    # The rider's retries land first on every signal met so far; the trim after them is the
    # safety net. A stand-in rider that takes 1.5 dB off everywhere, never enough for bursts
    # 6.4 dB over a -6 dBTP ceiling, leaves the rest to the trim: the output is held just
    # under the ceiling by a long-filter meter, and the reduction and peak reported are the
    # ones measured (the rider's 1.5 dB and the trim's together).
    monkeypatch.setattr(
        master, "limiter_gain", lambda env, *_: np.full(env.shape[-1], 10 ** (-1.5 / 20))
    )
    sr = 48000
    x = _peaky(sr)
    before = resampled_peak_dbtp(Audio(x, sr), factor=16)
    out, reduction_db, peak = hold_true_peak(x, sr, -6.0)
    after = resampled_peak_dbtp(Audio(out, sr), factor=16)
    assert -6.0 - CEILING_MARGIN_DB - 0.02 <= after <= -6.0 - CEILING_MARGIN_DB + 0.01
    assert peak == pytest.approx(after, abs=0.02)
    assert reduction_db == pytest.approx(before - after, abs=0.02)
    assert reduction_db > 6.0  # the trim did most of it


def _tone_level_db(y: np.ndarray, start: int, freq: float, sr: int, size: int = 200) -> float:
    """The level (dB) of the ``freq`` tone in ``y[start : start + size]``, fitted by least squares
    (the clicks' own energy lies elsewhere in frequency and time)."""
    t = np.arange(start, start + size) / sr
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y[start : start + size].astype(np.float64), rcond=None)
    return float(20 * np.log10(np.hypot(*coef)))


def test_the_clipper_takes_the_transient_tips_so_the_limiter_ducks_little():
    # A steady tone with a loud click every 250 ms, mastered loud (club): the soft clipper holds
    # each click to 2 dB over the limiter's ceiling (its inter-sample overs add about 2 dB
    # more), so the limiter ducks the tone around a click by about 4 dB. Were the clipper's
    # ceiling higher, the limiter would take more of each click and pump the tone deeper.
    sr, freq = 44100, 441.0
    t = np.arange(3 * sr)
    x = 0.05 * np.sin(2 * np.pi * freq * t / sr)
    clicks = np.arange(sr // 4, len(t) - sr // 10, sr // 4)
    burst = 0.9 * np.hanning(44) * np.sign(np.sin(2 * np.pi * 3000 * np.arange(44) / sr))
    for c in clicks:
        x[c : c + 44] += burst
    out = master_to_target(Audio(x[None, :].astype(np.float32), sr), -8.0, preset="club")
    y = out.audio.samples[0]
    ducks = []
    for c in clicks[1:]:
        steady = _tone_level_db(y, c - sr // 10, freq, sr)
        after = [_tone_level_db(y, a, freq, sr) for a in range(c + 100, c + sr // 16, 50)]
        ducks.append(steady - min(after))
    assert 3.0 <= min(ducks) and max(ducks) <= 4.6, (np.round(ducks, 2), out.chain)


@pytest.mark.parametrize(("preset", "ratio"), [("streaming", 1.5), ("cd", 2.5), ("club", 3.0)])
def test_the_glue_compressor_works_on_the_loud_moments_at_the_presets_ratio(preset, ratio):
    # A steady tone with 0.3 s bursts 5, 14 and 20 dB over it, mastered quietly (-22 LUFS, so
    # the limiter stays out of it). The compressor's threshold sits 6 dB over the programme's
    # loudness: the 5 dB burst passes as it came; over the threshold, 6 dB more input gives
    # 6 / ratio dB more output.
    sr, freq = 44100, 441.0
    segments = [(0, 2.0), (5, 0.3), (0, 2.0), (14, 0.3), (0, 2.0), (20, 0.3), (0, 1.0)]
    levels = np.concatenate([np.full(int(s * sr), 10 ** (db / 20)) for db, s in segments])
    x = 0.01 * levels * np.sin(2 * np.pi * freq * np.arange(len(levels)) / sr)
    out = master_to_target(Audio(x[None, :].astype(np.float32), sr), -22.0, preset=preset)
    y = out.audio.samples[0]
    tone = _tone_level_db(y, sr, freq, sr, size=sr // 2)
    # Each burst's level over its last 50 ms (the compressor's 30 ms attack has settled).
    ends = np.cumsum([int(s * sr) for _, s in segments])[[1, 3, 5]]
    bursts = [_tone_level_db(y, e - sr // 16, freq, sr, size=sr // 20) - tone for e in ends]
    assert bursts[0] == pytest.approx(5.0, abs=0.3), (bursts, out.chain)
    assert (bursts[2] - bursts[1]) / 6.0 == pytest.approx(1 / ratio, abs=0.03), (bursts, out.chain)


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        (
            "streaming",
            {"glue_ratio": 1.5, "limiter_ceiling_dbtp": -1.6, "limiter_release_ms": 100.0}
            | {"soft_clip": False, "limiter_detector": "sample_peak"},
        ),
        (
            "club",
            {"glue_ratio": 3.0, "limiter_ceiling_dbtp": -1.4, "limiter_release_ms": 40.0}
            | {"soft_clip": True, "limiter_detector": "true_peak_4x"},
        ),
    ],
)
def test_the_chain_report_says_what_the_master_did(preset, expected):
    # The job's result carries this report: the tilt it measured (noise whose octave bands fall
    # 6 dB/oct), the shelves, the preset's glue and limiter (0.6 dB under the ceiling on
    # samples, 0.4 on the 4x detector), in figures rounded for people (0.01, the threshold 0.1).
    out = master_to_target(tilted_noise(-9.0, seconds=2.0), -14.0, preset=preset)
    chain = out.chain
    assert set(chain) == {
        "spectral_tilt_db_per_oct",
        "low_shelf_150hz_db",
        "high_shelf_4khz_db",
        "glue_ratio",
        "glue_threshold_dbfs",
        "gain_db",
        "limiter_ceiling_dbtp",
        "limiter_release_ms",
        "soft_clip",
        "limiter_detector",
        "true_peak_safety_reduction_db",
        "iterations",
    }
    assert {k: chain[k] for k in expected} == expected
    assert chain["spectral_tilt_db_per_oct"] == pytest.approx(-6.0, abs=0.25)
    high = chain["high_shelf_4khz_db"]  # 1.5 dB/oct dark: a quarter of 1.5 x 4.74 dB each
    assert high == -chain["low_shelf_150hz_db"] == pytest.approx(1.78, abs=0.15)
    for key in ("spectral_tilt_db_per_oct", "gain_db", "true_peak_safety_reduction_db"):
        assert round(chain[key], 2) == chain[key], key
    # A reduction is never negative; where the stage did nothing (club here) it reads 0.0,
    # not -0.0 (which JSON would carry).
    assert math.copysign(1.0, chain["true_peak_safety_reduction_db"]) == 1.0
    assert round(chain["glue_threshold_dbfs"], 1) == chain["glue_threshold_dbfs"]
    assert round(out.integrated_lufs, 2) == out.integrated_lufs
    assert round(out.true_peak_dbtp, 2) == out.true_peak_dbtp
    assert out.true_peak_dbtp == pytest.approx(resampled_peak_dbtp(out.audio), abs=0.1)


@pytest.mark.parametrize("preset", ["streaming", "club"])
def test_the_stages_run_as_two_halves_give_one_pass_over_the_whole_track(preset):
    # A song with a loud burst that straddles the join, and a spike 3 ms after it: the
    # compressor and the limiter are both working there, so a half that started cold, or ended
    # without its look-ahead, would differ from one pass over the whole track.
    sr = 44100
    audio, _ = synth_song(124, "A minor", 12.0, sr=sr, seed=5)
    x = np.ascontiguousarray(audio.samples, dtype=np.float32)
    mid = x.shape[1] // 2
    x[:, mid - sr // 4 : mid + sr // 4] *= np.float32(4.0)
    x[:, mid + 130 : mid + 140] = np.float32(3.0)  # a spike the look-ahead must see coming
    chosen = master.PRESETS[preset]

    def glue(piece):
        return master._glue_chain(chosen, 1.0, -1.0, -18.0)(piece, sr)

    whole = glue(x)
    assert (
        np.abs(whole[:, mid - 100 : mid + 100]).max()
        < 0.9 * np.abs(x[:, mid - 100 : mid + 100]).max()
    )
    assert np.array_equal(master.in_halves(glue, x, sr), whole)

    ceiling_db = -1.4
    limited = master._limit(whole, sr, 9.0, ceiling_db, chosen)  # in halves
    one_pass = master._limit_piece(whole, sr, 9.0, ceiling_db, chosen)
    z = master._limiter_input(whole, 9.0, ceiling_db, chosen)
    # The limiter is holding peaks down at the join (by more than 1 dB).
    near = slice(mid - sr // 50, mid + sr // 50)
    assert np.abs(z[:, near]).max() > 1.12 * np.abs(one_pass[:, near]).max()
    assert np.allclose(limited, one_pass, rtol=0, atol=1e-6)


def test_the_4x_envelope_in_halves_is_the_whole_tracks():
    # Each 4x point reads 6 samples either side: halves that overlap by 16 give exactly one
    # pass's envelope; halves that overlap by 2 do not (the check can tell the two apart).
    from functions.music.mastering import oversampled_peak

    x = (np.random.default_rng(1).standard_normal((2, 200_001)) * 0.3).astype(np.float32)
    whole = oversampled_peak(x)
    assert np.array_equal(master.in_halves(oversampled_peak, x, 44100, pre=16, post=16), whole)
    assert not np.array_equal(master.in_halves(oversampled_peak, x, 44100, pre=2, post=2), whole)
