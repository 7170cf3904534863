"""What the app puts between the network and the routers.

- ``UploadGuard`` (ASGI): on job creation, refuses an over-size ``Content-Length`` before reading
  a byte, counts bytes as they arrive (per request and per multipart part, with a small streaming
  parser alongside the app's own) and stops at the cap with a 413; the form parser then closes
  (and so deletes) its partial temp files.
- ``RequestLimits`` (ASGI): token buckets per client address: one for sign-in/sign-up routes,
  one for job creation, one for everything else. ``limit_user`` (called by the auth dependency)
  does the same per signed-in user. Limits are settings with generous local defaults and tight
  production ones; all are on in every profile. ``X-Forwarded-For`` is trusted only when
  ``trust_forwarded_for`` is set (behind Modal's proxy), and then only its last hop.
- ``SecurityHeaders`` (ASGI): nosniff, frame denial, Referrer-Policy, a Content-Security-Policy
  fit for the web client (a relaxed one for the API docs page, which loads Swagger UI from a CDN),
  and ``Cache-Control: no-store`` on every auth response (tokens).
- ``SafeJSONResponse``: error bodies encoded as ASCII JSON, so echoing odd input never crashes.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.config import Settings
from shared.errors import FileTooLarge, RateLimited, SoundstageError

MB = 1024 * 1024
JOBS_PATH = "/api/v1/jobs"
AUTH_PREFIX = "/api/v1/auth/"
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")


class SafeJSONResponse(JSONResponse):
    def render(self, content) -> bytes:
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode()


def error_response(exc: SoundstageError, headers: dict | None = None) -> SafeJSONResponse:
    """The API's one error answer: the error's own ``to_dict()`` with its HTTP status."""
    return SafeJSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


# -- client address ---------------------------------------------------------------------------


def client_address(scope: Scope, settings: Settings) -> str:
    """The caller's address: the socket peer, or the proxy's last ``X-Forwarded-For`` hop when
    the deployment says a proxy it trusts (Modal's) is in front."""
    if settings.trust_forwarded_for:
        for name, value in scope.get("headers") or ():
            if name == b"x-forwarded-for":
                hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
                if hops:
                    return hops[-1]
    client = scope.get("client")
    return client[0] if client else "unknown"


# -- token buckets ------------------------------------------------------------------------------


class TokenBuckets:
    """Per-key token buckets (``per_min`` tokens a minute, a minute's worth of burst)."""

    MAX_KEYS = 200_000

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, per_min: int) -> float:
        """Take one token; 0.0 when allowed, else the seconds until one is available."""
        rate = per_min / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(per_min), now))
            tokens = min(float(per_min), tokens + (now - last) * rate)
            if tokens >= 1.0:
                if len(self._buckets) >= self.MAX_KEYS:
                    self._buckets.clear()  # bounded memory: a reset is the safe direction
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate


def _retry_headers(wait_s: float) -> dict:
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}


class RequestLimits:
    def __init__(self, app: ASGIApp, settings: Callable[[], Settings], buckets: TokenBuckets):
        self.app = app
        self.settings = settings
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        s = self.settings()
        path, method = scope["path"], scope["method"]
        addr = client_address(scope, s)
        if path.startswith(AUTH_PREFIX) and method == "POST":
            name, per_min = "auth", s.auth_limit
        elif path == JOBS_PATH and method == "POST":
            name, per_min = "create", s.create_limit
        else:
            name, per_min = "any", s.address_limit
        wait = self.buckets.take(f"{name}\n{addr}", per_min)
        if wait > 0:
            resp = error_response(
                RateLimited(
                    f"Too many requests from your address; try again in {math.ceil(wait)} s."
                ),
                headers=_retry_headers(wait),
            )
            await resp(scope, receive, send)
            return
        await self.app(scope, receive, send)


def limit_user(app: FastAPI, user_id: str, settings: Settings) -> None:
    """Per signed-in user, across all routes; raises RateLimited."""
    wait = app.state.request_buckets.take(f"user\n{user_id}", settings.user_limit)
    if wait > 0:
        raise RateLimited(
            f"Too many requests; try again in {math.ceil(wait)} s.",
            details={"retry_after_s": max(1, math.ceil(wait))},
        )


# -- upload caps --------------------------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


def upload_caps(settings: Settings) -> tuple[int, int]:
    """(per part, per request) byte caps for job creation. ``max_upload_mb`` is the ceiling per
    file; kinds with a lower limit (video songs) are held to it when the file is spooled."""
    per_file = int(settings.max_upload_mb * MB)
    return per_file, settings.max_files * per_file + MB  # + room for the form fields


class UploadGuard:
    def __init__(self, app: ASGIApp, settings: Callable[[], Settings]) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != JOBS_PATH:
            await self.app(scope, receive, send)
            return
        per_file, per_request = upload_caps(self.settings())
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > per_request):
            await self._refuse(scope, receive, send, per_request, "request")
            return

        counted = {"total": 0, "part": 0}
        tripped: list[str] = []
        parsers = [self._part_counter(headers, counted, per_file, tripped)]

        async def guarded_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not tripped:
                body = message.get("body", b"")
                counted["total"] += len(body)
                if counted["total"] > per_request:
                    tripped.append("request")
                elif parsers[0] is not None and body:
                    try:
                        parsers[0].write(body)
                    except MultipartParseError:
                        parsers[0] = None  # the app's own parser answers malformed bodies
                if tripped:
                    raise _BodyTooLarge(tripped[0])
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped:
                return  # the app's answer to a body we cut off is replaced by the 413 below
            started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if tripped and not started:
            cap = per_file if tripped[0] == "file" else per_request
            await self._refuse(scope, receive, send, cap, tripped[0])

    @staticmethod
    def _part_counter(headers: Headers, counted: dict, per_file: int, tripped: list[str]):
        ctype = headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return None
        _, params = parse_options_header(ctype)
        boundary = params.get(b"boundary")
        if not boundary:
            return None

        def on_part_begin() -> None:
            counted["part"] = 0

        def on_part_data(data: bytes, start: int, end: int) -> None:
            counted["part"] += end - start
            if counted["part"] > per_file and not tripped:
                tripped.append("file")

        return MultipartParser(
            boundary, {"on_part_begin": on_part_begin, "on_part_data": on_part_data}
        )

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, cap: int, what: str) -> None:
        noun = "A file" if what == "file" else "The upload"
        resp = error_response(
            FileTooLarge(f"{noun} is larger than the {cap / MB:.0f} MB limit."),
            # The rest of the body is not read: the connection cannot be reused.
            headers={"Connection": "close"},
        )
        await resp(scope, receive, send)


# -- security headers ---------------------------------------------------------------------------


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(settings: Settings) -> str:
    """The policy the web client is built for (no inline script, same-origin scripts)."""
    supabase = _origin(settings.supabase_url) if settings.supabase_url else ""
    media = " ".join(x for x in ("'self'", "blob:", supabase) if x)
    connect = " ".join(x for x in ("'self'", supabase) if x)
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: blob:; media-src {media}; connect-src {connect}; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )


# Swagger UI / ReDoc load from jsDelivr and start with an inline script: only these pages get it.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com; "
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Callable[[], Settings]) -> None:
        self.app = app
        self.settings = settings
        self._csp: tuple[int, str] | None = None

    def _policy(self) -> str:
        s = self.settings()
        if self._csp is None or self._csp[0] != id(s):
            self._csp = (id(s), content_security_policy(s))
        return self._csp[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        csp = DOCS_CSP if path in DOCS_PATHS else self._policy()
        no_store = path.startswith(AUTH_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                h.setdefault("X-Content-Type-Options", "nosniff")
                h.setdefault("X-Frame-Options", "DENY")
                h.setdefault("Referrer-Policy", "no-referrer")
                h.setdefault("Content-Security-Policy", csp)
                h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if no_store:
                    h["Cache-Control"] = "no-store"
                    h["Pragma"] = "no-cache"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Callable[[], Settings]) -> None:
    """Add the guards; the last added runs first (headers on every answer, limits, caps)."""
    app.state.request_buckets = TokenBuckets()
    app.add_middleware(UploadGuard, settings=settings)
    app.add_middleware(RequestLimits, settings=settings, buckets=app.state.request_buckets)
    app.add_middleware(SecurityHeaders, settings=settings)
