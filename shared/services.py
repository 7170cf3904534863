"""Wiring: the database, storage, auth, job store, job kinds and audio tools one process uses,
opened once."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.audio_port import AudioTools, NoAudioTools
from shared.auth import LocalAuth, SupabaseAuth, open_auth
from shared.config import Settings, get_settings
from shared.db import Database
from shared.jobs import JobStore
from shared.logs import setup_logging
from shared.registry import Kinds
from shared.storage import Storage, open_storage


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    auth: LocalAuth | SupabaseAuth
    jobs: JobStore
    # The job kinds this process serves, handed in by whoever composes it (never imported here).
    kinds: Kinds = field(default_factory=Kinds)
    # Sniffing, probing and loudness for uploads, the library and projects, handed in likewise.
    audio: AudioTools = field(default_factory=NoAudioTools)

    def close(self) -> None:
        self.db.close()


def open_services(
    settings: Settings | None = None,
    *,
    migrate: bool = True,
    kinds: Kinds | None = None,
    audio: AudioTools | None = None,
) -> Services:
    """Open the database, storage and auth from ``settings``; ``kinds`` is the registry of job
    kinds the process serves (``functions.pipelines.KINDS``) and ``audio`` the audio tools
    (``functions.audio_tools.AUDIO_TOOLS``), both passed in by the composer."""
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
        kinds=kinds or Kinds(),
        audio=audio or NoAudioTools(),
    )


_process_services: Services | None = None


def process_services(kinds: Kinds | None = None, audio: AudioTools | None = None) -> Services:
    """One Services per process (a Modal container reuses its pool across inputs); ``kinds``
    and ``audio`` count on the first call, which opens them."""
    global _process_services
    if _process_services is None:
        _process_services = open_services(migrate=False, kinds=kinds, audio=audio)
    return _process_services
