"""Wiring: the database, storage, auth and job store one process uses, opened once."""

from __future__ import annotations

from dataclasses import dataclass

from shared.auth import LocalAuth, SupabaseAuth, open_auth
from shared.config import Settings, get_settings
from shared.db import Database
from shared.jobs import JobStore
from shared.logs import setup_logging
from shared.storage import Storage, open_storage


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    auth: LocalAuth | SupabaseAuth
    jobs: JobStore

    def close(self) -> None:
        self.db.close()


def open_services(settings: Settings | None = None, *, migrate: bool = True) -> Services:
    settings = settings or get_settings()
    setup_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.open(settings)
    if migrate:
        db.migrate()
    if settings.login_role:
        # Never as the superuser: the role the migrations made, with only the grants it needs.
        db = db.as_login_role(settings.login_role)
    return Services(
        settings=settings,
        db=db,
        storage=open_storage(settings, db),
        auth=open_auth(settings, db),
        jobs=JobStore(db),
    )


_process_services: Services | None = None


def process_services() -> Services:
    """One Services per process (a Modal container reuses its pool across inputs)."""
    global _process_services
    if _process_services is None:
        _process_services = open_services(migrate=False)
    return _process_services
