"""``soundstage genres``: the genres beat and hum take, with their tempo ranges and moods."""

from __future__ import annotations

import argparse
import os

from cli.console import console


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
    """Register ``genres`` on the ``soundstage`` command."""
    p = sub.add_parser("genres", help="list the genres with their tempo ranges and moods")
    p.add_argument(
        "--server",
        metavar="URL",
        default=os.environ.get("SOUNDSTAGE_SERVER"),
        help="ask a running server instead",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_genres)
