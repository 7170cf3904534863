"""Sign-up, sign-in, refresh, password reset, the current user, and the local JWKS."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from shared.errors import InvalidInput, NotFound, Unauthorized
from shared.input_checks import SafeStr
from shared.throttle import LoginThrottle
from web.deps import CurrentUser, ServicesDep
from web.hardening import client_address

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
jwks_router = APIRouter(tags=["auth"])


class Credentials(BaseModel):
    email: SafeStr = Field(max_length=255)
    password: SafeStr = Field(max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: SafeStr = Field(max_length=512)


class ResetRequest(BaseModel):
    email: SafeStr | None = Field(default=None, max_length=255)
    token: SafeStr | None = Field(default=None, max_length=512)
    password: SafeStr | None = Field(default=None, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=TokenResponse)
def register(body: Credentials, services: ServicesDep) -> dict:
    return services.auth.register(body.email, body.password).to_dict()


@router.post("/login", response_model=TokenResponse)
def login(body: Credentials, services: ServicesDep, request: Request) -> dict:
    s = services.settings
    throttle = LoginThrottle(
        services.db,
        free_failures=s.login_free_failures,
        max_delay_s=s.login_max_delay_s,
        address_failures=s.login_address_failures,
    )
    email, address = body.email.strip().lower(), client_address(request.scope, s)
    throttle.check(email, address)
    try:
        pair = services.auth.login(body.email, body.password)
    except Unauthorized:
        throttle.failed(email, address)
        raise
    throttle.succeeded(email)
    return pair.to_dict()


@router.post("/refresh", response_model=TokenResponse)
def refresh(body: RefreshRequest, services: ServicesDep) -> dict:
    return services.auth.refresh(body.refresh_token).to_dict()


@router.post("/reset-password", status_code=status.HTTP_202_ACCEPTED)
def reset_password(body: ResetRequest, services: ServicesDep) -> dict:
    """``{"email"}`` sends a recovery token; ``{"token", "password"}`` sets the new password."""
    if body.token and body.password:
        return services.auth.reset_password(body.token, body.password).to_dict()
    if body.email:
        services.auth.request_reset(body.email)
        # Same answer whether or not the account exists: no account enumeration.
        return {"message": "If an account exists for this email, a recovery token was sent."}
    raise InvalidInput(
        "Send either an email, or a recovery token and a new password.", code="BAD_RESET_REQUEST"
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    user: CurrentUser, services: ServicesDep, scope: Literal["local", "global"] = "local"
) -> Response:
    """``scope=local`` ends this session; ``scope=global`` ends every session of the user
    (refresh tokens revoked, earlier access tokens refused)."""
    services.auth.logout(user, scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me")
def me(user: CurrentUser, services: ServicesDep) -> dict:
    return {
        "id": user.id,
        "email": user.email,
        "storage_used_bytes": services.storage.usage(user.id),
        "storage_quota_bytes": services.settings.user_quota_bytes,
    }


@jwks_router.get("/auth/v1/.well-known/jwks.json")
def jwks(services: ServicesDep) -> dict:
    if services.auth.jwks is None:
        raise NotFound("This deployment uses Supabase Auth; its JWKS is served by Supabase.")
    return services.auth.jwks
