"""One ``Settings`` object for every side (API, worker, CLI, Modal), read from the environment.

Every variable is ``SOUNDSTAGE_<NAME>`` (e.g. ``SOUNDSTAGE_DATABASE_URL``); the README's
deployment table lists them. Without any, the app runs on embedded defaults: Postgres from the
``pgserver`` wheel under ``data_dir``, files in ``data_dir/storage``, an in-process worker and
CPU engines. ``profile="production"`` tightens the defaults (rate limit 5 jobs/hour).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOUNDSTAGE_", env_file=None, extra="ignore")

    profile: Literal["local", "production"] = "local"
    data_dir: Path = Path(".soundstage")
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # base URL used in signed links; defaults to http://host:port

    # Database: empty -> embedded pgserver under data_dir/pg.
    database_url: str = ""
    # The login role the service uses after migrating (None: `soundstage_app` on the embedded
    # database, the URL's own user elsewhere; "" forces the URL's user).
    database_login_role: str | None = None

    # Storage: "local" (files under data_dir/storage) or "supabase".
    storage_backend: Literal["local", "supabase"] = "local"
    supabase_url: str = ""
    supabase_service_key: str = Field(default="", repr=False)
    supabase_anon_key: str = Field(default="", repr=False)
    supabase_jwt_issuer: str = ""  # default: {supabase_url}/auth/v1
    signing_secret: str = Field(default="", repr=False)  # HMAC for local signed URLs
    signed_url_ttl_s: int = 3600
    user_quota_bytes: int = 10 * 1024**3

    # Auth: "local" (the app is its own Supabase-compatible auth) or "supabase".
    auth_backend: Literal["local", "supabase"] = "local"
    access_token_ttl_s: int = 3600
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # How long one process may trust its cached copy of a user's token floor (revocations made
    # by another process take up to this long to apply there; this process applies its own now).
    token_floor_cache_s: float = 2.0

    # Runner: "local" (threads in this process) or "modal".
    runner: Literal["local", "modal"] = "local"
    workers: int = 2
    heartbeat_s: float = 5.0
    stale_after_s: float = 60.0
    max_attempts: int = 3  # attempts per job: transient failures and lost workers
    retry_backoff_s: float = 2.0  # first wait before another attempt; doubles, with jitter
    retry_backoff_max_s: float = 30.0
    modal_app_name: str = "soundstage"

    # Limits.
    max_upload_mb: float = 50.0
    max_duration_s: float = 15 * 60.0
    max_files: int = 8  # per job; each kind has its own limit (analyze 1, mashup 4, mix 8)
    rate_limit_per_hour: int | None = None  # None: 5 in production, 1000 locally
    # Requests per minute (None: the profile's default; production tight, local generous so
    # tests and the browser client never meet them in normal use). See web/hardening.py.
    address_limit_per_min: int | None = None  # every route, per client address
    user_limit_per_min: int | None = None  # every authenticated route, per user
    auth_limit_per_min: int | None = None  # sign-up/in/refresh/reset, per client address
    create_limit_per_min: int | None = None  # job creation, per client address
    trust_forwarded_for: bool = False  # True only behind a proxy that sets it (Modal's)
    login_free_failures: int = 5  # failed sign-ins per account before delays start
    login_max_delay_s: float = 60.0  # the longest wait a failing account is asked for
    login_address_failures: int = 100  # failed sign-ins per address per 15 minutes
    cors_origins: list[str] = ["http://127.0.0.1:8000", "http://localhost:8000"]
    retention_sweep_s: int = 3600
    # Per-kind retention changes, e.g. {"blend": {"outputs_days": 2}} (shared.retention).
    retention: dict[str, dict[str, float | bool]] = {}
    job_budget_usd: float = 20.0
    video_max_upload_mb: float = 10.0
    max_generated_clips: int = 8
    clip_concurrency: int = 5

    # Engines ("auto" chooses the production engine when its weights/keys are present).
    stems_engine: Literal["auto", "demucs", "dsp"] = "auto"
    demucs_model: str = "htdemucs"
    stems_gpu: str = "L4"  # Modal GPU type of the StemSeparator class (L4, A10G, T4, ...)
    # Beats and downbeats: Beat This! when its checkpoint is in the weights folder ("auto"),
    # always ("beat_this": a missing checkpoint is an error) or the DSP tracker ("dsp").
    beat_engine: Literal["auto", "beat_this", "dsp"] = "auto"
    model_dir: Path | None = None  # where weights live (a Modal Volume in production)
    music_engine: Literal["auto", "musicgen", "procedural"] = "auto"
    musicgen_model: str = "facebook/musicgen-small"
    musicgen_gpu: str = "L4"  # Modal GPU type of the MusicGen class (modal_app.py reads the same)
    blend_engine: Literal["auto", "encodec", "spectral"] = "auto"
    blend_checkpoint: str = ""
    openai_api_key: str = Field(default="", repr=False)
    openai_transcribe_model: str = "whisper-1"
    openai_plan_model: str = "gpt-4o-mini"
    replicate_api_token: str = Field(default="", repr=False)

    # GET /metrics: a scrape-only secret (Bearer); without it only admins can read metrics.
    metrics_token: str = Field(default="", repr=False)

    log_level: str = "INFO"

    # The built web client (web/client/dist by default; the Modal image puts it elsewhere).
    web_client_dir: Path | None = None

    @property
    def rate_limit(self) -> int:
        if self.rate_limit_per_hour is not None:
            return self.rate_limit_per_hour
        return 5 if self.profile == "production" else 1000

    def _per_min(self, value: int | None, production: int, local: int) -> int:
        if value is not None:
            return value
        return production if self.profile == "production" else local

    @property
    def address_limit(self) -> int:
        return self._per_min(self.address_limit_per_min, 300, 20_000)

    @property
    def user_limit(self) -> int:
        return self._per_min(self.user_limit_per_min, 600, 20_000)

    @property
    def auth_limit(self) -> int:
        return self._per_min(self.auth_limit_per_min, 30, 2_000)

    @property
    def create_limit(self) -> int:
        # The MusicLab design: 10 generate requests per minute per client address.
        return self._per_min(self.create_limit_per_min, 10, 2_000)

    @property
    def login_role(self) -> str:
        if self.database_login_role is not None:
            return self.database_login_role
        return "" if self.database_url else "soundstage_app"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def weights_dir(self) -> Path:
        return self.model_dir or (self.data_dir / "models")


@functools.cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between apps)."""
    get_settings.cache_clear()
