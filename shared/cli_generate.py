"""Generation commands: ``soundstage beat``, ``hum``, ``blend`` and ``genres``.

``soundstage beat --genre trap --bpm 140 --key Cm --mood dark --duration 30 -o OUT``
``soundstage hum FILE --genre lo-fi -o OUT``
``soundstage blend A B --start 0 --end 16 -o OUT``
``soundstage genres``

Each job runs locally (embedded defaults) or on ``--server``, with a progress bar per stage.
``-o`` with a file extension saves the track there; without one it is a folder that receives
every output (track, stems, MIDI, notes).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from shared.cli_jobs import (
    add_job_args,
    as_params,
    console,
    print_result,
    run_job_cli,
    save_outputs,
)


def _save(args, job: dict, out: Path, main: str) -> list[Path]:
    names = [main] if out.suffix else None
    return save_outputs(args, job, out, names=names)


def _summary(r: dict, written: list[Path]) -> str:
    loud = r.get("loudness") or {}
    lines = [
        f"[bold]{', '.join(str(p) for p in written)}[/bold]",
        f"  {r.get('genre')} at {r.get('bpm'):g} BPM in {r.get('key')} ({r.get('mood')}), "
        f"{r.get('duration_s')} s, {r.get('format')} {r.get('sample_rate')} Hz",
        f"  engine     {r.get('engine')}"
        + (f"  [dim]{r['engine_note']}[/dim]" if r.get("engine_note") else ""),
        f"  loudness   {loud.get('loudness_lufs')} LUFS, true peak {loud.get('true_peak_dbtp')} dBTP",
        f"  seed       {r.get('seed')}",
    ]
    if r.get("stems"):
        lines.append(f"  stems      {', '.join(r['stems'])}")
    for what, inf in (r.get("inferred") or {}).items():
        if what == "instruments":
            said = ", ".join(f"{part} {i['value']}" for part, i in inf.items())
            lines.append(f"  inferred   instruments: {said}")
        elif inf.get("how") != "given":
            words = f" from '{', '.join(inf['words'])}'" if inf.get("words") else ""
            lines.append(f"  inferred   {what} {inf['value']} ({inf['how']}{words})")
    return "\n".join(lines)


def cmd_beat(args: argparse.Namespace) -> int:
    params = as_params(
        genre=args.genre, bpm=args.bpm, key=args.key, mood=args.mood, duration_s=args.duration,
        prompt=args.prompt, seed=args.seed, engine=args.engine, model=args.model, format=args.format,
        allow_any_bpm=args.allow_any_bpm or None,
    )  # fmt: skip
    job = run_job_cli(args, "beat", [], params)
    written = _save(args, job, args.out or Path(f"beat.{args.format or 'mp3'}"), "track")
    if args.json:
        print_result(args, job)
    else:
        console.print(_summary(job.get("result") or {}, written))
    return 0


def cmd_hum(args: argparse.Namespace) -> int:
    params = as_params(
        genre=args.genre, bpm=args.bpm, key=args.key, mood=args.mood, duration_s=args.duration,
        prompt=args.prompt, seed=args.seed, engine=args.engine, format=args.format,
    )  # fmt: skip
    job = run_job_cli(args, "hum", [args.file], params)
    written = _save(args, job, args.out or Path(f"hum-beat.{args.format or 'mp3'}"), "track")
    r = job.get("result") or {}
    if args.json:
        print_result(args, job)
        return 0
    melody = " ".join(_pitch(n["pitch"]) for n in r.get("melody", [])[:24])
    console.print(_summary(r, written) + f"\n  melody     {r.get('notes_count')} notes: {melody}")
    return 0


def _pitch(midi: int) -> str:
    from functions.music.theory import pitch_name

    return pitch_name(midi)


def cmd_blend(args: argparse.Namespace) -> int:
    params = as_params(
        start_s=args.start,
        end_s=args.end,
        weight=args.weight,
        mode="crossfade" if args.crossfade else None,
        engine=args.engine,
    )
    job = run_job_cli(args, "blend", [args.a, args.b], params)
    written = _save(args, job, args.out or Path("blend.wav"), "blend")
    r = job.get("result") or {}
    if args.json:
        print_result(args, job)
        return 0
    how = "crossfade A->B" if r.get("mode") == "crossfade" else f"weight {r.get('weight')} of B"
    console.print(
        f"[bold]{', '.join(str(p) for p in written)}[/bold]  {r.get('duration_s')} s, {r.get('sample_rate')} Hz "
        f"{r.get('subtype')}\n  engine     {r.get('engine')} ({how}, {r.get('start_s'):g}-{r.get('end_s'):g} s)"
    )
    return 0


def cmd_genres(args: argparse.Namespace) -> int:
    from rich.table import Table

    if args.server:
        import httpx

        genres = (
            httpx.get(args.server.rstrip("/") + "/api/v1/genres", timeout=30)
            .raise_for_status()
            .json()
        )
    else:
        from functions.genres import catalog

        genres = catalog()
    if args.json:
        import json

        print(json.dumps(genres, indent=2))
        return 0
    table = Table("genre", "bpm", "default", "moods", "characteristics")
    for g in genres:
        lo, hi = g["bpm_range"]
        table.add_row(
            g["name"],
            f"{lo}-{hi}",
            str(g["default_bpm"]),
            ", ".join(g["moods"]),
            ", ".join(g["characteristics"]),
        )
    console.print(table)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``beat``, ``hum``, ``blend`` and ``genres`` on the ``soundstage`` command."""
    p = sub.add_parser("beat", help="generate a beat in one of 14 genres")
    p.add_argument(
        "--genre",
        default=None,
        help="e.g. trap, lo-fi, house (see 'soundstage genres'); optional with --prompt",
    )
    p.add_argument("--bpm", type=float, default=None, help="tempo (default: the genre's)")
    p.add_argument(
        "--allow-any-bpm", action="store_true", help="allow a tempo outside the genre's range"
    )
    p.add_argument("--key", default=None, help="e.g. Cm, F#, 'A minor', 'Bb major'")
    p.add_argument(
        "--mood", default=None, help="a genre mood or everyday words (mapped to the nearest)"
    )
    p.add_argument("--duration", type=float, default=None, help="seconds, 5-120 (default 30)")
    _common_generation_args(p)
    p.add_argument("--model", choices=["small", "medium"], default=None, help="MusicGen size")
    p.set_defaults(func=cmd_beat)

    p = sub.add_parser("hum", help="turn a hummed melody into a beat that follows it")
    p.add_argument("file", type=Path, help="the hum recording (wav, mp3, m4a, ...)")
    p.add_argument("--genre", default=None, help="default lo-fi")
    p.add_argument("--bpm", type=float, default=None, help="default: fitted to the hum")
    p.add_argument("--key", default=None, help="default: estimated from the hummed notes")
    p.add_argument("--mood", default=None)
    p.add_argument(
        "--duration", type=float, default=None, help="seconds (default: the melody's length)"
    )
    _common_generation_args(p)
    p.set_defaults(func=cmd_hum)

    p = sub.add_parser("blend", help="blend two tracks through the EnCodec codec (24 kHz)")
    p.add_argument("a", type=Path, help="track A")
    p.add_argument("b", type=Path, help="track B")
    p.add_argument("--start", type=float, default=None, help="segment start in seconds (default 0)")
    p.add_argument("--end", type=float, default=None, help="segment end in seconds (default 16)")
    p.add_argument("--weight", type=float, default=None, help="share of B, 0-1 (default 0.5)")
    p.add_argument("--crossfade", action="store_true", help="move from A to B over the segment")
    p.add_argument("--engine", choices=["auto", "encodec", "spectral"], default=None)
    p.add_argument("-o", "--out", type=Path, default=None, help="output WAV (default blend.wav)")
    add_job_args(p)
    p.set_defaults(func=cmd_blend)

    p = sub.add_parser("genres", help="list the genres with their tempo ranges and moods")
    p.add_argument(
        "--server",
        metavar="URL",
        default=os.environ.get("SOUNDSTAGE_SERVER"),
        help="ask a running server instead",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_genres)


def _common_generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--prompt",
        default=None,
        help="describe the music in words (read by MusicGen; the procedural engine infers genre, mood and instruments from it)",
    )
    p.add_argument("--seed", type=int, default=None, help="same seed, same procedural beat")
    p.add_argument("--engine", choices=["auto", "musicgen", "procedural"], default=None)
    p.add_argument("--format", choices=["mp3", "wav", "flac"], default=None)
    p.add_argument(
        "-o", "--out", type=Path, default=None, help="a file, or a folder for every output"
    )
    add_job_args(p)
