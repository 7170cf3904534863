"""The audio toolkit's commands: stems, convert, mix, master and mashup.

    soundstage stems FILE -o DIR [--stems vocals,drums | --two-stems] [--format flac]
    soundstage convert FILE --to flac -o OUT [--bit-depth 24] [--sample-rate 48000]
    soundstage mix A B ... --profile warm -o OUT [--gains=-3,0] [--pans=-0.5,0.5] [--mute 2]
    soundstage master FILE --preset streaming -o OUT [--target-lufs -12]
    soundstage mashup A B [C D] --vibe chill -o OUT [--base-track 1] [--stems-dir DIR]

Each one is a job like any other (``shared.cli_jobs``): run here on embedded defaults, or on a
server with ``--server URL``, with a progress bar per stage. Output formats follow the ``-o``
file's extension where a command writes one file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.cli_jobs import (
    add_job_args,
    as_params,
    console,
    print_result,
    run_job_cli,
    save_outputs,
)

AUDIO_SUFFIXES = ("wav", "flac", "mp3", "ogg")


def _format_of(out: str, default: str, allowed: tuple[str, ...] = ("wav", "flac", "mp3")) -> str:
    suffix = Path(out).suffix.lstrip(".").lower()
    if suffix and suffix not in allowed:
        console.print(
            f"[red]Error[/red]: cannot write '.{suffix}'; use {', '.join('.' + a for a in allowed)}."
        )
        raise SystemExit(2)
    return suffix or default


def _floats(text: str | None, what: str) -> list[float]:
    if not text:
        return []
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        console.print(f"[red]Error[/red]: {what} must be comma-separated numbers, e.g. -3,0,1.5.")
        raise SystemExit(2) from None


def _saved(paths: list[Path]) -> str:
    return "\n".join(f"  wrote {p}" for p in paths)


def cmd_stems(args) -> int:
    stems = (
        ["vocals", "no_vocals"]
        if args.two_stems
        else (args.stems.split(",") if args.stems else None)
    )
    params = as_params(
        stems=stems, output_format=args.format, bit_depth=args.bit_depth, model=args.model
    )
    job = run_job_cli(args, "stems", [Path(args.file)], params)
    paths = save_outputs(args, job, Path(args.out))
    r = job["result"] or {}
    engine = r.get("engine") + (f" ({r['model']})" if r.get("model") else "")
    note = " [dim](from cache)[/dim]" if r.get("cached") else ""
    print_result(args, job, f"[bold]{len(paths)} stems[/bold] by {engine}{note}\n{_saved(paths)}")
    return 0


def cmd_convert(args) -> int:
    params = as_params(
        output_format=args.to,
        bit_depth=args.bit_depth,
        bitrate_kbps=args.bitrate,
        sample_rate_hz=args.sample_rate,
        channels=args.channels,
    )
    job = run_job_cli(args, "convert", [Path(args.file)], params)
    paths = save_outputs(args, job, Path(args.out))
    o = (job["result"] or {}).get("output", {})
    print_result(
        args,
        job,
        f"{o.get('format')} {o.get('sample_rate')} Hz, {o.get('channels')} ch, "
        f"{o.get('duration_s')} s, {o.get('bitrate_kbps')} kbps\n{_saved(paths)}",
    )
    return 0


def cmd_mix(args) -> int:
    files = [Path(f) for f in args.files]
    gains, pans, offsets = (
        _floats(args.gains, "--gains"),
        _floats(args.pans, "--pans"),
        _floats(args.offsets, "--offsets"),
    )
    muted = {int(x) for x in _floats(args.mute, "--mute")}
    tracks = [
        as_params(
            gain_db=gains[i] if i < len(gains) else None,
            pan=pans[i] if i < len(pans) else None,
            offset_s=offsets[i] if i < len(offsets) else None,
            mute=True if i in muted else None,
        )
        for i in range(len(files))
    ]
    params = as_params(
        profile=args.profile, tracks=tracks, output_format=_format_of(args.out, "wav")
    )
    job = run_job_cli(args, "mix", files, params)
    paths = save_outputs(args, job, Path(args.out), names=["mix"])
    loud = (job["result"] or {}).get("loudness", {})
    print_result(
        args,
        job,
        f"mix ({args.profile}): {loud.get('integrated_lufs')} LUFS, true peak "
        f"{loud.get('true_peak_dbtp')} dBTP\n{_saved(paths)}",
    )
    return 0


def cmd_master(args) -> int:
    params = as_params(
        preset=args.preset, target_lufs=args.target_lufs, output_format=_format_of(args.out, "wav")
    )
    job = run_job_cli(args, "master", [Path(args.file)], params)
    paths = save_outputs(args, job, Path(args.out), names=["master"])
    r = job["result"] or {}
    b, a = r.get("before", {}), r.get("after", {})
    print_result(
        args,
        job,
        f"target {r.get('target_lufs')} LUFS\n"
        f"  before  {b.get('integrated_lufs')} LUFS, LRA {b.get('lra_lu')} LU, true peak {b.get('true_peak_dbtp')} dBTP\n"
        f"  after   {a.get('integrated_lufs')} LUFS, LRA {a.get('lra_lu')} LU, true peak {a.get('true_peak_dbtp')} dBTP\n"
        f"{_saved(paths)}",
    )
    return 0


def cmd_mashup(args) -> int:
    files = [Path(f) for f in args.files]
    if not 1 <= len(files) <= 4:
        console.print("[red]Error[/red]: a mashup takes 1 to 4 tracks.")
        raise SystemExit(2)
    out = Path(args.out)
    to_file = out.suffix.lstrip(".").lower() in AUDIO_SUFFIXES
    params = as_params(
        vibe=args.vibe, base_track=args.base_track, output_format=_format_of(args.out, "wav")
    )
    job = run_job_cli(args, "mashup", files, params)
    if to_file:
        paths = save_outputs(args, job, out, names=["mashup"])
        paths += save_outputs(args, job, out.with_suffix(".json"), names=["report"])
    else:
        paths = save_outputs(args, job, out, names=["mashup", "report"])
    if args.stems_dir:
        aligned = [o["name"] for o in job.get("outputs", []) if o["name"].startswith("aligned-")]
        paths += save_outputs(args, job, Path(args.stems_dir), names=aligned)
    r = job["result"] or {}
    lines = [
        f"mashup ({r.get('vibe')}) at {r.get('target_tempo_bpm')} BPM in {r.get('target_key')}"
    ]
    for part in r.get("parts", []):
        lines.append(
            f"  track {part['track']} {part['role']:<6} {', '.join(part['stems'])}: "
            f"{part['tempo_change']}, {part['key_change']}, offset {part['offset_s']} s"
        )
    print_result(args, job, "\n".join(lines) + "\n" + _saved(paths))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the five audio commands on the ``soundstage`` parser."""
    s = sub.add_parser("stems", help="split a track into vocals, drums, bass and other")
    s.add_argument("file")
    s.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for the stems")
    s.add_argument(
        "--stems",
        help="comma-separated: vocals,drums,bass,other,melody,no_vocals (guitar,piano: htdemucs_6s)",
    )
    s.add_argument("--two-stems", action="store_true", help="vocals and no_vocals")
    s.add_argument("--format", choices=["wav", "flac", "mp3"])
    s.add_argument("--bit-depth", type=int, choices=[16, 24])
    s.add_argument("--model", choices=["htdemucs", "htdemucs_ft", "htdemucs_6s"])
    add_job_args(s)
    s.set_defaults(func=cmd_stems)

    s = sub.add_parser("convert", help="convert a track's format, sample rate or channels")
    s.add_argument("file")
    s.add_argument("--to", required=True, choices=["wav", "flac", "mp3", "ogg"])
    s.add_argument("-o", "--out", required=True, metavar="OUT")
    s.add_argument("--bit-depth", type=int, choices=[16, 24])
    s.add_argument("--bitrate", type=int, metavar="KBPS")
    s.add_argument("--sample-rate", type=int, metavar="HZ")
    s.add_argument("--channels", type=int, choices=[1, 2])
    add_job_args(s)
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("mix", help="mix 2-N tracks or stems through a profile")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument(
        "--profile", default="balanced", choices=["balanced", "bass-heavy", "bright", "warm"]
    )
    s.add_argument("-o", "--out", required=True, metavar="OUT")
    s.add_argument(
        "--gains",
        metavar="DB,...",
        help="per-file gain in dB, in file order (write --gains=-3,0 when the first is negative)",
    )
    s.add_argument("--pans", metavar="P,...", help="per-file pan, -1 (left) to 1 (right)")
    s.add_argument("--offsets", metavar="S,...", help="per-file start offset in seconds")
    s.add_argument("--mute", metavar="I,...", help="0-based indices of files to mute")
    add_job_args(s)
    s.set_defaults(func=cmd_mix)

    s = sub.add_parser("master", help="master a track to a loudness preset or target")
    s.add_argument("file")
    s.add_argument("--preset", choices=["streaming", "cd", "club"])
    s.add_argument("--target-lufs", type=float, metavar="LUFS")
    s.add_argument("-o", "--out", required=True, metavar="OUT")
    add_job_args(s)
    s.set_defaults(func=cmd_master)

    s = sub.add_parser("mashup", help="the AI Magic Generator: a mashup of 1-4 tracks")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--vibe", default="energetic", choices=["energetic", "chill", "dark", "upbeat"])
    s.add_argument(
        "-o", "--out", required=True, metavar="OUT", help="a .wav/.mp3/.flac file or a folder"
    )
    s.add_argument(
        "--base-track", type=int, metavar="I", help="0-based index of the instrumental base"
    )
    s.add_argument("--stems-dir", metavar="DIR", help="also save the aligned stems here")
    add_job_args(s)
    s.set_defaults(func=cmd_mashup)
