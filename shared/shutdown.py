"""Graceful exits on SIGTERM, the signal systemd, Docker and Kubernetes send.

Python's default SIGTERM action ends the process without running ``atexit`` handlers, and
pgserver stops the embedded Postgres from one. uvicorn catches SIGTERM, shuts down, restores
the handler it found and raises the signal again; with ``exit_on_sigterm`` installed first,
that second delivery becomes a normal exit, so the embedded database stops with the server.
"""

from __future__ import annotations

import signal
import threading


def _raise_exit(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm(interrupt: bool = False) -> None:
    """Make SIGTERM a normal exit (``SystemExit``), or with ``interrupt`` a KeyboardInterrupt
    (what pytest turns into an orderly teardown). Only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return

    def _interrupt(signum: int, frame) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _interrupt if interrupt else _raise_exit)
