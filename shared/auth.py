"""Users and access tokens, the Supabase way.

One verifier for both worlds: PyJWT checks the token's signature against a JWKS (asymmetric
keys only: ES256/RS256/EdDSA), requires ``exp``/``iat``/``sub``, ``aud="authenticated"`` and the
issuer. In production the JWKS is the Supabase project's ``/auth/v1/.well-known/jwks.json`` and
users sign up/in through Supabase Auth (supabase-py). Locally the app is its own small
Supabase-compatible auth: users in ``auth.users`` with bcrypt hashes, ES256 tokens signed with a
key kept under the data folder, the same JWKS shape served at ``/auth/v1/.well-known/jwks.json``,
rotating refresh tokens in ``auth.refresh_tokens`` and recovery tokens for password resets.

PyJWT, cryptography and bcrypt load on first use (a token to check or sign, a password to
hash): together they cost a cold ``soundstage analyze`` a tenth of a second for nothing, since
the command's built-in local user never signs in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.db import Database
from shared.errors import InvalidInput, SoundstageError, Unauthorized
from shared.sessions import TokenFloors, revoke_family, revoke_user_refresh_tokens

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger("soundstage.auth")

ALLOWED_ALGORITHMS = ["ES256", "RS256", "EdDSA"]  # never HS256 or "none"
AUDIENCE = "authenticated"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LOCAL_USER_EMAIL = "local@soundstage.invalid"  # the CLI's built-in user on embedded defaults


@dataclass
class User:
    id: str
    email: str
    role: str = "authenticated"
    claims: dict[str, Any] = field(default_factory=dict, repr=False)  # the verified token's

    @property
    def is_admin(self) -> bool:
        return is_admin(self.claims)


def is_admin(claims: dict) -> bool:
    """An operator: Supabase's server-set ``app_metadata.role`` is "admin" (users cannot write
    app_metadata themselves; ``soundstage admin grant EMAIL`` sets it)."""
    meta = claims.get("app_metadata") if isinstance(claims, dict) else None
    return isinstance(meta, dict) and meta.get("role") == "admin"


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"

    def to_dict(self) -> dict:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }


class TokenVerifier:
    """Verify access tokens against a JWKS (a URL, or a key set given directly).

    A verified token's claims are kept (bounded, until ``exp``) so a client polling a job does
    not pay a signature check per request; the per-user token floor is still checked each time.
    """

    CACHE_SIZE = 20_000

    def __init__(
        self,
        issuer: str,
        jwks_url: str | None = None,
        jwks: dict | None = None,
        floors: TokenFloors | None = None,
    ) -> None:
        self.issuer = issuer
        self._jwks_url = jwks_url
        self._jwks = jwks
        self.floors = floors
        self._verified: dict[str, dict] = {}

    @cached_property
    def _client(self):
        import jwt

        return (
            jwt.PyJWKClient(self._jwks_url, cache_keys=True, lifespan=600)
            if self._jwks_url
            else None
        )

    @cached_property
    def _set(self):
        import jwt

        return jwt.PyJWKSet.from_dict(self._jwks) if self._jwks else None

    def _key(self, token: str):
        import jwt

        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        for k in self._set.keys:
            if k.key_id == kid:
                return k.key
        raise Unauthorized("The access token was signed with an unknown key.", code="INVALID_TOKEN")

    def _decode(self, token: str) -> dict:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALLOWED_ALGORITHMS:
                raise Unauthorized("Unsupported token algorithm.", code="INVALID_TOKEN")
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=ALLOWED_ALGORITHMS,
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as e:
            raise Unauthorized(
                "The access token has expired; refresh it.", code="TOKEN_EXPIRED"
            ) from e
        except (jwt.PyJWTError, ValueError, TypeError) as e:
            raise Unauthorized("The access token is not valid.", code="INVALID_TOKEN") from e
        if claims.get("role", AUDIENCE) != AUDIENCE:
            raise Unauthorized("This token is not a user's access token.", code="INVALID_TOKEN")
        try:
            # A well-signed token whose subject is not a user id must not reach SQL as one.
            claims["sub"] = str(uuid.UUID(str(claims["sub"])))
        except ValueError as e:
            raise Unauthorized("The access token is not valid.", code="INVALID_TOKEN") from e
        return claims

    def verifies_in_memory(self, token: str) -> bool:
        """True when ``verify(token)`` needs no I/O (signature and floor both cached), so an
        async caller may run it on the event loop instead of in a thread."""
        claims = self._verified.get(token)
        if claims is None:
            return False
        return self.floors is None or self.floors.is_fresh(claims["sub"])

    def verify(self, token: str) -> User:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._verified) >= self.CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        elif claims["exp"] <= time.time():
            self._verified.pop(token, None)
            raise Unauthorized("The access token has expired; refresh it.", code="TOKEN_EXPIRED")
        if self.floors is not None and not self.floors.allows(claims["sub"], claims):
            raise Unauthorized(
                "This session has ended (password reset or sign-out everywhere); sign in again.",
                code="SESSION_REVOKED",
            )
        return User(id=claims["sub"], email=str(claims.get("email", "")), claims=claims)


def _load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)  # type: ignore[return-value]
    key = ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return key


def _validate_credentials(email: str, password: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email):
        raise InvalidInput("Enter a valid email address.", code="INVALID_EMAIL")
    if len(password or "") < 8:
        raise InvalidInput("The password must have at least 8 characters.", code="WEAK_PASSWORD")
    if len(password.encode()) > 72:
        raise InvalidInput("The password must be at most 72 bytes.", code="WEAK_PASSWORD")
    return email


def _bcrypt():
    import bcrypt

    return bcrypt


def _hash_token(token: str) -> str:
    # Refresh and recovery tokens are stored hashed: a database leak does not leak sessions.
    return hashlib.sha256(token.encode()).hexdigest()


class LocalAuth:
    """The app as its own Supabase-compatible auth server (embedded defaults)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.issuer = f"{settings.base_url}/auth/v1"
        self.floors = TokenFloors(db, settings.token_floor_cache_s)

    # The signing key, its JWKS and the verifier are made on first use (see the module's note).
    @cached_property
    def key(self) -> ec.EllipticCurvePrivateKey:
        return _load_or_create_key(Path(self.settings.data_dir) / "keys" / "jwt-es256.pem")

    @cached_property
    def jwks(self) -> dict:
        import jwt

        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        kid = hashlib.sha256(json.dumps(jwk, sort_keys=True).encode()).hexdigest()[:16]
        jwk.update({"kid": kid, "alg": "ES256", "use": "sig", "key_ops": ["verify"]})
        return {"keys": [jwk]}

    @property
    def kid(self) -> str:
        return self.jwks["keys"][0]["kid"]

    @cached_property
    def verifier(self) -> TokenVerifier:
        return TokenVerifier(self.issuer, jwks=self.jwks, floors=self.floors)

    # -- tokens -------------------------------------------------------------------------------

    def _issue(
        self, user_id: str, email: str, session_id: str | None = None, parent: str | None = None
    ) -> TokenPair:
        now = int(time.time())
        ttl = self.settings.access_token_ttl_s
        session_id = session_id or str(uuid.uuid4())
        claims = {
            "iss": self.issuer,
            "sub": user_id,
            "aud": AUDIENCE,
            "role": AUDIENCE,
            "email": email,
            "iat": now,
            "exp": now + ttl,
            "session_id": session_id,
            # The user's token generation: a reset or sign-out everywhere raises it.
            "gen": self.floors.get(user_id, fresh=True).generation,
            # As Supabase Auth does: the server-set app_metadata rides in every access token.
            "app_metadata": self._app_metadata(user_id),
        }
        import jwt

        access = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})
        refresh = secrets.token_urlsafe(32)
        with self.db.service() as conn:
            conn.execute(
                "insert into auth.refresh_tokens (token, user_id, session_id, parent)"
                " values (%s, %s, %s, %s)",
                (_hash_token(refresh), user_id, session_id, parent),
            )
        return TokenPair(access, refresh, ttl)

    def _app_metadata(self, user_id: str) -> dict[str, Any]:
        with self.db.service() as conn:
            row = conn.execute(
                "select raw_app_meta_data from auth.users where id = %s", (user_id,)
            ).fetchone()
        meta = dict((row or {}).get("raw_app_meta_data") or {})
        return {"provider": "email", "providers": ["email"], **meta}

    # -- users --------------------------------------------------------------------------------

    def register(self, email: str, password: str) -> TokenPair:
        email = _validate_credentials(email, password)
        pw_hash = _bcrypt().hashpw(password.encode(), _bcrypt().gensalt()).decode()
        with self.db.service() as conn:
            row = conn.execute(
                "insert into auth.users (email, encrypted_password, email_confirmed_at)"
                " values (%s, %s, now()) on conflict (email) do nothing returning id",
                (email, pw_hash),
            ).fetchone()
        if row is None:
            # Supabase Auth with confirmations off (autoconfirm, as here) answers the same way;
            # with confirmations on it hides existing emails (see the README, "Accounts").
            raise InvalidInput(
                "A user with this email is already registered.", code="USER_ALREADY_EXISTS"
            )
        return self._issue(str(row["id"]), email)

    def login(self, email: str, password: str) -> TokenPair:
        email = (email or "").strip().lower()
        with self.db.service() as conn:
            row = conn.execute(
                "select id, encrypted_password from auth.users where email = %s", (email,)
            ).fetchone()
        # Check a dummy hash when the user is unknown so timing does not reveal who exists.
        stored = row["encrypted_password"] if row else "$2b$12$" + "." * 53
        ok = False
        try:
            ok = _bcrypt().checkpw((password or "").encode(), stored.encode())
        except ValueError:
            ok = False
        if not row or not ok:
            raise Unauthorized("Wrong email or password.", code="INVALID_CREDENTIALS")
        with self.db.service() as conn:
            conn.execute(
                "update auth.users set last_sign_in_at = now() where id = %s", (row["id"],)
            )
        return self._issue(str(row["id"]), email)

    def refresh(self, refresh_token: str) -> TokenPair:
        hashed = _hash_token(refresh_token or "")
        user = None
        with self.db.service() as conn, conn.transaction():
            row = conn.execute(
                "select user_id, session_id, revoked, created_at > now() - make_interval(secs => %s)"
                " as fresh from auth.refresh_tokens where token = %s for update",
                (self.settings.refresh_token_ttl_s, hashed),
            ).fetchone()
            if row is not None and row["revoked"]:
                # A rotated token came back: someone holds a copy. End the whole family,
                # the successor included, so neither copy can go on (committed, then refused).
                revoke_family(conn, row["session_id"])
                log.warning(
                    "refresh token reuse; session revoked", extra={"user_id": row["user_id"]}
                )
            elif row is not None and row["fresh"]:
                conn.execute(
                    "update auth.refresh_tokens set revoked = true, updated_at = now()"
                    " where token = %s",
                    (hashed,),
                )
                user = conn.execute(
                    "select id, email from auth.users where id = %s", (row["user_id"],)
                ).fetchone()
        if row is None or row["revoked"] or not row["fresh"]:
            raise Unauthorized(
                "The refresh token is invalid or was already used.", code="INVALID_REFRESH_TOKEN"
            )
        if user is None:
            raise Unauthorized("The account no longer exists.", code="INVALID_REFRESH_TOKEN")
        return self._issue(str(user["id"]), user["email"], str(row["session_id"]), parent=hashed)

    def logout(self, user: User, scope: str = "local") -> None:
        """End this session (``local``), every session (``global``) or the others (``others``),
        as Supabase's ``/logout?scope=`` does."""
        session_id = user.claims.get("session_id")
        with self.db.service() as conn, conn.transaction():
            if scope == "local":
                if session_id:
                    revoke_family(conn, str(session_id))
                return
            revoke_user_refresh_tokens(conn, user.id)
            self.floors.bump(conn, user.id)

    def end_all_sessions(self, user_id: str) -> None:
        with self.db.service() as conn, conn.transaction():
            revoke_user_refresh_tokens(conn, user_id)
            self.floors.bump(conn, user_id)

    def request_reset(self, email: str) -> None:
        """Create a recovery token. Locally it is logged (there is no mail server)."""
        email = (email or "").strip().lower()
        token = secrets.token_urlsafe(24)
        with self.db.service() as conn:
            row = conn.execute(
                "update auth.users set recovery_token = %s, recovery_sent_at = now()"
                " where email = %s returning id",
                (_hash_token(token), email),
            ).fetchone()
        if row is not None:
            # The token is the one secret we do print: locally it stands in for the email.
            log.warning(
                "password recovery token for %s: %s", email, token, extra={"recovery": True}
            )

    def reset_password(self, token: str, password: str) -> TokenPair:
        _validate_credentials("x@y.zz", password)
        pw_hash = _bcrypt().hashpw(password.encode(), _bcrypt().gensalt()).decode()
        with self.db.service() as conn:
            row = conn.execute(
                "update auth.users set encrypted_password = %s, recovery_token = null, updated_at = now()"
                " where recovery_token = %s and recovery_sent_at > now() - interval '1 hour'"
                " returning id, email",
                (pw_hash, _hash_token(token or "")),
            ).fetchone()
        if row is None:
            raise Unauthorized(
                "The recovery token is invalid or has expired.", code="INVALID_RECOVERY_TOKEN"
            )
        # A new password ends every earlier session: refresh tokens and access tokens alike.
        self.end_all_sessions(str(row["id"]))
        return self._issue(str(row["id"]), row["email"])

    def ensure_local_user(self) -> User:
        """The CLI's built-in user on embedded defaults (no password; cannot log in over HTTP)."""
        with self.db.service() as conn:
            conn.execute(
                "insert into auth.users (email, encrypted_password) values (%s, null)"
                " on conflict (email) do nothing",
                (LOCAL_USER_EMAIL,),
            )
            row = conn.execute(
                "select id from auth.users where email = %s", (LOCAL_USER_EMAIL,)
            ).fetchone()
        return User(id=str(row["id"]), email=LOCAL_USER_EMAIL)

    def get_user(self, user_id: str) -> User | None:
        with self.db.service() as conn:
            row = conn.execute(
                "select id, email from auth.users where id = %s", (user_id,)
            ).fetchone()
        return User(id=str(row["id"]), email=row["email"]) if row else None


class SupabaseAuth:
    """Supabase Auth through supabase-py; tokens verified with the project's JWKS."""

    def __init__(self, settings: Settings, http_client=None, db: Database | None = None) -> None:
        from supabase_auth import SyncGoTrueClient

        base = settings.supabase_url.rstrip("/")
        self.issuer = settings.supabase_jwt_issuer or f"{base}/auth/v1"
        self.client = SyncGoTrueClient(
            url=f"{base}/auth/v1",
            headers={"apikey": settings.supabase_anon_key},
            auto_refresh_token=False,
            persist_session=False,
            http_client=http_client,
        )
        self.floors = TokenFloors(db, settings.token_floor_cache_s) if db is not None else None
        self.verifier = TokenVerifier(
            self.issuer, jwks_url=f"{base}/auth/v1/.well-known/jwks.json", floors=self.floors
        )
        self.jwks = None

    @staticmethod
    def _pair(resp) -> TokenPair:
        s = resp.session
        if s is None:
            raise SoundstageError(
                "Check your email to confirm the account, then log in.",
                code="CONFIRMATION_REQUIRED",
                status=202,
            )
        return TokenPair(s.access_token, s.refresh_token, int(s.expires_in))

    def _call(self, fn, *args):
        from supabase_auth.errors import AuthApiError

        try:
            return fn(*args)
        except AuthApiError as e:
            status = e.status if 400 <= (e.status or 0) < 500 else 401
            raise SoundstageError(
                e.message, code=(e.code or "AUTH_ERROR").upper(), status=status
            ) from e

    def register(self, email: str, password: str) -> TokenPair:
        email = _validate_credentials(email, password)
        return self._pair(self._call(self.client.sign_up, {"email": email, "password": password}))

    def login(self, email: str, password: str) -> TokenPair:
        creds = {"email": (email or "").strip().lower(), "password": password or ""}
        return self._pair(self._call(self.client.sign_in_with_password, creds))

    def refresh(self, refresh_token: str) -> TokenPair:
        return self._pair(self._call(self.client.refresh_session, refresh_token))

    def request_reset(self, email: str) -> None:
        self._call(self.client.reset_password_for_email, (email or "").strip().lower())

    def reset_password(self, token: str, password: str) -> TokenPair:
        raise InvalidInput(
            "With Supabase Auth, follow the link in the recovery email to set a new password.",
            code="USE_EMAIL_LINK",
        )

    def logout(self, user: User, scope: str = "local") -> None:
        # Supabase revokes the refresh tokens itself (its /logout with the user's token); the
        # floor makes this API refuse the earlier access tokens too.
        if scope != "local" and self.floors is not None:
            with self.floors.db.service() as conn, conn.transaction():
                self.floors.bump(conn, user.id)

    def ensure_local_user(self) -> User:
        raise InvalidInput(
            "The built-in local user exists only on embedded defaults.", code="NOT_LOCAL"
        )

    def get_user(self, user_id: str) -> User | None:
        return None


def open_auth(settings: Settings, db: Database) -> LocalAuth | SupabaseAuth:
    if settings.auth_backend == "supabase":
        return SupabaseAuth(settings, db=db)
    return LocalAuth(db, settings)
