"""Composition: every slot filled from the generated shots, in one FFmpeg pass, on the beat.

Offers:
- ``Segment``: one slot of the timeline: the clip that fills it, the variant (as is, mirror,
  reverse, reframe) and the transition into it (cut, crossfade, fade through black).
- ``timeline_frames(segments, fps, crossfade_s)``: the frame-exact timeline: slot boundaries
  rounded to frames, so the cut frame is the beat's frame and the total is the song's length.
- ``build_command(...)``: the ffmpeg argv. Each slot reads its clip with ``-stream_loop`` so a
  short clip repeats whole (never stretched) and is trimmed from its end at the slot's last
  frame; each is normalised to 30 fps at the working size (1024x576, the generators' size);
  transitions join them (``concat`` for cuts, ``xfade`` for crossfades and fades, each starting
  on the beat); the finished picture is upscaled once to 1920x1080 with lanczos; the song is
  muxed as AAC; H.264 with ``+faststart``.
- ``compose_video(...)``: runs it (120 s timeout, one retry) and checks the result.
- ``probe_video(path)``: width, height, fps, duration and streams, parsed from ``ffmpeg -i``.

Why one pass: the naive way re-encodes every clip at 1080p and then encodes again to join
them; here each frame is decoded once, transitions run at the working size, and the one
1080p encode is the output (``bench/compose.py`` measures the difference).
"""

from __future__ import annotations

import math
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from functions.ffmpeg_command import ffmpeg_command, ffmpeg_report_command
from shared.errors import StageFailed

from . import providers

OUT_W, OUT_H = 1920, 1080
WORK_W, WORK_H = 1024, 576
FPS = 30
EDGE_FADE_S = 0.5
XFADE_KIND = {"crossfade": "fade", "fade": "fadeblack"}


@dataclass
class Segment:
    source: Path
    source_duration_s: float
    start_s: float
    end_s: float
    variant: str = "as_is"  # as_is | mirror | reverse | reframe
    transition_in: str = "cut"  # cut | crossfade | fade


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: float
    duration_s: float
    has_audio: bool
    video_codec: str
    audio_codec: str


def probe_video(path: Path) -> VideoInfo:
    """Read a video's stream facts from ``ffmpeg -i`` (no ffprobe binary ships here)."""
    proc = subprocess.run(ffmpeg_report_command("-i", path), capture_output=True, timeout=60)
    text = proc.stderr.decode(errors="replace")
    video = re.search(r"Stream #\S+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})[ ,\[]", text)
    if not video:
        raise ValueError(f"no video stream in {path}")
    fps = re.search(r"([\d.]+) fps", text)
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    audio = re.search(r"Stream #\S+.*?: Audio: (\w+)", text)
    return VideoInfo(
        width=int(video.group(2)),
        height=int(video.group(3)),
        fps=float(fps.group(1)) if fps else 0.0,
        duration_s=(int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)))
        if dur
        else 0.0,
        has_audio=audio is not None,
        video_codec=video.group(1),
        audio_codec=audio.group(1) if audio else "",
    )


def _overlap_frames(crossfade_s: float, fps: int) -> int:
    return max(2, int(round(crossfade_s * fps)))


def timeline_frames(
    segments: list[Segment], fps: int = FPS, crossfade_s: float = 0.5
) -> list[tuple[int, int, int]]:
    """Per segment: (first frame on the timeline, frames it shows alone, frames it lends to
    the next transition). A transition starts on the next slot's first frame (the beat), so
    the outgoing shot runs on under the incoming one for the overlap."""
    edges = [round(s.start_s * fps) for s in segments] + [round(segments[-1].end_s * fps)]
    overlap = _overlap_frames(crossfade_s, fps)
    out = []
    for i in range(len(segments)):
        own = edges[i + 1] - edges[i]
        nxt = segments[i + 1] if i + 1 < len(segments) else None
        lend = 0
        if nxt is not None and nxt.transition_in in XFADE_KIND:
            lend = min(overlap, max(0, edges[i + 2] - edges[i + 1] - 1))
        out.append((edges[i], own, lend))
    return out


def build_command(
    segments: list[Segment],
    audio_path: Path,
    out_path: Path,
    *,
    fps: int = FPS,
    crossfade_s: float = 0.5,
    preset: str = "veryfast",
    crf: int = 20,
    work_size: tuple[int, int] = (WORK_W, WORK_H),
    out_size: tuple[int, int] = (OUT_W, OUT_H),
) -> list[str]:
    """The ffmpeg argv that composes ``segments`` over ``audio_path`` into ``out_path``."""
    if not segments:
        raise ValueError("nothing to compose")
    ww, wh = work_size
    frames = timeline_frames(segments, fps, crossfade_s)
    total = sum(own for _, own, _ in frames)
    args = ffmpeg_command()
    chains = []
    for i, (seg, (_, own, lend)) in enumerate(zip(segments, frames, strict=True)):
        need = own + lend
        src_frames = max(1.0, seg.source_duration_s * fps)
        # Whole-clip repeats: enough loops to cover the slot, plus one against rounding.
        loops = max(0, math.ceil(need / src_frames))
        args += ["-stream_loop", str(loops), "-i", str(seg.source)]
        variant = {
            "mirror": ",hflip",
            "reverse": ",reverse",
            # reframe: a closer framing of the same take, centred 80% crop.
            "reframe": f",crop=iw*0.8:ih*0.8,scale={ww}:{wh}:flags=lanczos",
        }.get(seg.variant, "")
        chains.append(
            f"[{i}:v]setpts=PTS-STARTPTS,fps={fps},trim=end_frame={need},setpts=PTS-STARTPTS"
            f",scale={ww}:{wh}:force_original_aspect_ratio=increase:flags=lanczos,crop={ww}:{wh}"
            f"{variant},setsar=1,format=yuv420p,settb=1/{fps}[s{i}]"
        )
    audio_index = len(segments)
    args += ["-i", str(audio_path)]

    # Join left to right; ``length`` is the running stream's frame count.
    current, length = "s0", frames[0][1] + frames[0][2]
    for i in range(1, len(segments)):
        seg = segments[i]
        _, own, lend = frames[i]
        prev_lend = frames[i - 1][2]
        label = f"j{i}"
        if seg.transition_in in XFADE_KIND and prev_lend > 0:
            offset_s = (length - prev_lend) / fps
            chains.append(
                f"[{current}][s{i}]xfade=transition={XFADE_KIND[seg.transition_in]}"
                f":duration={prev_lend / fps:.6f}:offset={offset_s:.6f}[{label}]"
            )
            length += own + lend - prev_lend
        else:
            chains.append(f"[{current}][s{i}]concat=n=2:v=1:a=0,settb=1/{fps}[{label}]")
            length += own + lend
        current = label
    edge = min(EDGE_FADE_S, total / fps / 4)
    ow, oh = out_size
    chains.append(
        f"[{current}]trim=end_frame={total},scale={ow}:{oh}:flags=lanczos"
        f",fade=t=in:st=0:d={edge:.3f},fade=t=out:st={total / fps - edge:.6f}:d={edge:.3f}"
        f",format=yuv420p[vout]"
    )
    args += [
        "-filter_complex",
        ";\n".join(chains),
        "-map",
        "[vout]",
        "-map",
        f"{audio_index}:a:0",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        "-r",
        str(fps),
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        "-ar",
        "48000",
        "-movflags",
        "+faststart",
        str(out_path),
    ]
    return args


@dataclass
class ComposeReport:
    path: Path
    info: VideoInfo
    attempts: int
    wall_s: float
    cut_times_s: list[float]


def compose_video(
    segments: list[Segment],
    audio_path: Path,
    out_path: Path,
    *,
    audio_duration_s: float,
    crossfade_s: float = 0.5,
    preset: str = "veryfast",
    policy: providers.RetryPolicy = providers.COMPOSE,
) -> ComposeReport:
    """Compose and check the video (1920x1080, 30 fps, as long as the song within 0.1 s).

    Raises StageFailed (``COMPOSITION_FAILED``) when ffmpeg fails or times out twice.
    """
    cmd = build_command(segments, audio_path, out_path, crossfade_s=crossfade_s, preset=preset)
    started = time.monotonic()
    tries = 0

    def attempt() -> VideoInfo:
        nonlocal tries
        tries += 1
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=policy.timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise providers.ProviderTimeout(f"ffmpeg ran past {policy.timeout_s:.0f} s") from exc
        if proc.returncode != 0:
            raise providers.ProviderFailed(proc.stderr.decode(errors="replace")[-600:])
        info = probe_video(out_path)
        if (info.width, info.height) != (OUT_W, OUT_H) or abs(
            info.duration_s - audio_duration_s
        ) > 0.1:
            raise providers.ProviderFailed(
                f"composed video is {info.width}x{info.height}, {info.duration_s:.2f} s "
                f"(expected {OUT_W}x{OUT_H}, {audio_duration_s:.2f} s)"
            )
        return info

    try:
        info = policy.retrying(
            lambda e: isinstance(e, providers.ProviderTimeout | providers.ProviderFailed)
        )(attempt)
    except (providers.ProviderTimeout, providers.ProviderFailed) as exc:
        raise StageFailed(
            f"The video could not be composed after {tries} attempts: {str(exc)[-300:]}",
            code="COMPOSITION_FAILED",
        ) from exc
    cuts = [round(round(s.start_s * FPS) / FPS, 4) for s in segments[1:]]
    return ComposeReport(out_path, info, tries, round(time.monotonic() - started, 3), cuts)
