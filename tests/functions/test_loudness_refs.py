"""Loudness and true peak against references that share no code with ours.

- EBU Tech 3341 (loudness) and Tech 3342 (loudness range) test signals, generated here, with the
  expected values those documents publish.
- ffmpeg's ``ebur128`` filter (its own K-filter, gating and histogram LRA) and pyloudnorm's meter
  on material with real dynamics: a quiet intro, a silence gap and a fade, where the relative
  gates decide the answer (a steady synthesized song reads the same whatever the gates are).
- The real recordings of the shared evaluation folder, read in place when they are there.
- True peak against ffmpeg's meter and a long-filter polyphase oversampler.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from functions.audio_io import Audio, load_audio, save_audio
from functions.loudness import (
    _hop_powers,
    _window_loudness,
    integrated_lufs,
    loudness_range_lu,
    loudness_report,
    reconstructed_peak_dbtp,
    true_peak_dbtp,
)
from tests.functions.peak_meters import ffmpeg_ebur128, pyloudnorm_lufs, resampled_peak_dbtp
from tests.synth import sine_segments, synth_song

RATE = 48000
EVAL_AUDIO = Path(
    os.environ.get(
        "SOUNDSTAGE_EVAL_AUDIO", Path(__file__).resolve().parents[3] / "shared" / "eval-audio"
    )
)


# EBU Tech 3341 (2016), table 1: stereo 1 kHz sines; expected I = -23.0 +- 0.1 LUFS except
# case 2 (-33.0). Cases 3-5 hold quiet parts the -10 LU relative gate must remove.
EBU_3341 = {
    "case1": ([(-23.0, 20.0)], -23.0),
    "case2": ([(-33.0, 20.0)], -33.0),
    "case3": ([(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),
    "case4": ([(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)], -23.0),
    "case5": ([(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)], -23.0),
}

# EBU Tech 3342 (2016), table 1: expected LRA +- 1 LU.
EBU_3342 = {
    "case1": ([(-20.0, 20.0), (-30.0, 20.0)], 10.0),
    "case2": ([(-20.0, 20.0), (-15.0, 20.0)], 5.0),
    "case3": ([(-40.0, 20.0), (-20.0, 20.0)], 20.0),
    "case4": ([(-50.0, 20.0), (-35.0, 20.0), (-20.0, 20.0), (-35.0, 20.0), (-50.0, 20.0)], 15.0),
}


def test_ebu_3341_case6_five_channels():
    # 5.0: L and R at -28 dBFS, C at -24, Ls and Rs at -30: the surround gains (1.41) and the
    # centre's (1.0) make it -23.0 +- 0.1.
    t = np.arange(20 * RATE) / RATE
    sine = np.sin(2 * np.pi * 1000 * t)
    levels_dbfs = [-28.0, -28.0, -24.0, -30.0, -30.0]
    x = np.stack([10 ** (db / 20) * sine for db in levels_dbfs]).astype(np.float32)
    assert integrated_lufs(Audio(x, RATE)) == pytest.approx(-23.0, abs=0.1)


def test_the_absolute_gate_sits_at_minus_70_lufs():
    # BS.1770's absolute gate: blocks at -70.5 LUFS are silence, blocks at -69.5 are measured.
    under = integrated_lufs(sine_segments([(-70.5, 5.0)]))
    over = integrated_lufs(sine_segments([(-69.5, 5.0)]))
    assert under == -math.inf
    assert over == pytest.approx(-69.5, abs=0.1)


def test_silence_has_no_true_peak():
    assert true_peak_dbtp(Audio(np.zeros((2, RATE), np.float32), RATE)) == -math.inf
    assert reconstructed_peak_dbtp(Audio(np.zeros((2, RATE), np.float32), RATE)) == -math.inf


@pytest.mark.parametrize("case", sorted(EBU_3341))
def test_ebu_3341_integrated_loudness(case):
    segments, expected = EBU_3341[case]
    assert integrated_lufs(sine_segments(segments)) == pytest.approx(expected, abs=0.1)


def test_ebu_3341_case9_short_term_is_constant():
    # 1.34 s at -20 dBFS then 1.66 s at -30 dBFS, five times: every 3 s window holds one period,
    # so the short-term loudness reads -23.0 +- 0.1 from 3 s on.
    audio = sine_segments([(-20.0, 1.34), (-30.0, 1.66)] * 5)
    short_term = _window_loudness(*_hop_powers(audio), 30)
    assert short_term.size >= 100
    assert np.all(np.abs(short_term - -23.0) <= 0.1), short_term.round(2)


@pytest.mark.parametrize("case", sorted(EBU_3342))
def test_ebu_3342_loudness_range(case):
    segments, expected = EBU_3342[case]
    assert loudness_range_lu(sine_segments(segments)) == pytest.approx(expected, abs=1.0)


def test_lra_reads_the_10th_to_95th_percentile_spread():
    # Three equal parts 10 LU apart: the 10th percentile lies in the quiet part and the 95th in
    # the loud one, so the range is the full 20 LU; a median-based spread would read 10.
    audio = sine_segments([(-40.0, 20.0), (-30.0, 20.0), (-20.0, 20.0)])
    assert loudness_range_lu(audio) == pytest.approx(20.0, abs=1.0)


def _dynamic_song() -> Audio:
    """Real dynamics: a quiet 8 s intro (-22 dB), the song, a 3 s silence gap, the song again,
    and a 6 s linear fade-out."""
    song, _ = synth_song(bpm=110, key="E minor", duration_s=24, sr=RATE, seed=7)
    x = song.samples.astype(np.float64)
    intro = x[:, : 8 * RATE] * 10 ** (-22 / 20)
    gap = np.zeros((2, 3 * RATE))
    tail = x[:, : 10 * RATE].copy()
    tail[:, -6 * RATE :] *= np.linspace(1.0, 0.0, 6 * RATE)
    return Audio(
        np.concatenate([intro, x, gap, x[:, : 12 * RATE], tail], axis=1).astype(np.float32), RATE
    )


@pytest.fixture(scope="module")
def dynamic_song(tmp_path_factory) -> tuple[Audio, dict]:
    audio = _dynamic_song()
    path = tmp_path_factory.mktemp("loud") / "dynamic.wav"
    save_audio(path, audio, bit_depth=32)  # float: ffmpeg reads exactly our samples
    return audio, ffmpeg_ebur128(path)


def test_dynamic_material_matches_pyloudnorm_and_ffmpeg(dynamic_song):
    audio, ff = dynamic_song
    ours = loudness_report(audio)
    ref = pyloudnorm_lufs(audio)
    assert ours["integrated_lufs"] == pytest.approx(ref, abs=0.05)
    assert ours["integrated_lufs"] == pytest.approx(ff["I"], abs=0.15)  # ffmpeg prints 0.1
    # ffmpeg's LRA comes from a 0.1 LU histogram: agree within two of its bins.
    assert ours["lra_lu"] == pytest.approx(ff["LRA"], abs=0.25)
    # The material really is dynamic: the gates matter here.
    assert ours["lra_lu"] > 3.0


def test_short_term_loudness_matches_ffmpeg(dynamic_song):
    audio, ff = dynamic_song
    ours = _window_loudness(*_hop_powers(audio), 30)
    # ours[i] is the 3 s window ending at hop i + 30; ffmpeg labels each reading by its end time.
    pairs = [
        (ours[i], ff["short_term"][i + 30]) for i in range(len(ours)) if i + 30 in ff["short_term"]
    ]
    assert len(pairs) > 0.9 * len(ours)
    audible = [(a, b) for a, b in pairs if b > -60.0]
    diffs = np.array([a - b for a, b in audible])
    assert np.abs(diffs).max() <= 0.15, np.abs(diffs).max()


def test_true_peak_agrees_with_ffmpeg_and_a_long_filter(dynamic_song):
    audio, ff = dynamic_song
    long_filter = resampled_peak_dbtp(audio)
    assert ff["peak"] == pytest.approx(long_filter, abs=0.3)  # the references agree with each other
    assert true_peak_dbtp(audio) == pytest.approx(long_filter, abs=0.3)
    assert reconstructed_peak_dbtp(audio) >= max(ff["peak"], long_filter) - 0.05


def test_true_peak_is_not_the_sample_peak():
    # Near-Nyquist content sampled off its crests: the waveform swings 3 dB over the samples.
    t = np.arange(RATE)
    x = 0.5 * np.sin(2 * np.pi * (RATE / 4) * t / RATE + np.pi / 4)
    x += 0.3 * np.sin(2 * np.pi * 3000 * t / RATE)
    audio = Audio(np.stack([x, x]).astype(np.float32), RATE)
    sample_peak = 20 * math.log10(float(np.abs(audio.samples).max()))
    reference = resampled_peak_dbtp(audio, factor=16)
    assert reference - sample_peak > 1.0
    assert true_peak_dbtp(audio) == pytest.approx(reference, abs=0.3)
    assert reconstructed_peak_dbtp(audio) == pytest.approx(reference, abs=0.1)


@pytest.mark.parametrize("name", ["hainsworth001.flac", "brid_samba.wav"])
def test_real_recordings_match_ffmpeg_and_pyloudnorm(name):
    path = EVAL_AUDIO / name
    if not path.exists():
        pytest.skip(f"{name} is not in the evaluation folder")
    audio = load_audio(path)
    ff = ffmpeg_ebur128(path)
    ours = loudness_report(audio)
    ref = pyloudnorm_lufs(audio)
    assert ours["integrated_lufs"] == pytest.approx(ref, abs=0.05)
    assert ours["integrated_lufs"] == pytest.approx(ff["I"], abs=0.15)
    if audio.duration_s > 10:  # LRA needs several short-term windows to mean anything
        assert ours["lra_lu"] == pytest.approx(ff["LRA"], abs=0.3)
    assert ours["true_peak_dbtp"] == pytest.approx(ff["peak"], abs=0.3)
