"""Modal wiring the cloud would only show in production: GPU stages routed to classes (a model
loaded once per container) rather than to plain functions, and the stage functions that had no
``.local()`` run: blend, video reference, video clip, and the stale-job sweep's respawn.

Modal's cloud cannot be reached here; ``modal.Cls.from_name`` / ``modal.Function.from_name``
are replaced by recorders that check the names we ask for (Modal's documented lookups)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from shared.registry import REMOTE_STAGES
from shared.runner import ModalExecutor
from shared.submit import submit_job
from tests.test_modal_app import modal_env  # noqa: F401  (fixture)


def _stage(qualified: str):
    import importlib

    module, _, name = qualified.rpartition(".")
    while module:
        try:
            obj = importlib.import_module(module)
            break
        except ModuleNotFoundError:
            module, _, outer = module.rpartition(".")
            name = f"{outer}.{name}"
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(
    ("cls_name", "method"), [("StemSeparator", "separate"), ("MusicGen", "generate")]
)
def test_gpu_stages_are_routed_to_classes(modal_env, monkeypatch, cls_name, method):  # noqa: F811
    import modal

    wanted = [q for q, target in REMOTE_STAGES.items() if target == f"{cls_name}.{method}"]
    assert wanted, f"no stage is routed to {cls_name}.{method}"
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
    remote = ModalExecutor("soundstage")._remote(_stage(wanted[0]))
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
    ref = modal_env.video_reference.local(
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
    clip = modal_env.video_clip.local(
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
