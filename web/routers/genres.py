"""The genre catalog: ``GET /api/v1/genres`` lists the 14 genres beats and hums can use.

Like every ``/api/v1`` route but sign-up and sign-in, it needs a bearer token (one rule for the
whole API, easy to audit); the CLI's ``soundstage genres`` reads the same catalog offline.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from functions.genres import catalog
from web.deps import CurrentUser

router = APIRouter(prefix="/api/v1/genres", tags=["genres"])


class GenreOut(BaseModel):
    name: str
    slug: str
    bpm_range: list[int]
    default_bpm: int
    characteristics: list[str]
    moods: list[str]
    default_key: str


@router.get("", response_model=list[GenreOut])
def list_genres(user: CurrentUser) -> list[dict]:
    """Every genre with its BPM range, default BPM, characteristics and moods."""
    return catalog()
