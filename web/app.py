"""The FastAPI app: routers per resource, one place that maps errors to responses.

``create_app(services=None, runner=None)`` builds the app; by default it opens the services from
the environment (embedded Postgres, local storage, local auth) with ``kinds`` (default: every
kind of ``functions.pipelines.KINDS``) and ``audio`` (default:
``functions.audio_tools.AUDIO_TOOLS``) and starts a ``LocalRunner`` (worker threads in this
process) — or hands jobs to Modal when ``SOUNDSTAGE_RUNNER=modal``.
"""

from __future__ import annotations

import importlib
import logging
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from functions.audio_tools import AUDIO_TOOLS
from functions.pipelines import KINDS
from shared.audio_port import AudioTools
from shared.errors import InvalidInput, NotFound, SoundstageError
from shared.registry import Kinds
from shared.runner import open_runner
from shared.services import Services, open_services
from web import hardening, metrics
from web.access_log import AccessLog
from web.client_files import mount_client
from web.events import close_hubs
from web.hardening import SafeJSONResponse as JSONResponse
from web.hardening import error_response
from web.routers import (
    admin,
    auth,
    client_config,
    files,
    job_inputs,
    jobs,
    projects,
    system,
)
from web.routers import kinds as kinds_router

log = logging.getLogger("soundstage.web")

OPTIONAL_ROUTERS = ("web.routers.genres",)  # routers that arrive with their job kinds


def create_app(
    services: Services | None = None,
    runner=None,
    *,
    start_runner: bool = True,
    kinds: Kinds | None = None,
    audio: AudioTools | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.services is None:
            app.state.services = open_services(kinds=kinds or KINDS, audio=audio or AUDIO_TOOLS)
        if app.state.runner is None:
            app.state.runner = open_runner(app.state.services)
            app.state.owns_runner = True
        if start_runner and getattr(app.state, "owns_runner", False):
            app.state.runner.start()
        yield
        close_hubs(app)
        if getattr(app.state, "owns_runner", False):
            app.state.runner.stop()

    app = FastAPI(
        title="Soundstage API",
        version="0.1.0",
        description="Analyse, split, mix, master, mash up, generate and visualise music.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.runner = runner
    app.state.owns_runner = False

    settings = services.settings if services is not None else None
    from shared.config import get_settings

    origins = (settings or get_settings()).cors_origins
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
    )

    hardening.install(
        app, lambda: app.state.services.settings if app.state.services else get_settings()
    )

    app.add_middleware(AccessLog)

    @app.exception_handler(SoundstageError)
    async def soundstage_error(request: Request, exc: SoundstageError) -> JSONResponse:
        headers = {}
        if exc.status == 429:
            headers["Retry-After"] = str(exc.details.get("retry_after_s", 60))
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if exc.status >= 500:
            log.error("server error %s: %s", exc.code, exc.message)
        return error_response(exc, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if any(tuple(e.get("loc", ())) == ("path", "job_id") for e in errs):
            # A malformed job id names no job, like a well-formed one nobody has.
            return error_response(NotFound("No job with this id.", code="JOB_NOT_FOUND"))
        first = errs[0] if errs else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "request"
        if first.get("type") == "missing":
            msg = f"The field '{field}' is required."
        else:
            msg = f"Invalid value for '{field}': {first.get('msg', 'invalid')}."
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
            for e in errs
        ]
        return error_response(
            InvalidInput(msg, code="VALIDATION_ERROR", status=422, details=details)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "UNAUTHORIZED"}.get(
            exc.status_code, "HTTP_ERROR"
        )
        return error_response(
            SoundstageError(str(exc.detail), code=code, status=exc.status_code),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(psycopg.DataError)
    @app.exception_handler(UnicodeError)
    async def bad_text(request: Request, exc: Exception) -> JSONResponse:
        # Text Postgres or UTF-8 cannot hold that slipped past the checks: the input's fault.
        log.warning("refused text on %s: %s", request.url.path, type(exc).__name__)
        return error_response(
            InvalidInput(
                "The request holds text that cannot be stored.", code="INVALID_TEXT", status=400
            )
        )

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return error_response(SoundstageError("Something went wrong on our side.", retryable=True))

    app.include_router(auth.router)
    app.include_router(auth.jwks_router)
    app.include_router(jobs.router)
    app.include_router(files.router)
    app.include_router(projects.router)
    app.include_router(system.router)
    app.include_router(admin.router)
    metrics.install(app)  # GET /metrics (operators) + request counting
    app.include_router(client_config.router)
    app.include_router(job_inputs.router)
    for name in OPTIONAL_ROUTERS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        app.include_router(mod.router)

    app.include_router(kinds_router.router)

    # Last: the browser client answers every path the API does not (SPA fallback).
    mount_client(app, (settings or get_settings()).web_client_dir)

    return app
