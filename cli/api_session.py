"""Requests from the CLI to the HTTP API: a server's (``--server URL``, with the token from
``soundstage login``), or the same routers in this process on the embedded defaults as the
built-in local user -- so a command has one implementation and the same answers both ways."""

from __future__ import annotations

from typing import Any

from cli.console import console
from cli.credentials import open_client, request


class ApiSession:
    """Requests to the API: a server's, or the app in this process."""

    def __init__(self, args) -> None:
        self.server = getattr(args, "server", None)
        self._kinds = getattr(args, "kinds", None)
        self._audio = getattr(args, "audio", None)
        self._local = None
        if self.server:
            self.client = open_client(self.server)
        else:
            self.client = self._local_client()

    def _local_client(self):
        from starlette.testclient import TestClient

        from shared.services import open_services

        services = open_services(kinds=self._kinds, audio=self._audio)
        user = services.auth.ensure_local_user()
        # The built-in user has no password: mint its token with the app's own signing key.
        token = services.auth._issue(user.id, user.email).access_token
        self._local = services
        # No `with`: no lifespan, so no worker threads start for these requests.
        return TestClient(
            local_app(services),
            base_url=services.settings.base_url,
            headers={"Authorization": f"Bearer {token}"},
        )

    def call(self, method: str, url: str, **kw) -> Any:
        if self.server:
            r = request(self.server, self.client, method, url, **kw)
        else:
            r = self.client.request(method, url, **kw)
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {"message": r.text}
            console.print(
                f"[red]Error {r.status_code}[/red]: {body.get('message')} "
                f"[dim]({body.get('code', '')})[/dim]"
            )
            for c in (body.get("details") or {}).get("conflicts", []):
                console.print(f"  conflict: {c['name']}")
            raise SystemExit(2)
        return r

    def json(self, method: str, url: str, **kw) -> Any:
        r = self.call(method, url, **kw)
        return r.json() if r.content else None

    def close(self) -> None:
        self.client.close()
        if self._local is not None:
            self._local.close()


def local_app(services):
    """The API's project and library routers with its error mapping, in this process. (Not
    ``create_app``: its middleware, metrics and client mount are work these commands never use.)"""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from shared.errors import SoundstageError
    from web.hardening import TokenBuckets, error_response
    from web.routers import files, projects

    app = FastAPI()
    app.state.services = services
    app.state.request_buckets = TokenBuckets()  # the per-user request limit every route applies

    @app.exception_handler(SoundstageError)
    async def soundstage_error(request: Request, exc: SoundstageError) -> JSONResponse:
        return error_response(exc)

    app.include_router(files.router)
    app.include_router(projects.router)
    return app
