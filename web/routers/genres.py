"""The genre catalog: ``GET /api/v1/genres`` lists the 14 genres beats and hums can use.

Public (no sign-in): it is the same static catalog for everyone, holds nothing about users,
and the web client shows it on the create form before anyone has signed in.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from functions.genres import catalog

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
def list_genres() -> list[dict]:
    """Every genre with its BPM range, default BPM, characteristics and moods."""
    return catalog()
