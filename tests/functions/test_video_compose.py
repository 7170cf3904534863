"""Composition: whole-clip loops trimmed from the end, variants, transitions that start on the
slot's first frame, frame-exact length, 1920x1080 at 30 fps with the song muxed.

The source clips carry their frame number in their brightness, so the composed video can be
read back frame by frame and compared with what each slot should show.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from functions.audio_io import Audio, save_audio
from functions.ffmpeg_command import ffmpeg_exe
from functions.video.compose import FPS, Segment, compose_video, probe_video, timeline_frames
from tests.functions.video_frames import grey_frames

SRC_W, SRC_H, SRC_FPS = 256, 144, 15


def write_clip(path: Path, frames: np.ndarray, fps: int = SRC_FPS) -> Path:
    """Encode gray ``frames`` (n, h, w) uint8 losslessly."""
    n, h, w = frames.shape
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-s",
            f"{w}x{h}",
            "-r",
            str(fps),
            "-i",
            "-",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        input=frames.astype(np.uint8).tobytes(),
        check=True,
        capture_output=True,
    )
    return path


def level(k: int) -> int:
    return 20 + 12 * k  # source frame k of the counting clip


def read_frames(path: Path, w: int = 32, h: int = 18) -> np.ndarray:
    return grey_frames(path, w, h, scale_flags="area")


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    d = tmp_path_factory.mktemp("compose")
    counting = np.stack([np.full((SRC_H, SRC_W), level(k)) for k in range(15)])  # 1 s at 15 fps
    halves = np.zeros((15, SRC_H, SRC_W))
    halves[:, :, SRC_W // 2 :] = 230
    framed = np.full((15, SRC_H, SRC_W), 30.0)
    framed[:, :12, :] = framed[:, -12:, :] = framed[:, :, :20] = framed[:, :, -20:] = 240
    clips = {
        "counting": write_clip(d / "counting.mp4", counting),
        "halves": write_clip(d / "halves.mp4", halves),
        "white": write_clip(d / "white.mp4", np.full((15, SRC_H, SRC_W), 220)),
        "grey": write_clip(d / "grey.mp4", np.full((15, SRC_H, SRC_W), 120)),
        "framed": write_clip(d / "framed.mp4", framed),
    }
    sr = 48000
    t = np.arange(int(9.0 * sr)) / sr
    song = save_audio(
        d / "song.wav", Audio((0.2 * np.sin(2 * np.pi * 220 * t))[None, :].astype(np.float32), sr)
    )
    plan = [  # (clip, start_s, end_s, variant, transition_in)
        ("counting", 0.0, 2.5, "as_is", "cut"),
        ("halves", 2.5, 3.5, "mirror", "cut"),
        ("counting", 3.5, 5.0, "reverse", "cut"),
        ("grey", 5.0, 6.0, "as_is", "cut"),
        ("white", 6.0, 7.0, "as_is", "crossfade"),
        ("grey", 7.0, 8.0, "as_is", "fade"),
        ("framed", 8.0, 9.0, "reframe", "cut"),
    ]
    segments = [Segment(clips[c], 1.0, a, b, v, tr) for c, a, b, v, tr in plan]
    out = d / "video.mp4"
    report = compose_video(
        segments, song, out, audio_duration_s=9.0, crossfade_s=0.5, preset="ultrafast"
    )
    return report, read_frames(out)


def test_output_is_1080p30_as_long_as_the_song_with_its_audio(composed):
    report, frames = composed
    info = report.info
    assert (info.width, info.height, info.fps) == (1920, 1080, 30.0)
    assert abs(info.duration_s - 9.0) <= 0.1
    assert info.has_audio and info.audio_codec == "aac" and info.video_codec == "h264"
    assert len(frames) == 270  # frame-exact: 9 s x 30 fps
    assert report.cut_times_s == [2.5, 3.5, 5.0, 6.0, 7.0, 8.0]


def test_short_clip_loops_whole_and_is_trimmed_from_its_end(composed):
    _, frames = composed
    means = frames.mean(axis=(1, 2))
    # Slot 0 (frames 15..74, after the opening fade): the 1 s clip repeats from its start;
    # each source frame shows for two output frames (15 -> 30 fps), never stretched.
    expected = [level((n % 30) // 2) for n in range(15, 75)]
    assert np.abs(means[15:75] - expected).max() < 6


def test_mirror_cuts_in_on_the_slot_frame(composed):
    _, frames = composed
    left, right = frames[:, :, :16].mean(axis=(1, 2)), frames[:, :, 16:].mean(axis=(1, 2))
    assert abs(left[74] - right[74]) < 6  # last frame of slot 0: uniform
    assert left[75] > 200 and right[75] < 30  # first frame of slot 1: the halves, mirrored


def test_reverse_plays_the_looped_take_backwards(composed):
    _, frames = composed
    means = frames.mean(axis=(1, 2))
    forward = [level((n % 30) // 2) for n in range(45)]  # slot 2: 1.5 s of the looped clip
    assert np.abs(means[105:150] - forward[::-1]).max() < 6


def test_crossfade_starts_on_the_beat_and_fade_goes_through_black(composed):
    _, frames = composed
    means = frames.mean(axis=(1, 2))
    # The crossfade into slot 4 begins on its first frame (6.0 s = frame 180), for 15 frames.
    assert means[170:180] == pytest.approx(120, abs=6)
    blend = means[180:196]
    assert (
        np.all(np.diff(blend) > 0) and blend[0] < 130 and 160 < blend[7] < 180 and blend[-1] > 210
    )
    assert means[196:210] == pytest.approx(220, abs=6)
    # The fade into slot 5 (7.0 s = frame 210) goes through black.
    assert means[210:225].min() < 40 and means[226:240] == pytest.approx(120, abs=6)


def test_reframe_crops_into_the_take(composed):
    _, frames = composed
    # The framed clip has a bright border; the reframe (centred 80% crop) cuts most of it away.
    edge_cols = frames[240:255, 6:12, :3].mean()  # rows inside, left edge columns
    assert edge_cols < 80


def test_timeline_is_frame_exact_and_lends_overlap_only_to_transitions():
    segs = [
        Segment(Path("a"), 4.0, 0.0, 5.992, "as_is", "fade"),
        Segment(Path("b"), 4.0, 5.992, 12.01, "as_is", "crossfade"),
        Segment(Path("c"), 4.0, 12.01, 20.0, "as_is", "cut"),
    ]
    tl = timeline_frames(segs, FPS, crossfade_s=0.5)
    assert [start for start, _, _ in tl] == [0, 180, 360]  # boundaries on their nearest frame
    assert sum(own for _, own, _ in tl) == 600
    assert [lend for _, _, lend in tl] == [15, 0, 0]  # only the crossfade borrows frames


def test_probe_reads_size_rate_and_streams(composed, tmp_path):
    clip = write_clip(tmp_path / "c.mp4", np.zeros((10, 144, 256)))
    info = probe_video(clip)
    assert (info.width, info.height, info.fps, info.has_audio) == (256, 144, 15.0, False)
