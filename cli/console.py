"""Where the CLI writes: rich output on stderr (stdout stays for ``--json``), and the logs.

The process's JSON log lines would interleave with the progress bars, so a command keeps them
in ``<data dir>/cli.log`` unless ``--verbose`` asks for them on stderr. ``serve`` and ``worker``
are services: they always log to stderr.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console

from shared.logs import JsonFormatter, setup_logging

console = Console(stderr=True)


def error(message: str, code: str | None = None) -> None:
    """Print a user's error as a sentence, with its stable code when it has one."""
    console.print(f"[red]Error[/red]: {message}" + (f" [dim]({code})[/dim]" if code else ""))


def route_logs(verbose: bool, data_dir: Path, level: str = "INFO") -> None:
    """JSON logs (and Python warnings) to stderr with ``verbose``, else to ``data_dir/cli.log``."""
    setup_logging(level)
    if verbose:
        logging.captureWarnings(True)
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(data_dir / "cli.log")
    handler.setFormatter(JsonFormatter())
    for name in ("soundstage", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    logging.captureWarnings(True)
