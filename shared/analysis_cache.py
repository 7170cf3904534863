"""The content-addressed JSON cache (the ``analysis_cache`` table): results a job computed
from a file's bytes and its parameters, kept per user for 14 days, so the same work is never
done twice. A job reaches it through ``ctx.cache_get`` / ``ctx.cache_put``; retention purges
what expired."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from shared.db import Database


class AnalysisCache:
    """One user's entries are ``(namespace, key) -> JSON value``, each living 14 days."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, user_id: str, namespace: str, key: str) -> Any | None:
        """The value stored under ``namespace``/``key`` for this user, or None (absent or
        expired)."""
        with self.db.service() as conn:
            row = conn.execute(
                "select value from analysis_cache where user_id = %s and namespace = %s and key = %s"
                " and expires_at > now()",
                (user_id, namespace, key),
            ).fetchone()
        return row["value"] if row else None

    def put(self, user_id: str, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable), replacing and renewing an earlier entry."""
        with self.db.service() as conn:
            conn.execute(
                "insert into analysis_cache (user_id, namespace, key, value) values (%s, %s, %s, %s)"
                " on conflict (user_id, namespace, key) do update set value = excluded.value,"
                " created_at = now(), expires_at = now() + interval '14 days'",
                (user_id, namespace, key, Jsonb(value)),
            )

    def purge_expired(self) -> int:
        """Delete every user's expired entries; returns how many went."""
        with self.db.service() as conn:
            return conn.execute("delete from analysis_cache where expires_at < now()").rowcount
