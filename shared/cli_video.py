"""``soundstage video FILE --prompt TEXT -o OUT.mp4``: a music video from a song, in a terminal.

The job runs locally (embedded defaults) or on ``--server``, with one progress bar per stage
(analysis, lyrics, planning, references, clips, composition); the video is saved to ``-o``.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from shared.cli_jobs import (
    add_job_args,
    as_params,
    console,
    print_result,
    run_job_cli,
    save_outputs,
)

# Stage order, for printing the engines that ran (a job's JSON comes back with sorted keys).
STAGES = (
    "audio_analysis",
    "lyrics",
    "scene_planning",
    "reference_generation",
    "video_generation",
    "composition",
)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``video`` on the ``soundstage`` command."""
    p = sub.add_parser("video", help="a beat-synced 1080p music video from a song and a prompt")
    p.add_argument("file", type=Path, help="the song (mp3, wav or flac)")
    p.add_argument("--prompt", required=True, help="what the video shows, 50-500 characters")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="where to save the mp4 (default: music_video_<time>.mp4 here)",
    )
    p.add_argument(
        "--max-clips",
        type=int,
        default=None,
        dest="max_generated_clips",
        help="how many shots to generate (3 up to the server's cap, default 8)",
    )
    p.add_argument(
        "--budget-usd", type=float, default=None, help="stop before spending more than this"
    )
    p.add_argument(
        "--local-engines",
        action="store_true",
        help="never call paid providers, even when keys are configured",
    )
    p.add_argument(
        "--preset",
        default=None,
        dest="video_preset",
        choices=["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"],
        help="x264 preset of the final encode (faster = bigger file)",
    )
    p.add_argument("--seed", type=int, default=None)
    add_job_args(p)
    p.set_defaults(func=cmd_video)


def cmd_video(args: argparse.Namespace) -> int:
    params = as_params(
        prompt=args.prompt,
        max_generated_clips=args.max_generated_clips,
        budget_usd=args.budget_usd,
        engines="local" if args.local_engines else None,
        video_preset=args.video_preset,
        seed=args.seed,
    )
    job = run_job_cli(args, "video", [args.file], params)
    out = args.out or Path(f"music_video_{datetime.now():%Y%m%d_%H%M%S}.mp4")
    written = save_outputs(args, job, out, names=["video"])
    r = job.get("result") or {}
    if args.json:
        print_result(args, job)
        return 0
    video = r.get("video", {})
    engines = r.get("engines") or {}
    cost = r.get("cost", {})
    lyrics = r.get("lyrics") or {}
    lines = [
        f"[bold]{written[0] if written else out}[/bold]  {video.get('width')}x{video.get('height')} "
        f"{video.get('fps', 0):.0f} fps, {video.get('duration_s', 0):.1f} s",
        f"  {r.get('slot_count')} slots, {len(r.get('cut_times_s') or [])} cuts on the beat; "
        f"{r.get('shots_generated')} shots generated, {r.get('shots_reused')} reused",
        f'  "{(r.get("plan") or {}).get("title", "")}"; lyrics {lyrics.get("status", "?")}'
        + (f": {lyrics['reason']}" if lyrics.get("reason") else ""),
        *(f"  {stage:<22} {engines[stage]}" for stage in STAGES if stage in engines),
        f"  cost ${cost.get('total_usd', 0):.2f} of a ${cost.get('budget_usd', 0):.2f} budget",
    ]
    console.print("\n".join(lines))
    return 0
