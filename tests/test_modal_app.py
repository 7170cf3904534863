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


class FakeQueue:
    """``modal.Queue.ephemeral()`` as documented: a context manager whose queue has
    ``put(v)`` and ``get_many(n_values, block=True, timeout=None)`` (a list, maybe empty)."""

    def __init__(self) -> None:
        import queue

        self._q: queue.Queue = queue.Queue()
        self.closed = False

    def __enter__(self) -> FakeQueue:
        return self

    def __exit__(self, *exc) -> None:
        self.closed = True

    def put(self, v, block=True, timeout=None, *, partition=None, partition_ttl=86400) -> None:
        self._q.put(v)

    def get_many(self, n_values, block=True, timeout=None, *, partition=None) -> list:
        import queue

        out = []
        try:
            out.append(self._q.get(block=block, timeout=timeout))
            while len(out) < n_values:
                out.append(self._q.get_nowait())
        except queue.Empty:
            pass
        return out


def test_imports_and_declares_the_pieces(modal_env):
    m = modal_env
    for stage, remote in m.remote_stages().items():  # every stage routed to Modal exists
        assert callable(stage) and hasattr(m, remote.target.split(".")[0]), remote.target
    assert m.app.name == "soundstage"
    for name in (
        "run_job",
        "api",
        "sweep_storage",
        "recover_stale_jobs",
        "Analyzer",
        "generate_clip",
        "generate_reference",
    ):
        assert hasattr(m, name), name


def container_of(modal_cls):
    """A Modal class's container as Modal builds one: the user class, its ``@modal.enter``
    run; and each method's own Python function (what runs in the container)."""
    user_cls = modal_cls._get_user_cls()
    container = user_cls.__new__(user_cls)
    raw = {name: getattr(vars(user_cls)[name], "_get_raw_f", None) for name in vars(user_cls)}
    methods = {name: f() for name, f in raw.items() if f is not None}
    methods["load"](container)
    return container, methods


def test_analysis_stage_runs_locally(modal_env, song_wav):
    container, methods = container_of(modal_env.Analyzer)
    result = methods["analyze"](
        container, {"audio_bytes": song_wav.read_bytes(), "filename": "song.wav"}
    )
    assert abs(result["tempo_bpm"] - 120) < 1 and result["key"] == "A minor"
    assert result["engine"] == "soundstage-dsp"  # no checkpoint here: the DSP tracker


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

    class StandInMethod:  # ``Cls.from_name(app, name)().method``: .remote / .map
        def __init__(self, cls_name, method):
            self.name = f"{cls_name}.{method}"
            self.container, methods = container_of(getattr(modal_env, cls_name))
            self.fn = methods[method]

        def remote(self, kw):
            calls.append(("remote", self.name))
            assert isinstance(kw, dict)
            return self.fn(self.container, kw)

        def map(self, items):
            calls.append(("map", self.name))
            return [self.fn(self.container, kw) for kw in items]

    def cls_from_name(app_name, cls_name, **kw):
        assert app_name == "soundstage"
        return lambda: type(
            "Instance", (), {"__getattr__": lambda _, m: StandInMethod(cls_name, m)}
        )()

    monkeypatch.setattr(modal.Function, "from_name", staticmethod(from_name))
    monkeypatch.setattr(modal.Cls, "from_name", staticmethod(cls_from_name))
    queues: list[FakeQueue] = []
    monkeypatch.setattr(
        modal.Queue,
        "ephemeral",
        staticmethod(lambda **kw: queues.append(FakeQueue()) or queues[-1]),
    )
    from shared.job_context import DbJobContext

    reported = []
    to_events = DbJobContext._stage_progress

    def record(self, name, fraction, message):
        reported.append((name, fraction, message))
        to_events(self, name, fraction, message)

    monkeypatch.setattr(DbJobContext, "_stage_progress", record)
    user = services.auth.ensure_local_user()
    with open(song_wav, "rb") as fh:
        from shared.submit import Upload

        job, _ = submit_job(services, user, "analyze", {}, [Upload("song.wav", fh)])
    status = modal_env.run_job.local(str(job["id"]))
    assert status == "completed"
    assert calls == [("remote", "Analyzer.analyze")]
    done = services.jobs.get(user.id, str(job["id"]))
    assert done["result"]["key"] == "A minor"
    # The remote analysis reported its progress through a queue, into the job's stage.
    assert len(queues) == 1 and queues[0].closed
    from_the_stage = {"spectrum", "beats", "pitch", "key and bars", "sections", "done"}
    assert from_the_stage <= {m for stage, _, m in reported if stage == "audio_analysis"}
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
