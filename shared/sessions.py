"""Sessions that end: the per-user token floor and refresh-token families.

- ``TokenFloors``: each user has a token ``generation`` and a ``not_before`` time in
  ``public.user_token_floors``. A password reset or "log out everywhere" bumps both, and the
  verifier then refuses access tokens issued before: local tokens carry the generation as the
  ``gen`` claim; tokens without one (Supabase's) are compared by ``iat``. Lookups are cached
  per process for ``ttl_s`` (a revocation made by this process applies at once; one made by
  another process within ``ttl_s``), so status reads do not pay a query for it.
- ``revoke_family``: a refresh token used twice means it was stolen; every token of its session
  (family), the successor included, is revoked.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from shared.db import Database


@dataclass(frozen=True)
class Floor:
    generation: int
    not_before_s: float


NO_FLOOR = Floor(0, 0.0)


class TokenFloors:
    """Per-user token generation, read through a short per-process cache."""

    def __init__(self, db: Database, ttl_s: float = 2.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[Floor, float]] = {}
        self._lock = threading.Lock()

    def is_fresh(self, user_id: str) -> bool:
        hit = self._cache.get(user_id)
        return hit is not None and time.monotonic() - hit[1] < self.ttl_s

    def get(self, user_id: str, *, fresh: bool = False) -> Floor:
        """The user's floor; ``fresh`` skips the cache (when issuing tokens: a token stamped
        with a stale generation would be refused as soon as it is used)."""
        now = time.monotonic()
        hit = self._cache.get(user_id)
        if not fresh and hit is not None and now - hit[1] < self.ttl_s:
            return hit[0]
        with self.db.service() as conn:
            row = conn.execute(
                "select generation, extract(epoch from not_before) as nb"
                " from public.user_token_floors where user_id = %s",
                (user_id,),
            ).fetchone()
        floor = Floor(int(row["generation"]), float(row["nb"])) if row else NO_FLOOR
        with self._lock:
            if len(self._cache) > 100_000:  # bounded: forget everyone rather than grow forever
                self._cache.clear()
            self._cache[user_id] = (floor, now)
        return floor

    def bump(self, conn, user_id: str) -> Floor:
        """Raise the user's generation (inside the caller's transaction) and forget the cache."""
        row = conn.execute(
            "insert into public.user_token_floors (user_id, generation, not_before)"
            " values (%s, 1, now()) on conflict (user_id) do update"
            " set generation = user_token_floors.generation + 1, not_before = now()"
            " returning generation, extract(epoch from not_before) as nb",
            (user_id,),
        ).fetchone()
        floor = Floor(int(row["generation"]), float(row["nb"]))
        with self._lock:
            self._cache[user_id] = (floor, time.monotonic())
        return floor

    def allows(self, user_id: str, claims: dict) -> bool:
        floor = self.get(user_id)
        if floor is NO_FLOOR:
            return True
        if "gen" in claims:
            try:
                return int(claims["gen"]) >= floor.generation
            except (TypeError, ValueError):
                return False
        return float(claims.get("iat", 0)) >= int(floor.not_before_s)


def revoke_user_refresh_tokens(conn, user_id: str) -> int:
    cur = conn.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now()"
        " where user_id = %s and not revoked",
        (user_id,),
    )
    return cur.rowcount


def revoke_family(conn, session_id: str) -> int:
    cur = conn.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now()"
        " where session_id = %s and not revoked",
        (session_id,),
    )
    return cur.rowcount
