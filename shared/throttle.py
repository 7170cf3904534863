"""Limits that count attempts, not rows a user can delete.

- ``AttemptCounter.take(bucket, key, limit, window_s)``: one transaction per attempt, serialised
  per (bucket, key) by an advisory lock, counts the attempts in the sliding window and records
  this one, or raises ``RateLimited`` with ``retry_after_s``. Parallel requests cannot slip past
  the count, and deleting jobs gives nothing back. Shared by every process on the database.
- ``LoginThrottle``: failed sign-ins per account and per client address. An account gets a few
  free failures, then each further try must wait a delay that doubles up to ``max_delay_s``
  (short, so an attacker cannot lock the real user out for long); an address that fails too
  often across accounts waits until its window clears. A success clears the account's count.
"""

from __future__ import annotations

import datetime as dt

from shared.db import Database
from shared.errors import RateLimited

WINDOW_KEEP_S = 24 * 3600  # attempts older than this are deleted as new ones arrive


class AttemptCounter:
    def __init__(self, db: Database) -> None:
        self.db = db

    def take(self, bucket: str, key: str, limit: int, window_s: float, message: str) -> int:
        """Record one attempt; returns how many the window now holds, or raises RateLimited."""
        with self.db.service() as conn, conn.transaction():
            conn.execute(
                "select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{bucket}\n{key}",)
            )
            row = conn.execute(
                "select count(*) as n, min(created_at) as oldest from public.rate_attempts"
                " where bucket = %s and key = %s and created_at > now() - make_interval(secs => %s)",
                (bucket, key, window_s),
            ).fetchone()
            if row["n"] >= limit:
                wait = window_s - (dt.datetime.now(dt.UTC) - row["oldest"]).total_seconds()
                raise RateLimited(message, details={"retry_after_s": max(1, int(wait) + 1)})
            conn.execute(
                "delete from public.rate_attempts where bucket = %s and key = %s"
                " and created_at < now() - make_interval(secs => %s)",
                (bucket, key, max(window_s, WINDOW_KEEP_S)),
            )
            conn.execute(
                "insert into public.rate_attempts (bucket, key) values (%s, %s)", (bucket, key)
            )
        return int(row["n"]) + 1


class LoginThrottle:
    """Growing delays per account, a window per address; stored in ``rate_attempts``."""

    def __init__(
        self,
        db: Database,
        *,
        free_failures: int = 5,
        max_delay_s: float = 60.0,
        address_failures: int = 100,
        window_s: float = 900.0,
    ) -> None:
        self.db = db
        self.free_failures = free_failures
        self.max_delay_s = max_delay_s
        self.address_failures = address_failures
        self.window_s = window_s

    def check(self, email: str, address: str) -> None:
        """Raise RateLimited when this account or address must wait before trying again."""
        with self.db.service() as conn:
            rows = conn.execute(
                "select bucket, count(*) as n, extract(epoch from now() - max(created_at)) as since_s,"
                " extract(epoch from now() - min(created_at)) as oldest_s"
                " from public.rate_attempts where ((bucket = 'login-account' and key = %s)"
                " or (bucket = 'login-address' and key = %s))"
                " and created_at > now() - make_interval(secs => %s) group by bucket",
                (email, address, self.window_s),
            ).fetchall()
        for r in rows:
            if r["bucket"] == "login-account" and r["n"] >= self.free_failures:
                delay = min(self.max_delay_s, 2.0 ** (r["n"] - self.free_failures))
                wait = delay - float(r["since_s"])
                if wait > 0:
                    raise RateLimited(
                        "Too many failed sign-ins for this account; wait a moment and try again.",
                        code="LOGIN_THROTTLED",
                        details={"retry_after_s": max(1, int(wait + 0.999))},
                    )
            if r["bucket"] == "login-address" and r["n"] >= self.address_failures:
                wait = self.window_s - float(r["oldest_s"])
                raise RateLimited(
                    "Too many failed sign-ins from your address; try again later.",
                    code="LOGIN_THROTTLED",
                    details={"retry_after_s": max(1, int(wait + 0.999))},
                )

    def failed(self, email: str, address: str) -> None:
        with self.db.service() as conn, conn.transaction():
            conn.execute(
                "insert into public.rate_attempts (bucket, key) values"
                " ('login-account', %s), ('login-address', %s)",
                (email, address),
            )
            conn.execute(
                "delete from public.rate_attempts where bucket in ('login-account', 'login-address')"
                " and key in (%s, %s) and created_at < now() - make_interval(secs => %s)",
                (email, address, self.window_s),
            )

    def succeeded(self, email: str) -> None:
        with self.db.service() as conn:
            conn.execute(
                "delete from public.rate_attempts where bucket = 'login-account' and key = %s",
                (email,),
            )
