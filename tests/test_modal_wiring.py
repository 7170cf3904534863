"""Modal wiring the cloud would only show in production: GPU stages routed to classes (a model
loaded once per container) rather than to plain functions, remote progress drained back into
the stage, compute priced where it ran, and the stage functions that had no ``.local()`` run:
blend, video reference, video clip, and the stale-job sweep's respawn.

Modal's cloud cannot be reached here; ``modal.Cls.from_name`` / ``modal.Function.from_name``
are replaced by recorders that check the names we ask for (Modal's documented lookups), and
``modal.Queue.ephemeral()`` by a queue with the documented ``put`` / ``get_many`` interface."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from shared import prices
from shared.errors import BudgetExceeded, JobCanceled, StageFailed
from shared.executors import LocalExecutor, ModalExecutor, QueueProgress
from shared.submit import submit_job
from tests.test_modal_app import (
    FakeQueue,
    modal_env,  # noqa: F401  (fixture)
)


@pytest.mark.parametrize(
    ("cls_name", "method"), [("StemSeparator", "separate"), ("MusicGen", "generate")]
)
def test_gpu_stages_are_routed_to_classes(modal_env, monkeypatch, cls_name, method):  # noqa: F811
    import modal

    table = modal_env.remote_stages()
    wanted = [fn for fn, remote in table.items() if remote.target == f"{cls_name}.{method}"]
    assert wanted, f"no stage is routed to {cls_name}.{method}"
    assert table[wanted[0]].gpu  # a GPU class: its stage is priced with its GPU
    asked: list[tuple] = []

    class Instance:
        def __getattr__(self, name):
            asked.append(("method", name))
            return f"{cls_name}().{name}"

    def cls_from_name(app_name, name, **kw):
        asked.append(("cls", app_name, name))
        return lambda: Instance()

    def fn_from_name(app_name, name, **kw):
        raise AssertionError(f"{name} looked up as a plain function")

    monkeypatch.setattr(modal.Cls, "from_name", staticmethod(cls_from_name))
    monkeypatch.setattr(modal.Function, "from_name", staticmethod(fn_from_name))
    remote = ModalExecutor("soundstage", table)._remote(wanted[0])
    assert remote == f"{cls_name}().{method}"
    assert asked == [("cls", "soundstage", cls_name), ("method", method)]
    # The app declares that class, with that method, as a Modal class.
    declared = getattr(modal_env, cls_name)
    assert isinstance(declared, modal.Cls)
    assert getattr(declared, method, None) is not None  # an UnboundMethod of the class


def _tone_wav(hz: float, seconds: float = 2.0, sr: int = 24000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def test_blend_stage_runs_locally(modal_env):  # noqa: F811
    out = modal_env.blend_stage.local(
        {"a_wav": _tone_wav(220), "b_wav": _tone_wav(330), "engine": "spectral", "weight": 0.5}
    )
    audio, sr = sf.read(io.BytesIO(out["wav"]))
    assert sr == 24000 and len(audio) == pytest.approx(2.0 * 24000, rel=0.05)
    assert "spectral" in out["engine"]
    # Both sources are in the blend.
    spectrum = np.abs(np.fft.rfft(audio))
    freqs = np.fft.rfftfreq(len(audio), 1 / sr)
    level = {hz: spectrum[np.abs(freqs - hz) < 5].max() for hz in (220, 330, 1000)}
    assert level[220] > 10 * level[1000] and level[330] > 10 * level[1000]


def test_video_reference_and_clip_run_locally(modal_env):  # noqa: F811
    ref = modal_env.generate_reference.local(
        {
            "ref_id": "r1",
            "kind": "scene",
            "prompt": "a neon street at night",
            "palette": ["#ff0080", "#00e0ff", "#101020"],
            "engine": "procedural",
            "width": 320,
            "height": 180,
        }
    )
    assert ref["png"][:8] == b"\x89PNG\r\n\x1a\n" and ref["engine"] == "procedural (local)"
    clip = modal_env.generate_clip.local(
        {
            "shot_id": "s1",
            "prompt": "a neon street at night",
            "camera_move": "push_in",
            "motion": "low",
            "engine": "procedural",
            "tempo_bpm": 120.0,
            "image_png": ref["png"],
        }
    )
    assert clip["ok"], clip["error"]
    assert clip["mp4"][4:8] == b"ftyp"  # an MP4 container


def test_stale_jobs_are_requeued_and_respawned(modal_env, services, monkeypatch):  # noqa: F811
    spawned: list[str] = []

    class RunJob:
        def spawn(self, job_id):
            spawned.append(job_id)

    monkeypatch.setattr(modal_env, "run_job", RunJob())
    user = services.auth.ensure_local_user()
    job, _ = submit_job(services, user, "test_sleep", {"seconds": 0}, [])
    job_id = str(job["id"])
    with services.db.service() as conn:
        # A container took it and died: processing, heartbeat long gone, one attempt left.
        conn.execute(
            "update jobs set status = 'processing', worker_id = 'dead', attempts = 1,"
            " heartbeat_at = now() - interval '1 hour' where id = %s and status = 'queued'",
            (job_id,),
        )
        took = conn.execute("select status from jobs where id = %s", (job_id,)).fetchone()
    if took["status"] != "processing":
        pytest.skip("a local worker finished the job before it could be made stale")
    out = modal_env.recover_stale_jobs.local()
    assert [job_id, "requeued"] in [list(x) for x in out]
    assert job_id in spawned


# -- remote progress ---------------------------------------------------------------------------------


class RemoteStandIn:
    """A Modal function's ``.remote`` / ``.map`` on the far side: arguments as they would
    arrive (no local callable can cross, only what the executor sent), the stage run on them."""

    def __init__(self, stage, seen: list) -> None:
        self.stage, self.seen = stage, seen

    def remote(self, kw: dict):
        self.seen.append(kw)
        return self.stage(**kw)

    def map(self, items: list):
        for kw in items:
            self.seen.append(kw)
            yield self.stage(**kw)


def _executor(monkeypatch, stage, seen, queues):
    import modal

    ex = ModalExecutor(
        "soundstage",
        {stage: modal_app_stage(stage.__name__)},
        queue_factory=lambda: queues.append(FakeQueue()) or queues[-1],
    )
    monkeypatch.setattr(
        modal.Function,
        "from_name",
        staticmethod(lambda app, name, **kw: RemoteStandIn(stage, seen)),
    )
    return ex


def modal_app_stage(name: str):
    from shared.executors import RemoteStage

    return RemoteStage(name, gpu="L4")


def _separating(audio: bytes, progress=None) -> dict:
    for f in (0.25, 0.5, 1.0):
        progress(f)
    return {"stems": len(audio)}


def test_remote_progress_reaches_the_stage(monkeypatch):
    seen: list = []
    queues: list = []
    ex = _executor(monkeypatch, _separating, seen, queues)
    reported: list = []
    out = ex.call(_separating, {"audio": b"abc", "progress": lambda f: reported.append(f)})
    assert out == {"stems": 3}
    # What crossed was a queue writer, not the local callable; its reports came back in order.
    assert isinstance(seen[0]["progress"], QueueProgress)
    assert reported == [0.25, 0.5, 1.0]
    assert queues and queues[0].closed  # the ephemeral queue lives for the call only


def test_remote_fan_out_reports_each_item_to_its_own_progress(monkeypatch):
    seen: list = []
    queues: list = []
    ex = _executor(monkeypatch, _separating, seen, queues)
    reported: dict = {0: [], 1: []}
    items = [
        {"audio": b"a", "progress": lambda f: reported[0].append(f)},
        {"audio": b"bb", "progress": lambda f: reported[1].append(f)},
    ]
    done = []
    assert ex.map(_separating, items, on_result=done.append) == [{"stems": 1}, {"stems": 2}]
    assert done == [{"stems": 1}, {"stems": 2}]
    assert reported == {0: [0.25, 0.5, 1.0], 1: [0.25, 0.5, 1.0]}
    assert len(queues) == 1  # one queue for the whole fan-out


def test_a_cancel_seen_in_remote_progress_ends_the_call(monkeypatch):
    ex = _executor(monkeypatch, _separating, [], [])

    def progress(f):
        raise JobCanceled("Canceled by the user.")

    with pytest.raises(JobCanceled):
        ex.call(_separating, {"audio": b"abc", "progress": progress})


def test_stages_without_progress_need_no_queue(monkeypatch):
    queues: list = []
    ex = _executor(monkeypatch, _separating, [], queues)
    with pytest.raises(TypeError):  # the stand-in stage insists on progress; none was sent
        ex.call(_separating, {"audio": b"abc"})
    assert queues == []


# -- where compute ran, priced ---------------------------------------------------------------------


def test_compute_is_priced_where_the_executor_ran_it(modal_env):  # noqa: F811
    from functions.pipelines.stems import stems_stage

    table = modal_env.remote_stages()
    on_modal = ModalExecutor("soundstage", table)
    gpu = on_modal.placement(stems_stage)
    assert (gpu.provider, gpu.gpu) == ("modal", modal_env.STEMS_GPU)
    inline = on_modal.placement("mixing", cores=2.0, memory_gib=4.0)
    assert (inline.provider, inline.gpu, inline.cores) == ("modal", None, 2.0)
    assert prices.compute_usd(gpu, 60.0) > prices.compute_usd(inline, 60.0) > 0
    here = LocalExecutor().placement(stems_stage)
    assert here.provider == "local" and prices.compute_usd(here, 60.0) == 0.0


# -- GPU classes hold their model ------------------------------------------------------------------


def _raw(modal_cls, name: str):
    """A Modal class method's own Python function (what runs in the container)."""
    return vars(modal_cls._get_user_cls())[name]._get_raw_f()


def test_musicgen_class_loads_at_enter_and_hands_its_model_to_the_stage(
    modal_env,  # noqa: F811
    monkeypatch,
):
    from functions.music import musicgen
    from tests.functions.musicgen_standin import StandInMusicGen

    StandInMusicGen.loaded.clear()
    musicgen.load_engine.cache_clear()
    monkeypatch.setattr(musicgen, "_import_musicgen", lambda: StandInMusicGen)
    container = modal_env.MusicGen._get_user_cls().__new__(modal_env.MusicGen._get_user_cls())
    _raw(modal_env.MusicGen, "load")(container)
    assert StandInMusicGen.loaded == ["facebook/musicgen-small"]
    generate = _raw(modal_env.MusicGen, "generate")
    for _ in range(2):
        out = generate(container, {"prompt": "lo-fi", "duration_s": 2.0, "model": "small"})
        assert out["model"] == "facebook/musicgen-small"
    assert StandInMusicGen.loaded == ["facebook/musicgen-small"]  # loaded once, at enter
    assert musicgen.load_engine.cache_info().currsize == 0  # no module-global model


def test_any_kind_stops_at_its_budget_once_priced_compute_passes_it(services):
    from shared.job_context import DbJobContext

    user = services.auth.ensure_local_user()
    job, _ = submit_job(services, user, "test_sleep", {"seconds": 0}, [])
    ctx = DbJobContext(
        services,
        job,
        services.kinds.get("test_sleep"),
        "test-worker",
        ModalExecutor("soundstage", {}),
    )
    try:
        assert ctx.budget_usd == services.settings.job_budget_usd
        assert ctx.call(lambda: "ran") == "ran"
        # A day of 16 cores inline in run_job's container: Modal's price, past the budget.
        usd = ctx.compute_cost("mixing", 24 * 3600.0, cores=16.0, memory_gib=64.0)
        assert usd > ctx.budget_usd
        with pytest.raises(BudgetExceeded) as err:
            ctx.call(lambda: "never")
        assert err.value.code == "BUDGET_EXCEEDED"
        with pytest.raises(BudgetExceeded):
            ctx.map(lambda: "never", [{}])
        with services.db.service() as conn:
            row = conn.execute(
                "select provider, unit, cost_usd from job_costs where job_id = %s", (job["id"],)
            ).fetchone()
        assert (row["provider"], row["unit"]) == ("modal", "wall_seconds")
        assert float(row["cost_usd"]) == pytest.approx(usd, rel=1e-4)
    finally:
        ctx.cleanup()
        services.jobs.cancel(user.id, str(job["id"]))


def test_stem_separator_loads_at_enter_and_hands_its_separator_to_the_stage(
    modal_env,  # noqa: F811
    monkeypatch,
):
    from functions import demucs_engine, stems
    from functions.stems_dsp import DspSeparator

    loaded: list[str] = []

    class StandInDemucs:  # no weights here: a DSP separator plays the loaded model
        def __init__(self, model_name: str, weights_dir=None) -> None:
            self.model_name, self.weights_dir = model_name, weights_dir

        def load(self) -> DspSeparator:
            loaded.append(self.model_name)
            return DspSeparator()

    monkeypatch.setattr(demucs_engine, "DemucsSeparator", StandInDemucs)
    before = dict(stems._SEPARATORS)
    user_cls = modal_env.StemSeparator._get_user_cls()
    container = user_cls.__new__(user_cls)
    _raw(modal_env.StemSeparator, "load")(container)
    assert loaded == ["htdemucs"]
    separate = _raw(modal_env.StemSeparator, "separate")
    for _ in range(2):
        out = separate(container, {"audio": _tone_wav(220), "filename": "tone.wav"})
        assert out["engine"] == "dsp" and set(out["stems"]) == {"vocals", "drums", "bass", "other"}
    assert loaded == ["htdemucs"]  # loaded once, at enter
    assert stems._SEPARATORS == before  # the held separator did the work, no module-global one


def test_the_analyzer_loads_beat_this_at_enter_and_hands_it_to_every_call(
    modal_env,  # noqa: F811
    monkeypatch,
    tmp_path,
    song_wav,
):
    pytest.importorskip("beat_this.model.beat_tracker")
    from functions import beat_this_engine
    from functions.pipelines import analyze
    from shared.config import reset_settings
    from tests.functions.test_beat_this import save_tiny_checkpoint
    from tests.test_modal_app import container_of

    save_tiny_checkpoint(tmp_path / "models")
    monkeypatch.setenv("SOUNDSTAGE_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("SOUNDSTAGE_BEAT_ENGINE", "beat_this")
    reset_settings()
    analyze._load_tracker.cache_clear()
    loads: list[str] = []
    real = beat_this_engine.BeatThisTracker.from_checkpoint
    monkeypatch.setattr(
        beat_this_engine.BeatThisTracker,
        "from_checkpoint",
        staticmethod(lambda path: loads.append(str(path)) or real(path)),
    )
    try:
        container, methods = container_of(modal_env.Analyzer)
        assert len(loads) == 1  # at enter, before any call
        song = song_wav.read_bytes()
        for _ in range(2):
            result = methods["analyze"](container, {"audio_bytes": song, "filename": "song.wav"})
            assert result["engine"] == "beat-this" and result["beats_s"]
        assert len(loads) == 1

        # Required but missing: the container still starts, and each call says why it cannot run.
        monkeypatch.setenv("SOUNDSTAGE_MODEL_DIR", str(tmp_path / "empty"))
        reset_settings()
        container, methods = container_of(modal_env.Analyzer)
        with pytest.raises(StageFailed) as failed:
            methods["analyze"](container, {"audio_bytes": song, "filename": "song.wav"})
        assert failed.value.code == "ENGINE_UNAVAILABLE"
    finally:
        analyze._load_tracker.cache_clear()
        reset_settings()
