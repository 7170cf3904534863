"""``GET /api/v1/config``: what the browser client needs before anyone signs in.

Public (no token): the auth backend, and for Supabase its project URL and *anon* key — both are
meant to be public (Supabase's row-level security is what protects data) — plus the upload
limits the page shows before a file is sent. Nothing secret goes here: no service key, no
signing secret, no database URL, no provider keys.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from web.deps import ServicesDep

router = APIRouter(prefix="/api/v1", tags=["system"])

# What the upload check recognises by content (shared.submit -> functions.audio_io).
AUDIO_FORMATS = ["mp3", "wav", "flac", "m4a", "ogg"]


class KindLimits(BaseModel):
    max_file_mb: float
    max_duration_s: float
    formats: list[str]


class ClientConfig(BaseModel):
    auth: str  # "local" or "supabase"
    supabase_url: str | None
    supabase_anon_key: str | None
    max_files: int
    limits: dict[str, KindLimits]


@router.get("/config", response_model=ClientConfig)
def client_config(services: ServicesDep) -> dict:
    s = services.settings
    supabase = s.auth_backend == "supabase"
    limits = {
        k.name: {
            "max_file_mb": float(k.max_file_mb or s.max_upload_mb),
            "max_duration_s": float(k.max_duration_s or s.max_duration_s),
            "formats": list(k.input_formats or AUDIO_FORMATS),
        }
        for k in services.kinds
    }
    return {
        "auth": s.auth_backend,
        "supabase_url": s.supabase_url.rstrip("/") if supabase else None,
        "supabase_anon_key": s.supabase_anon_key if supabase else None,
        "max_files": s.max_files,
        "limits": limits,
    }
