"""``GET /api/v1/kinds``: every job kind the server runs, with its params schema and stages.

Read from the registry the app was composed with (``services.kinds``), so a kind added to the
index shows here, in the web client's forms and in the CLI without code of its own.
"""

from __future__ import annotations

from fastapi import APIRouter

from web.deps import CurrentUser, ServicesDep

router = APIRouter(prefix="/api/v1", tags=["jobs"])


@router.get("/kinds")
def kinds(user: CurrentUser, services: ServicesDep) -> list[dict]:
    return [
        {
            "kind": k.name,
            "description": k.description,
            "stages": k.stage_names(),
            "min_files": k.min_files,
            "max_files": k.max_files,
            "params_schema": k.params.model_json_schema(),
            "details": k.extra,  # e.g. stems: models, what "melody" is per model
        }
        for k in services.kinds
    ]
