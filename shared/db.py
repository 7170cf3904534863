"""Postgres access: the embedded server, the migration runner, a pool, and RLS-scoped sessions.

- ``Database.open(settings)``: connects to ``SOUNDSTAGE_DATABASE_URL``, or starts the embedded
  Postgres from the ``pgserver`` wheel under ``data_dir/pg`` (kept between runs).
- ``db.migrate()``: applies ``supabase/local/*.sql`` (Supabase's auth/storage shim, only where
  ``auth.users`` does not exist yet, i.e. never on real Supabase) and then
  ``supabase/migrations/*.sql`` in order, recording each in ``supabase_migrations.schema_migrations``
  (the table the Supabase CLI uses), under an advisory lock. Safe to run again.
- ``db.service()``: a connection with the service role's powers (the API and workers).
- ``db.as_user(user_id)``: a transaction running as Supabase's ``authenticated`` role with the
  user's JWT claims, so row-level security (not just our WHERE clauses) keeps users apart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from shared import embedded_pg
from shared.config import Settings

log = logging.getLogger("soundstage.db")

ROOT = Path(__file__).resolve().parent.parent
SUPABASE_DIR = ROOT / "supabase"
MIGRATION_LOCK = 7_214_002  # arbitrary advisory-lock key for migrations


def _sql_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.sql") if p.is_file())


class Database:
    """A pool of connections to one Postgres, embedded or remote."""

    def __init__(self, url: str, pool_size: int = 10, admin_url: str | None = None) -> None:
        self.url = url
        # Migrations run as the schema owner; the service itself may use a narrower login role.
        self.admin_url = admin_url
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=True,
        )

    @classmethod
    def open(cls, settings: Settings) -> Database:
        url = settings.database_url or cls.embedded_url(settings.data_dir)
        return cls(url)

    @classmethod
    def embedded_url(cls, data_dir: Path, cleanup_mode: str | None = "stop") -> str:
        """Start (or reuse) the embedded Postgres under ``data_dir/pg`` and return its URI
        (``shared.embedded_pg``)."""
        return embedded_pg.embedded_url(data_dir, cleanup_mode)

    def close(self) -> None:
        self.pool.close()

    def as_login_role(self, role: str) -> Database:
        """The same database through ``role`` (created by the migrations with only the grants
        the service needs); this admin pool is closed. Raises if the role cannot connect."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.url)
        params.pop("password", None)  # the embedded server trusts local connections
        url = make_conninfo(**{**params, "user": role})
        with psycopg.connect(url) as conn:
            conn.execute("select 1")
        admin = self.admin_url or self.url
        pool_size = self.pool.max_size
        self.close()
        return Database(url, pool_size, admin_url=admin)

    @classmethod
    def stop_embedded(cls) -> None:
        """Stop every embedded server this process started (tests; ``serve`` leaves it running)."""
        embedded_pg.stop_all()

    @contextmanager
    def service(self) -> Iterator[psycopg.Connection]:
        """A pooled connection (autocommit); use ``with conn.transaction():`` for atomic work."""
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def as_user(self, user_id: str) -> Iterator[psycopg.Connection]:
        """A transaction as the ``authenticated`` role with ``sub=user_id``: RLS applies."""
        claims = json.dumps({"sub": str(user_id), "role": "authenticated", "aud": "authenticated"})
        # Pipeline mode: BEGIN, the claims and the caller's first query travel together, and
        # COMMIT with the next sync: two round trips to Postgres instead of five.
        # set_config('role', ..., true) is SET LOCAL ROLE.
        with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            conn.execute(
                "select set_config('request.jwt.claims', %s, true),"
                " set_config('role', 'authenticated', true)",
                (claims,),
            )
            yield conn

    # -- migrations ---------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the shim (where needed) and every migration not yet recorded; return what ran."""
        applied: list[str] = []
        with self._owner_connection() as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("create schema if not exists supabase_migrations")
            conn.execute(
                "create table if not exists supabase_migrations.schema_migrations ("
                " version text primary key, name text, statements text[],"
                " applied_at timestamptz default now())"
            )
            done = {
                r["version"]
                for r in conn.execute("select version from supabase_migrations.schema_migrations")
            }
            has_auth = conn.execute("select to_regclass('auth.users') is not null as ok").fetchone()
            # The shim belongs to databases we created (no auth schema yet, or shim recorded);
            # a real Supabase database keeps its original auth/storage schemas.
            shim_db = not has_auth["ok"] or any(v.startswith("local_") for v in done)
            for path in _sql_files(SUPABASE_DIR / "local"):
                version = f"local_{path.stem}"
                if version in done:
                    continue
                if not shim_db:
                    log.info("skipping local shim %s: auth schema already present", path.name)
                    continue
                conn.execute(path.read_text())
                self._record(conn, version, path.name)
                applied.append(path.name)
            for path in _sql_files(SUPABASE_DIR / "migrations"):
                version = path.stem.split("_", 1)[0]
                if version in done:
                    continue
                conn.execute(path.read_text())
                self._record(conn, version, path.stem.split("_", 1)[-1])
                applied.append(path.name)
        for name in applied:
            log.info("applied migration %s", name)
        return applied

    @contextmanager
    def _owner_connection(self) -> Iterator[psycopg.Connection]:
        if self.admin_url is None:
            with self.pool.connection() as conn:
                yield conn
            return
        with psycopg.connect(self.admin_url, autocommit=True, row_factory=dict_row) as conn:
            yield conn

    @staticmethod
    def _record(conn: psycopg.Connection, version: str, name: str) -> None:
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name) values (%s, %s)",
            (version, name),
        )
