"""Serving the built browser client (``web/client`` -> ``web/client/dist``) from the API app.

Hashed bundles under ``/assets/`` are cached for a year (their names change with their content);
every other path that is not an API route gets ``index.html``, so client routes such as
``/jobs/<id>`` survive a reload. API, docs, health, signed-file and JWKS paths never fall back
to the page: an unknown ``/api/...`` URL stays a JSON 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse

from shared.errors import NotFound

DEFAULT_DIST = Path(__file__).parent / "client" / "dist"
# First path segments that belong to the server, never to the client's router.
SERVER_PREFIXES = ("api", "files", "auth", "docs", "redoc", "openapi.json", "health", "metrics")
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
REVALIDATE = {"Cache-Control": "no-cache"}

PLACEHOLDER = (
    "<!doctype html><html><head><meta charset=utf-8><title>Soundstage</title></head>"
    "<body style='font-family:system-ui;max-width:40rem;margin:3rem auto'>"
    "<h1>Soundstage</h1><p>The API is running. The web client is not built here: "
    "<code>make run</code> builds it.</p>"
    "<ul><li><a href='/docs'>Interactive API docs</a></li>"
    "<li><a href='/health'>Health</a></li></ul></body></html>"
)


def mount_client(app: FastAPI, dist_dir: Path | None = None) -> None:
    """Add the client's routes to ``app``; call after every API router is included."""
    dist = (dist_dir or DEFAULT_DIST).resolve()

    def index() -> FileResponse | HTMLResponse:
        page = dist / "index.html"
        if not page.is_file():
            return HTMLResponse(PLACEHOLDER)
        return FileResponse(page, media_type="text/html", headers=REVALIDATE)

    @app.get("/", include_in_schema=False, response_model=None)
    def client_index() -> FileResponse | HTMLResponse:
        return index()

    @app.get("/{path:path}", include_in_schema=False, response_model=None)
    def client_route(path: str) -> FileResponse | HTMLResponse:
        first = path.split("/", 1)[0]
        if first in SERVER_PREFIXES:
            raise NotFound("No such API route.")
        file = (dist / path).resolve()
        # A real file inside dist (never outside it: no "../" escapes).
        if file.is_relative_to(dist) and file.is_file():
            headers = IMMUTABLE if path.startswith("assets/") else REVALIDATE
            return FileResponse(file, headers=headers)
        if path.startswith("assets/") or "." in path.rsplit("/", 1)[-1]:
            raise NotFound("No such file.")
        return index()
