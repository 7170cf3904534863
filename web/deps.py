"""Typed dependencies shared by the routers (the services, the job runner, the current user)."""

from __future__ import annotations

from typing import Annotated, Protocol

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth import User, is_admin
from shared.errors import SoundstageError, Unauthorized
from shared.services import Services
from web.hardening import limit_user

_bearer = HTTPBearer(auto_error=False, description="A Supabase (or local) access token")


class JobRunner(Protocol):
    """Who runs the jobs the API queues (``shared.runner``: local threads or Modal)."""

    def submit(self, job_id: str) -> None: ...


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_runner(request: Request) -> JobRunner:
    return request.app.state.runner


async def get_current_user(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise Unauthorized(
            "Sign in first: send 'Authorization: Bearer <access token>'.", code="AUTH_REQUIRED"
        )
    services = request.app.state.services
    verifier = services.auth.verifier
    # Async, so a status poll pays no thread hop here: a token seen before verifies from memory;
    # a new one (signature check, maybe a JWKS fetch, the token floor query) goes to a thread.
    if verifier.verifies_in_memory(creds.credentials):
        user = verifier.verify(creds.credentials)
    else:
        user = await anyio.to_thread.run_sync(verifier.verify, creds.credentials)
    limit_user(request.app, user.id, services.settings)
    request.state.user_id = user.id
    return user


def get_admin_user(user: Annotated[User, Depends(get_current_user)]) -> User:
    """The current user, if an operator (``app_metadata.role == "admin"`` in the token)."""
    if not is_admin(user.claims):
        raise SoundstageError(
            "This needs an operator account (app_metadata.role admin).",
            code="ADMIN_REQUIRED",
            status=403,
        )
    return user


ServicesDep = Annotated[Services, Depends(get_services)]
Runner = Annotated[JobRunner, Depends(get_runner)]
CurrentUser = Annotated[User, Depends(get_current_user)]
AdminUser = Annotated[User, Depends(get_admin_user)]
