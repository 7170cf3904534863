"""The embedded Postgres (the ``pgserver`` wheel) under a data folder, one server per folder.

Offers ``embedded_url(data_dir, cleanup_mode)`` (start or reuse the server, return its URI) and
``stop_all()``. Kept apart from ``shared.db`` so that a command can start the server before it
has imported psycopg or anything else: ``pg_ctl`` then runs beside the imports.
"""

from __future__ import annotations

import threading
from pathlib import Path

_servers: dict[Path, object] = {}
_lock = threading.Lock()


def embedded_url(data_dir: Path, cleanup_mode: str | None = "stop") -> str:
    """Start (or reuse) the embedded Postgres under ``data_dir/pg`` and return its URI.

    pgserver shares one postmaster between processes (the CLI beside a running server) and
    stops it when the last of them exits (``"stop"``); tests use ``"delete"``, a service that
    outlives the command ``None``."""
    import warnings

    # platformdirs (via pgserver) warns on headless machines without XDG_RUNTIME_DIR;
    # the fallback it takes is fine and the warning would only clutter the CLI.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pg"
    with _lock:
        server = _servers.get(pgdata)
        if server is None:
            server = pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)
            _servers[pgdata] = server
    return server.get_uri()


def stop_all() -> None:
    """Stop every embedded server this process started (tests; ``serve`` leaves it running)."""
    with _lock:
        for server in _servers.values():
            try:
                server.cleanup()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass
        _servers.clear()
