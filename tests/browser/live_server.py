"""A live Soundstage server for the browser journeys, run as its own process.

``python -m tests.browser.live_server PORT DATA_DIR`` starts an embedded Postgres under
DATA_DIR (its own, so its workers never claim jobs of the in-process test app), then the app
with its worker threads on 127.0.0.1:PORT. Two things differ from ``soundstage serve``, both to
test the page under production conditions quickly:
- every response carries the Content-Security-Policy the deployment uses (no inline script,
  same-origin scripts only), so a page that breaks under it fails the tests;
- event streams end after ``SOUNDSTAGE_TEST_STREAM_MAX_S`` seconds instead of 120, so the
  client's Last-Event-ID resume runs in every journey.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def main() -> None:
    port, data_dir = int(sys.argv[1]), Path(sys.argv[2])
    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit it reaches the
    # `finally` below, which stops the embedded Postgres instead of leaving it running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from shared.db import Database

    os.environ["SOUNDSTAGE_DATABASE_URL"] = Database.embedded_url(data_dir, cleanup_mode="delete")
    import uvicorn

    import web.routers.jobs as jobs_router
    from shared.logs import setup_logging
    from web.app import create_app

    jobs_router.STREAM_MAX_S = float(os.environ.get("SOUNDSTAGE_TEST_STREAM_MAX_S", "3"))
    setup_logging("WARNING")
    app = create_app()

    @app.middleware("http")
    async def content_security_policy(request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        Database.stop_embedded()


if __name__ == "__main__":
    main()
