"""Laws that hold for any input, checked with hypothesis on short audio (few examples, so the
whole file takes seconds): conversions keep duration and channels, a stretch by r then 1/r keeps
the duration, mastering twice changes nothing, a video's slots cover the song without a gap."""

from __future__ import annotations

import numpy as np
import pyloudnorm as pyln
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.audio_io import Audio, probe, save_audio
from functions.convert import convert_file
from functions.mashup import TrackPart
from functions.mashup_align import align_stem
from functions.master import master_to_target
from functions.video.timing import build_slots
from tests.synth import synth_song

FAST = settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _noise(channels: int, rate: int, seconds: float, seed: int) -> Audio:
    rng = np.random.default_rng(seed)
    x = 0.2 * rng.standard_normal((channels, int(rate * seconds)))
    return Audio(x.astype(np.float32), rate)


@FAST
@given(
    channels=st.sampled_from([1, 2]),
    rate=st.sampled_from([22050, 44100, 48000]),
    seconds=st.floats(0.5, 2.0),
    fmt=st.sampled_from(["flac", "wav", "mp3", "ogg"]),
)
def test_convert_round_trip_keeps_duration_and_channels(
    tmp_path_factory, channels, rate, seconds, fmt
):
    folder = tmp_path_factory.mktemp("conv")
    audio = _noise(channels, rate, seconds, 1)
    exact_s = audio.duration_s
    src = save_audio(folder / "in.wav", audio)
    there = folder / f"there.{fmt}"
    convert_file(src, there, output_format=fmt)
    back = folder / "back.wav"
    convert_file(there, back, output_format="wav")
    info = probe(back)
    assert info["channels"] == channels
    # probe reports milliseconds; lossy codecs may pad by part of a frame.
    assert abs(info["duration_s"] - exact_s) <= (0.06 if fmt in ("mp3", "ogg") else 0.0011)


@FAST
@given(ratio=st.floats(0.8, 1.25), seconds=st.floats(1.0, 2.0))
def test_stretch_then_stretch_back_keeps_the_duration(ratio, seconds):
    rate = 22050
    audio = _noise(1, rate, seconds, 2)
    n = audio.samples.shape[1]

    def stretched(a: Audio, factor: float) -> Audio:
        part = TrackPart(
            index=0,
            role="vocals",
            stems=["vocals"],
            stretch_factor=factor,
            pitch_shift_semitones=0,
            offset_s=0.0,
        )
        out = align_stem(a, part, 4 * n)
        last = int(np.flatnonzero(np.abs(out.samples).max(axis=0) > 1e-3)[-1]) + 1
        return Audio(out.samples[:, :last], rate)

    there = stretched(audio, ratio)
    assert abs(there.samples.shape[1] - n / ratio) <= 0.02 * n
    back = stretched(there, 1.0 / ratio)
    assert abs(back.samples.shape[1] - n) <= 0.02 * n


@settings(max_examples=2, deadline=None)
@given(target=st.sampled_from([-16.0, -14.0, -11.0]), seed=st.integers(0, 3))
def test_mastering_a_master_changes_its_loudness_by_under_a_tenth(target, seed):
    song, _ = synth_song(bpm=118, key="G major", duration_s=5.0, seed=seed)
    once = master_to_target(song, target).audio
    twice = master_to_target(once, target).audio
    meter = pyln.Meter(once.sample_rate)
    a = meter.integrated_loudness(once.samples.T.astype(np.float64))
    b = meter.integrated_loudness(twice.samples.T.astype(np.float64))
    assert abs(a - b) <= 0.1


@settings(max_examples=40, deadline=None)
@given(
    duration_s=st.floats(5.0, 400.0),
    cuts=st.lists(st.floats(-5.0, 410.0), max_size=40),
)
def test_video_slots_cover_the_song_without_gap_or_overlap(duration_s, cuts):
    slots = build_slots(cuts, duration_s, [{"start_s": 0, "end_s": duration_s, "label": "verse"}])
    assert slots[0]["start_s"] == 0.0
    assert slots[-1]["end_s"] == round(duration_s, 4)
    for a, b in zip(slots, slots[1:], strict=False):
        assert a["end_s"] == b["start_s"]
    assert all(s["end_s"] > s["start_s"] for s in slots)
    assert [s["index"] for s in slots] == list(range(len(slots)))
