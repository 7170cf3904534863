"""Soundstage on Modal: images, volumes and secrets, the stage functions, run_job, the API, the
schedules. Modal wiring only; the work lives in functions/ and shared/.

Deploy with ``modal deploy modal_app.py`` (README: secrets and variables). This module imports
without Modal credentials, and its functions can be called in-process with ``.local()``.
"""

from __future__ import annotations

import os

import modal

MINUTES = 60
HOURS = 60 * MINUTES
APP_NAME = "soundstage"

app = modal.App(APP_NAME)

# -- Images ---------------------------------------------------------------------------------------
# The CPU image runs the API, run_job and the CPU stages (analysis, convert, mix, master, video
# composition). Versions are pinned so a redeploy builds the same containers.
cpu_base = (
    modal.Image.debian_slim(python_version="3.11")
    .apt_install("ffmpeg", "libsndfile1")
    .pip_install(
        "fastapi==0.165.0",
        "uvicorn[standard]==0.54.0",
        "python-multipart==0.0.34",
        "pydantic==2.14.3",
        "pydantic-settings==2.16.3",
        "psycopg[binary]==3.3.9",
        "psycopg_pool==3.3.3",
        "supabase==2.34.1",
        "PyJWT[crypto]==2.15.1",
        "bcrypt==5.0.0",
        "tenacity==9.2.1",
        "httpx==0.28.1",
        "numpy==2.4.6",
        "scipy==1.17.1",
        "soundfile==0.14.0",
        "librosa==0.11.0",
        "pyloudnorm==0.2.0",
        "pedalboard==0.9.26",
        "imageio-ffmpeg==0.8.1",
        "ffmpeg-python==0.2.0",
        "mido==1.3.3",
        "Pillow==13.0.0",
        "openai==3.54.0",
        "replicate==1.0.7",
        "rich==15.0.0",
        "pgserver==0.1.4",
    )
    .env(
        {
            "SOUNDSTAGE_RUNNER": "modal",
            "SOUNDSTAGE_STORAGE_BACKEND": "supabase",
            "SOUNDSTAGE_AUTH_BACKEND": "supabase",
            "SOUNDSTAGE_PROFILE": "production",
            # Modal's proxy sets X-Forwarded-For: per-address limits key on the real client.
            "SOUNDSTAGE_TRUST_FORWARDED_FOR": "true",
            "SOUNDSTAGE_DATA_DIR": "/tmp/soundstage",
            # Stages routed to GPU classes run Demucs there (see StemSeparator).
            "SOUNDSTAGE_STEMS_ENGINE": "demucs",
        }
    )
)


def with_app_source(image: modal.Image) -> modal.Image:
    """Our code and migrations, mounted at container start. Modal requires these to be the last
    steps of an image, so every image is built first and gets its source here."""
    return image.add_local_python_source("shared", "functions", "web").add_local_dir(
        "supabase", remote_path="/root/supabase"
    )


# The API also serves the web client: its built files (web/client/dist, made by `make deploy`
# before deploying) are mounted last, like the source.
WEB_CLIENT_DIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web", "client", "dist")
cpu_image = with_app_source(cpu_base.env({"SOUNDSTAGE_WEB_CLIENT_DIR": "/root/web_client"}))
if os.path.isdir(WEB_CLIENT_DIST):
    cpu_image = cpu_image.add_local_dir(WEB_CLIENT_DIST, remote_path="/root/web_client")

# Demucs on the GPU: torch with CUDA, demucs 4.1 (reads audio without torchaudio).
# Stems must come from Demucs here: a missing weights volume is an error, not a silent fallback.
torch_base = cpu_base.pip_install("torch==2.5.1", "demucs==4.1.0").env(
    {
        "SOUNDSTAGE_MODEL_DIR": "/models",
        "TORCH_HOME": "/models/torch",
        "SOUNDSTAGE_STEMS_ENGINE": "demucs",
    }
)
stems_image = with_app_source(torch_base)
STEMS_GPU = os.environ.get("SOUNDSTAGE_STEMS_GPU", "L4")  # L4 or A10G suit htdemucs

# MusicGen through audiocraft 1.3, which pins torch 2.1 and numpy < 2 and imports torchaudio,
# xformers and spacy at import time: it gets an image of its own, and only
# functions/music/musicgen.py imports it (lazily).
musicgen_image = (
    modal.Image.debian_slim(python_version="3.11")
    .apt_install("ffmpeg", "libsndfile1", "git")
    .pip_install(
        "torch==2.1.0",
        "torchaudio==2.1.0",
        "xformers==0.0.22.post7",
        "numpy==1.26.4",
        "audiocraft==1.3.0",
        "transformers==4.44.2",
        "huggingface_hub==0.24.6",
        "soundfile==0.12.1",
        "pydantic==2.14.3",
        "pydantic-settings==2.16.3",
    )
    .env({"SOUNDSTAGE_MODEL_DIR": "/models", "HF_HOME": "/models/hf"})
    .add_local_python_source("shared", "functions")  # last: mounted at container start
)
MUSICGEN_GPU = os.environ.get("SOUNDSTAGE_MUSICGEN_GPU", "L4")  # 24 GB: small, medium, melody

# EnCodec 24 kHz through transformers' EncodecModel (the `encodec` package imports torchaudio).
blend_image = with_app_source(
    torch_base.pip_install("transformers==5.23.0").env({"SOUNDSTAGE_BLEND_ENGINE": "encodec"})
)

# Beat This! (beats and downbeats) for the analysis stage: CPU torch is enough for a 3-minute
# track in seconds. beat_this' loader imports torchaudio, so it gets an image of its own with
# the matching torchaudio; its checkpoint lives in the models volume.
beat_this_image = with_app_source(
    cpu_base.pip_install(
        "torch==2.5.1",
        "torchaudio==2.5.1",
        "einops==0.8.2",
        "rotary-embedding-torch==0.9.1",
        "soxr==1.0.0",
        "beat-this==1.1.0",
    ).env({"SOUNDSTAGE_MODEL_DIR": "/models", "SOUNDSTAGE_BEAT_ENGINE": "beat_this"})
)

# -- Volumes and secrets --------------------------------------------------------------------------
models = modal.Volume.from_name("soundstage-models", create_if_missing=True)
secrets = [modal.Secret.from_name("soundstage")]

# -- The job runner -------------------------------------------------------------------------------
# Which stages run as Modal functions of their own (GPU images, fan-out with .map), with what
# each reserves (its price). Anything not listed runs inside run_job's container.
RUN_JOB_CPU = 4.0
RUN_JOB_MEMORY_MB = 4096


def remote_stages() -> dict:
    """The stage -> Modal function (or ``Class.method``) table the ModalExecutor routes by."""
    from functions.blend import blend_stage
    from functions.music.musicgen import musicgen_stage
    from functions.pipelines.analyze import audio_analysis
    from functions.pipelines.stems import stems_stage
    from functions.video.clips import generate_clip
    from functions.video.references import generate_reference
    from shared.executors import RemoteStage

    return {
        audio_analysis: RemoteStage("Analyzer.analyze", cores=2.0, memory_gib=4.0),
        stems_stage: RemoteStage("StemSeparator.separate", gpu=STEMS_GPU),
        musicgen_stage: RemoteStage("MusicGen.generate", gpu=MUSICGEN_GPU),
        blend_stage: RemoteStage("blend_stage", cores=4.0, memory_gib=4.0),
        generate_clip: RemoteStage("generate_clip", cores=1.0, memory_gib=1.0),
        generate_reference: RemoteStage("generate_reference", cores=1.0, memory_gib=1.0),
    }


# Composition of a music video runs here too: 4 cores keep a 3-minute song well inside the
# composer's 120 s timeout (bench/compose.py measured ~107 s on 2 cores).
@app.function(
    image=cpu_image,
    secrets=secrets,
    timeout=20 * MINUTES,
    cpu=RUN_JOB_CPU,
    memory=RUN_JOB_MEMORY_MB,
    retries=modal.Retries(max_retries=1, initial_delay=5.0),
)
def run_job(job_id: str) -> str:
    """Claim one job and run its pipeline; stage calls fan out to the functions below."""
    from functions.audio_tools import AUDIO_TOOLS
    from functions.pipelines import KINDS
    from shared.executors import ModalExecutor
    from shared.runner import run_job_by_id
    from shared.services import process_services

    services = process_services(KINDS, AUDIO_TOOLS)
    executor = ModalExecutor(services.settings.modal_app_name, remote_stages())
    return run_job_by_id(services, job_id, executor)


# -- CPU stages -----------------------------------------------------------------------------------


@app.cls(
    image=beat_this_image,
    volumes={"/models": models},
    timeout=5 * MINUTES,
    cpu=2.0,
    memory=4096,
    scaledown_window=2 * MINUTES,
)
class Analyzer:
    """Tempo, beats, key, sections, loudness of one track (bytes in, JSON out); beats and
    downbeats from Beat This!, loaded once per container from the models volume (see
    download_beat_this_checkpoint) and handed to each call; `.map` fans out per track."""

    @modal.enter()
    def load(self) -> None:
        from functions.pipelines.analyze import beat_tracker
        from shared.errors import StageFailed

        self.tracker, self.unavailable = None, None
        try:
            self.tracker = beat_tracker()
        except StageFailed as e:  # the job is told why, rather than the container failing
            self.unavailable = e

    @modal.method()
    def analyze(self, kw: dict) -> dict:
        from functions.pipelines.analyze import audio_analysis

        if self.unavailable is not None:
            raise self.unavailable
        return audio_analysis(**kw, tracker=self.tracker)


# -- GPU stages -----------------------------------------------------------------------------------


@app.cls(
    image=stems_image,
    gpu=STEMS_GPU,
    volumes={"/models": models},
    scaledown_window=5 * MINUTES,
    timeout=30 * MINUTES,
    max_containers=10,
)
class StemSeparator:
    """Demucs, loaded once per container from the weights volume and handed to each call;
    `.map` fans out per track."""

    @modal.enter()
    def load(self) -> None:
        from shared.config import get_settings

        self.settings = get_settings()  # this container's: its weights folder is the Volume
        self.separators: dict = {}
        self.separator_for(self.settings.demucs_model)  # the default model, before any call

    def separator_for(self, model_name: str):
        from pathlib import Path

        from functions.demucs_engine import DemucsSeparator

        if model_name not in self.separators:
            weights_dir = Path(self.settings.weights_dir)
            self.separators[model_name] = DemucsSeparator(
                model_name, weights_dir=weights_dir
            ).load()
        return self.separators[model_name]

    @modal.method()
    def separate(self, kw: dict) -> dict:
        from functions.pipelines.stems import stems_stage

        s = self.settings
        model_name = kw.get("model_name") or s.demucs_model
        # This container's engine and weights folder, not the caller's.
        here = {"engine": s.stems_engine, "weights_dir": str(s.weights_dir)}
        return stems_stage(**{**kw, **here}, separator=self.separator_for(model_name))


@app.function(image=stems_image, volumes={"/models": models}, timeout=30 * MINUTES)
def download_demucs_weights() -> list[str]:
    """One-off: fill the weights volume (`modal run modal_app.py::download_demucs_weights`)."""
    from functions.demucs_engine import DEMUCS_MODELS
    from functions.demucs_engine import download_demucs_weights as download

    paths = download("/models", DEMUCS_MODELS)
    models.commit()
    return [str(p) for p in paths]


@app.function(image=beat_this_image, volumes={"/models": models}, timeout=10 * MINUTES)
def download_beat_this_checkpoint() -> str:
    """One-off: the Beat This! ``final0`` checkpoint into the weights volume."""
    from functions.beat_this_engine import download_beat_this_checkpoint as download

    path = download("/models")
    models.commit()
    return str(path)


@app.cls(
    image=musicgen_image,
    gpu=MUSICGEN_GPU,
    volumes={"/models": models},
    scaledown_window=5 * MINUTES,
    timeout=15 * MINUTES,
    max_containers=10,
)
class MusicGen:
    """MusicGen (small loaded first), held per container and handed to each call; beats and
    hum-to-beat call it."""

    @modal.enter()
    def load(self) -> None:
        from functions.music.musicgen import MODELS

        self.engines: dict = {}
        self.engine_for(MODELS["small"])

    def engine_for(self, checkpoint: str):
        from functions.music.musicgen import MusicGenEngine

        if checkpoint not in self.engines:
            self.engines[checkpoint] = MusicGenEngine(checkpoint).load()
        return self.engines[checkpoint]

    @modal.method()
    def generate(self, kw: dict) -> dict:
        from functions.music.musicgen import checkpoint_for, musicgen_stage

        checkpoint = checkpoint_for(
            kw.get("model", "small"), melody=kw.get("melody_wav") is not None
        )
        return musicgen_stage(**kw, engine=self.engine_for(checkpoint))


@app.function(image=musicgen_image, volumes={"/models": models}, timeout=60 * MINUTES)
def download_musicgen_weights() -> list[str]:
    """One-off: MusicGen small/medium/melody checkpoints and the T5 text encoder."""
    from functions.music.musicgen import download_weights

    paths = download_weights(["small", "medium", "melody"])
    models.commit()
    return [str(p) for p in paths]


@app.function(
    image=blend_image, volumes={"/models": models}, cpu=4.0, memory=4096, timeout=10 * MINUTES
)
def blend_stage(kw: dict) -> dict:
    """Two 24 kHz segments through EnCodec, blended in latent space (CPU is enough at 16 s)."""
    from functions.blend import blend_stage as run_blend
    from shared.config import get_settings

    # The weights are this container's (the Volume), not the caller's.
    return run_blend(**{**kw, "weights_dir": str(get_settings().weights_dir)})


@app.function(image=blend_image, volumes={"/models": models}, timeout=30 * MINUTES)
def download_encodec_weights() -> str:
    """One-off: facebook/encodec_24khz into the weights volume."""
    from functions.blend import download_encodec_weights as download

    path = download("/models/encodec_24khz")
    models.commit()
    return str(path)


# -- Music video fan-out ----------------------------------------------------------------------------
# Clips and reference images call Replicate; each function makes its own 3 attempts, so Modal
# retries are off (a retry would pay for predictions again). max_containers bounds the fan-out.


# The design's 5 clips at a time (SOUNDSTAGE_CLIP_CONCURRENCY, the setting the local pool reads).
CLIP_CONCURRENCY = int(os.environ.get("SOUNDSTAGE_CLIP_CONCURRENCY", "5"))


@app.function(
    image=cpu_image,
    secrets=secrets,
    timeout=8 * MINUTES,
    cpu=1.0,
    memory=1024,
    max_containers=CLIP_CONCURRENCY,
)
def generate_clip(kw: dict) -> bytes:
    """One shot: Stable Video Diffusion (or text-to-video) on Replicate -> mp4 bytes."""
    from functions.video.clips import generate_clip as generate

    return generate(**kw)


@app.function(
    image=cpu_image, secrets=secrets, timeout=3 * MINUTES, cpu=1.0, memory=1024, max_containers=8
)
def generate_reference(kw: dict) -> bytes:
    """One reference image: SDXL on Replicate -> PNG bytes."""
    from functions.video.references import generate_reference as generate

    return generate(**kw)


# -- The API --------------------------------------------------------------------------------------


@app.function(
    image=cpu_image,
    secrets=secrets,
    min_containers=0,
    scaledown_window=5 * MINUTES,
    timeout=10 * MINUTES,
)
@modal.concurrent(max_inputs=50)
@modal.asgi_app(label="soundstage-api")
def api():
    from web.app import create_app

    return create_app()


# -- Schedules ------------------------------------------------------------------------------------


@app.function(
    image=cpu_image, secrets=secrets, schedule=modal.Period(hours=1), timeout=15 * MINUTES
)
def sweep_storage() -> dict:
    """Retention: Supabase Storage has no lifecycle rules, so expire files hourly."""
    from functions.pipelines import KINDS
    from shared.retention import sweep
    from shared.services import process_services

    return sweep(process_services(KINDS))


@app.function(
    image=cpu_image, secrets=secrets, schedule=modal.Period(minutes=2), timeout=2 * MINUTES
)
def recover_stale_jobs() -> list:
    """Jobs whose container died stop heartbeating: requeue (and respawn) or fail them."""
    from functions.pipelines import KINDS
    from shared.services import process_services

    services = process_services(KINDS)
    s = services.settings
    out = services.jobs.recover_stale(s.stale_after_s, s.max_attempts)
    for job_id, what in out:
        if what == "requeued":
            run_job.spawn(job_id)
    return out
