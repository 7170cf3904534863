"""modal_app.py imports without Modal credentials, and its functions run with `.local()`.

Modal's cloud cannot be reached here: where run_job would call a stage as a Modal function, a
stand-in for `modal.Function.from_name` checks the app and function names we ask for and runs the
stage's own `.local()` with the documented calling convention (one dict argument)."""

from __future__ import annotations

import time

import pytest

from shared.config import reset_settings
from shared.submit import submit_job


@pytest.fixture
def modal_env(monkeypatch, services):
    for k in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"):
        monkeypatch.delenv(k, raising=False)
    s = services.settings
    monkeypatch.setenv("SOUNDSTAGE_DATABASE_URL", services.db.url)
    monkeypatch.setenv("SOUNDSTAGE_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("SOUNDSTAGE_SIGNING_SECRET", s.signing_secret)
    monkeypatch.setenv("SOUNDSTAGE_PUBLIC_URL", s.public_url)
    reset_settings()
    import modal_app

    yield modal_app
    reset_settings()


def test_imports_and_declares_the_pieces(modal_env):
    import functions.pipelines  # noqa: F401  (stage modules mark their remote stages)
    from shared.registry import REMOTE_STAGES

    m = modal_env
    for target in REMOTE_STAGES.values():  # every stage routed to Modal exists in the app
        assert hasattr(m, target.split(".")[0]), target
    assert m.app.name == "soundstage"
    for name in (
        "run_job",
        "api",
        "sweep_storage",
        "recover_stale_jobs",
        "analyze_audio_stage",
        "video_clip",
        "video_reference",
    ):
        assert hasattr(m, name), name


def test_analysis_stage_runs_locally(modal_env, song_wav):
    result = modal_env.analyze_audio_stage.local(
        {"audio_bytes": song_wav.read_bytes(), "filename": "song.wav"}
    )
    assert abs(result["tempo_bpm"] - 120) < 1 and result["key"] == "A minor"


def test_run_job_routes_stages_to_modal_functions(modal_env, services, song_wav, monkeypatch):
    import modal

    calls = []

    class StandIn:
        def __init__(self, fn):
            self.fn = fn

        def remote(self, kw):
            calls.append(("remote", self.fn))
            assert isinstance(kw, dict)
            return getattr(modal_env, self.fn).local(kw)

        def map(self, items):
            calls.append(("map", self.fn))
            return [getattr(modal_env, self.fn).local(kw) for kw in items]

    def from_name(app_name, fn_name, **kw):
        assert app_name == "soundstage"
        return StandIn(fn_name)

    monkeypatch.setattr(modal.Function, "from_name", staticmethod(from_name))
    user = services.auth.ensure_local_user()
    with open(song_wav, "rb") as fh:
        from shared.submit import Upload

        job, _ = submit_job(services, user, "analyze", {}, [Upload("song.wav", fh)])
    status = modal_env.run_job.local(str(job["id"]))
    assert status == "completed"
    assert calls == [("remote", "analyze_audio_stage")]
    done = services.jobs.get(user.id, str(job["id"]))
    assert done["result"]["key"] == "A minor"
    # A second delivery of the same job id (Modal retried the input) runs nothing twice.
    assert modal_env.run_job.local(str(job["id"])) == "not-claimed"


def test_sweeper_runs_locally(modal_env, services):
    # Something for it to do: a finished job past its expiry goes, with its row.
    user = services.auth.ensure_local_user()
    job, _ = submit_job(services, user, "test_sleep", {"seconds": 0}, [])
    job_id = str(job["id"])
    services.jobs.cancel(user.id, job_id)  # queued: ends at once; claimed: ends at its check
    with services.db.service() as conn:
        for _ in range(100):
            row = conn.execute("select status from jobs where id = %s", (job_id,)).fetchone()
            if row["status"] in ("completed", "failed", "canceled"):
                break
            time.sleep(0.1)
        conn.execute(
            "update jobs set expires_at = now() - interval '1 second' where id = %s", (job_id,)
        )
    removed = modal_env.sweep_storage.local()
    assert removed.get("expired_jobs", 0) >= 1
    assert services.jobs.status_of(job_id) is None


def test_modal_runner_spawns_run_job(services, monkeypatch):
    import modal

    from shared.runner import ModalRunner

    spawned = []

    class Fn:
        def spawn(self, job_id):
            spawned.append(job_id)

    monkeypatch.setattr(
        modal.Function,
        "from_name",
        staticmethod(lambda app, name, **kw: (app, name) == ("soundstage", "run_job") and Fn()),
    )
    user = services.auth.ensure_local_user()
    job, _ = submit_job(services, user, "test_sleep", {"seconds": 0}, [])
    ModalRunner(services).submit(str(job["id"]))
    assert spawned == [str(job["id"])]
