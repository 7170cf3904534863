"""Benchmark: composing a 3-minute music video from 30 clips with crossfades, our composer
against the naive way (re-encode every clip, then concatenate), in the same run.

    python bench/compose.py [--song-s 180] [--clips 30] [--preset veryfast] [--clip-size 1024x576]

Source clips are what Stable Video Diffusion returns (1024x576, 14 frames at 6 fps, ~2.3 s),
made with ffmpeg's test sources so every clip looks different; the song is a 180 s tone. Every
slot (6 s) loops its clip and joins the previous one with a 0.5 s crossfade.

- ours: ``functions.video.compose.compose_video``: one ffmpeg pass, each frame decoded once,
  transitions at 1024x576, one lanczos upscale, one 1080p encode, the song muxed;
- naive: each slot normalised and upscaled to its own 1080p30 H.264 file, then one more ffmpeg
  run crossfades the 30 files at 1080p and encodes again with the song.

Prints both wall times, the ratio naive/ours, and each as a multiple of the song's length.
Both outputs are checked: 1920x1080, 30 fps, as long as the song.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from functions.audio_io import Audio, save_audio  # noqa: E402
from functions.ffmpeg_command import ffmpeg_exe  # noqa: E402
from functions.video.compose import (  # noqa: E402
    FPS,
    XFADE_KIND,
    Segment,
    compose_video,
    probe_video,
    timeline_frames,
)
from functions.video.providers import RetryPolicy  # noqa: E402

SOURCES = [
    "testsrc2",
    "mandelbrot",
    "life=mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00",
    "cellauto=rule=110",
    "smptehdbars",
    "rgbtestsrc",
]


def make_clips(folder: Path, n: int, size: str) -> list[Path]:
    """``n`` SVD-shaped clips (14 frames at 6 fps), each a different source and hue."""
    clips = []
    for i in range(n):
        path = folder / f"clip_{i:02d}.mp4"
        src = SOURCES[i % len(SOURCES)]
        sep = ":" if "=" in src else "="
        subprocess.run(
            [
                ffmpeg_exe(),
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"{src}{sep}size={size}:rate=6",
                "-frames:v",
                "14",
                "-vf",
                f"hue=h={i * 360 / n:.1f},format=yuv420p",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "18",
                str(path),
            ],
            check=True,
            capture_output=True,
        )
        clips.append(path)
    return clips


def naive(
    segments: list[Segment], song: Path, out: Path, work: Path, preset: str, crossfade_s: float
) -> None:
    """Re-encode every slot to 1080p30, then crossfade the files and encode again."""
    frames = timeline_frames(segments, FPS, crossfade_s)
    parts = []
    for i, (seg, (_, own, lend)) in enumerate(zip(segments, frames, strict=True)):
        need = own + lend
        loops = max(0, math.ceil(need / (seg.source_duration_s * FPS)))
        part = work / f"part_{i:02d}.mp4"
        subprocess.run(
            [
                ffmpeg_exe(),
                "-v",
                "error",
                "-y",
                "-stream_loop",
                str(loops),
                "-i",
                str(seg.source),
                "-vf",
                f"fps={FPS},trim=end_frame={need},setpts=PTS-STARTPTS,scale=1920:1080:flags=lanczos,"
                f"setsar=1,format=yuv420p",
                "-c:v",
                "libx264",
                "-preset",
                preset,
                "-crf",
                "20",
                "-an",
                str(part),
            ],
            check=True,
            capture_output=True,
        )
        parts.append(part)
    args = [ffmpeg_exe(), "-v", "error", "-y"]
    for p in parts:
        args += ["-i", str(p)]
    args += ["-i", str(song)]
    chains, current, length = [], "0:v", frames[0][1] + frames[0][2]
    for i in range(1, len(segments)):
        _, own, lend = frames[i]
        prev_lend = frames[i - 1][2]
        kind = XFADE_KIND.get(segments[i].transition_in)
        if kind and prev_lend:
            chains.append(
                f"[{current}][{i}:v]xfade=transition={kind}:duration={prev_lend / FPS:.6f}"
                f":offset={(length - prev_lend) / FPS:.6f}[x{i}]"
            )
            length += own + lend - prev_lend
        else:
            chains.append(f"[{current}][{i}:v]concat=n=2:v=1:a=0,settb=1/{FPS}[x{i}]")
            length += own + lend
        current = f"x{i}"
    args += [
        "-filter_complex",
        ";".join(chains),
        "-map",
        f"[{current}]",
        "-map",
        f"{len(parts)}:a:0",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        "20",
        "-pix_fmt",
        "yuv420p",
        "-r",
        str(FPS),
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        "-movflags",
        "+faststart",
        str(out),
    ]
    subprocess.run(args, check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--song-s", type=float, default=180.0)
    ap.add_argument("--clips", type=int, default=30)
    ap.add_argument(
        "--preset", default="veryfast", help="x264 preset for both (production default)"
    )
    ap.add_argument("--clip-size", default="1024x576")
    ap.add_argument("--crossfade-s", type=float, default=0.5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-compose-") as tmp:
        work = Path(tmp)
        clips = make_clips(work, args.clips, args.clip_size)
        sr = 48000
        t = np.arange(int(args.song_s * sr)) / sr
        song = save_audio(
            work / "song.wav",
            Audio((0.2 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32), sr),
        )
        slot_s = args.song_s / args.clips
        src_s = probe_video(clips[0]).duration_s
        segments = [
            Segment(
                clips[i],
                src_s,
                round(i * slot_s, 4),
                round((i + 1) * slot_s, 4),
                "as_is",
                "fade" if i == 0 else "crossfade",
            )
            for i in range(args.clips)
        ]
        print(
            f"{args.clips} clips of {src_s:.2f} s at {args.clip_size} -> {args.song_s:.0f} s video, "
            f"1920x1080 30 fps, x264 {args.preset}, {os.cpu_count()} CPUs"
        )

        started = time.perf_counter()
        report = compose_video(
            segments,
            song,
            work / "ours.mp4",
            audio_duration_s=args.song_s,
            crossfade_s=args.crossfade_s,
            preset=args.preset,
            policy=RetryPolicy(attempts=1, timeout_s=3600.0),
        )
        ours_s = time.perf_counter() - started

        started = time.perf_counter()
        naive(segments, song, work / "naive.mp4", work, args.preset, args.crossfade_s)
        naive_s = time.perf_counter() - started
        info = probe_video(work / "naive.mp4")
        assert (info.width, info.height) == (1920, 1080) and abs(
            info.duration_s - args.song_s
        ) <= 0.1
        assert (report.info.width, report.info.height) == (1920, 1080)

    print(f"ours : {ours_s:7.1f} s  = {ours_s / args.song_s:.2f}x the song's length")
    print(f"naive: {naive_s:7.1f} s  = {naive_s / args.song_s:.2f}x the song's length")
    print(f"ratio: naive / ours = {naive_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
