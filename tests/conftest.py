"""Shared fixtures: one embedded Postgres per test session, the app with real worker threads,
fresh users, and helpers to run jobs through the API or as a pipeline-level job run here."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest

os.environ.setdefault("SOUNDSTAGE_LOG_LEVEL", "WARNING")

from shared.config import Settings  # noqa: E402
from shared.db import Database  # noqa: E402

if TYPE_CHECKING:
    from shared.services import Services
    from tests.pipeline_jobs import PipelineJobs

# The services, the kinds and the audio tools are imported by the fixtures that need them: a
# session of the job store's own tests (mutation runs start hundreds) does without them.

TERMINAL = ("completed", "failed", "canceled")


def pytest_configure(config) -> None:
    # SIGTERM (CI cancelling a run) tears the session down like Ctrl-C does: the embedded
    # Postgres servers stop instead of outliving pytest.
    from shared.shutdown import exit_on_sigterm

    exit_on_sigterm(interrupt=True)


def make_settings(data_dir: Path, **over) -> Settings:
    base = dict(
        data_dir=data_dir,
        public_url="http://testserver",
        heartbeat_s=0.5,
        stale_after_s=3.0,
        workers=2,
        rate_limit_per_hour=1000,
        log_level="WARNING",
        signing_secret="test-signing-secret",
        database_login_role="soundstage_app",  # as served: not the superuser
    )
    base.update(over)
    return Settings(**base)


# A Postgres already running (its superuser's URL), reused instead of starting one, and a
# migrated database there to copy: set only by tools/mutation.py, whose hundreds of short test
# sessions would otherwise each start a server and run the migrations. Each session then works
# in fresh databases of its own there; the tool drops them after its run.
REUSE_SERVER_ENV = "SOUNDSTAGE_TEST_PG_SERVER"
REUSE_TEMPLATE_ENV = "SOUNDSTAGE_TEST_PG_TEMPLATE"
_session_databases: list[str] = []


def new_database(pg_url: str, prefix: str) -> str:
    """A fresh database on the session's Postgres (created as its superuser); returns its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    template = os.environ.get(REUSE_TEMPLATE_ENV) if os.environ.get(REUSE_SERVER_ENV) else None
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"create database {name}" + (f" template {template}" if template else ""))
    _session_databases.append(name)
    parts = urlsplit(pg_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory) -> Iterator[str]:
    server = os.environ.get(REUSE_SERVER_ENV)
    if not server:
        data = tmp_path_factory.mktemp("pg")
        url = Database.embedded_url(data, cleanup_mode="delete")
        yield url
        Database.stop_embedded()
        return
    yield new_database(server, "session")


@pytest.fixture(scope="session")
def services(pg_url, tmp_path_factory) -> Iterator[Services]:
    from functions.audio_tools import AUDIO_TOOLS
    from shared.services import open_services
    from tests.kinds import TEST_KINDS

    data = tmp_path_factory.mktemp("data")
    svc = open_services(
        make_settings(data, database_url=pg_url), kinds=TEST_KINDS, audio=AUDIO_TOOLS
    )
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def app(services):
    from shared.runner import LocalRunner
    from web.app import create_app

    runner = LocalRunner(services, workers=2).start()
    application = create_app(services, runner)
    yield application
    runner.stop()


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture
def new_user(client) -> Callable[[], dict]:
    """Register a fresh user; returns {'email', 'password', 'headers', 'tokens'}."""

    def make() -> dict:
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery"
        r = client.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        tokens = r.json()
        return {
            "email": email,
            "password": password,
            "tokens": tokens,
            "headers": {"Authorization": f"Bearer {tokens['access_token']}"},
        }

    return make


class Api:
    """A TestClient bound to one user's token."""

    def __init__(self, client, headers: dict) -> None:
        self.client = client
        self.headers = headers

    def __getattr__(self, method: str):
        fn = getattr(self.client, method)

        def call(url: str, **kw):
            kw["headers"] = {**self.headers, **kw.get("headers", {})}
            return fn(url, **kw)

        return call

    def create_job(
        self,
        kind: str,
        files: list[Path] = (),
        params: dict | None = None,
        headers: dict | None = None,
    ):
        import json

        handles = [open(f, "rb") for f in files]
        try:
            r = self.post(
                "/api/v1/jobs",
                data={
                    "kind": kind,
                    **({"params": json.dumps(params)} if params is not None else {}),
                },
                files=[("files", (Path(f).name, h)) for f, h in zip(files, handles, strict=True)],
                headers=headers or {},
            )
        finally:
            for h in handles:
                h.close()
        return r

    def wait(self, job_id: str, timeout_s: float = 180.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.get(f"/api/v1/jobs/{job_id}").json()
            if job["status"] in TERMINAL:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish in {timeout_s}s: {job}")

    def run(
        self,
        kind: str,
        files: list[Path] = (),
        params: dict | None = None,
        timeout_s: float = 180.0,
    ) -> dict:
        r = self.create_job(kind, files, params)
        assert r.status_code == 202, r.text
        return self.wait(r.json()["id"], timeout_s)

    def fetch(self, url: str) -> bytes:
        """Follow a signed URL served by this app."""
        path = url.replace("http://testserver", "")
        r = self.client.get(path)
        assert r.status_code == 200, r.text
        return r.content


@pytest.fixture
def api(client, new_user) -> Api:
    return Api(client, new_user()["headers"])


@pytest.fixture
def api_run(api) -> Callable[..., dict]:
    return api.run


@pytest.fixture(scope="session")
def pipeline_services(pg_url, tmp_path_factory) -> Iterator[Services]:
    """Services on a database of their own on the session's Postgres, with no worker polling
    it: pipeline-level tests claim and run their jobs here (tests.pipeline_jobs)."""
    import psycopg

    from shared.services import open_services
    from tests.kinds import TEST_KINDS

    url = new_database(pg_url, "pipelines")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        # What these tests check does not need each commit on disk before the next statement.
        conn.execute(f"alter database {_session_databases[-1]} set synchronous_commit = off")
    svc = open_services(
        make_settings(tmp_path_factory.mktemp("pipelines"), database_url=url), kinds=TEST_KINDS
    )
    yield svc
    svc.close()


@pytest.fixture
def run_pipeline(pipeline_services) -> PipelineJobs:
    """``run_pipeline(kind, files, params)``: a real job of this test's own user, run here in
    the worker's job context; returns a ``PipelineRun`` (tests.pipeline_jobs)."""
    from tests.pipeline_jobs import PipelineJobs

    return PipelineJobs(pipeline_services)


@pytest.fixture(scope="session")
def song_wav(tmp_path_factory) -> Path:
    """A 12 s synthesized song (120 BPM, A minor) as 16-bit WAV."""
    from functions.audio_io import save_audio
    from tests.synth import synth_song

    audio, _ = synth_song(bpm=120, key="A minor", duration_s=12.0)
    path = tmp_path_factory.mktemp("audio") / "song.wav"
    save_audio(path, audio, "wav")
    return path


@pytest.fixture(scope="session")
def store_db(pg_url) -> Iterator[Database]:
    """A migrated database of its own with no worker, API or storage: the job store's own tests
    drive every transition by hand (tests.store_helpers)."""
    url = new_database(pg_url, "store")
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"alter database {_session_databases[-1]} set synchronous_commit = off")
    db = Database(url, pool_size=4)
    db.migrate()
    yield db
    db.close()


@pytest.fixture
def store(store_db):
    """The job store on ``store_db``, emptied of jobs: each test sees only its own."""
    from shared.jobs import JobStore

    with store_db.service() as conn:
        conn.execute("delete from jobs")
    return JobStore(store_db)
