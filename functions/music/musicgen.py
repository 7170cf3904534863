"""The MusicGen engine (audiocraft): prompts, long-form windows, melody conditioning, progress.

audiocraft pins torch 2.1 and imports torchaudio, xformers and spacy when it loads, so it only
exists in the Modal GPU image; this module imports it lazily inside :meth:`MusicGenEngine.load`
and nothing else in the project imports it. Everything on our side of the boundary is plain
Python and numpy and is tested against a stand-in honouring audiocraft's documented interface
(``MusicGen.get_pretrained``, ``set_generation_params``, ``set_custom_progress_callback``,
``generate``, ``generate_with_chroma``, ``generate_continuation``, ``sample_rate``).

Offers:
- ``build_prompt(genre, mood, bpm, key, user_prompt)``: the text description MusicGen reads.
- ``plan_windows(duration_s)``: MusicGen writes at most 30 s at once; longer tracks continue
  from the last ``CONTEXT_S`` of audio in further windows (:class:`Window`).
- ``MusicGenEngine(model_name).load()`` then ``.generate(prompt, duration_s, melody=...,
  progress=...)`` -> ``Audio`` (mono, the model's 32 kHz), exactly ``duration_s`` long.
- ``musicgen_stage(request)``: the stage function (bytes in, bytes out) the pipelines call via
  ``ctx.call``, with the loaded engine passed in where the caller holds one (``load_engine``
  caches one engine per model per process otherwise).
- ``download_weights(model_names, cache_dir)``: fetch checkpoints into a Modal Volume once.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from functions.audio_io import Audio
from functions.genres import Genre
from functions.music.theory import Key
from shared.errors import StageFailed

MODELS = {
    "small": "facebook/musicgen-small",
    "medium": "facebook/musicgen-medium",
    "melody": "facebook/musicgen-melody",
}
MAX_WINDOW_S = 30.0  # MusicGen's training segment length: the most it writes in one pass
CONTEXT_S = 10.0  # audio carried into each continuation window so the music stays coherent
CROSSFADE_S = 0.05  # joins the re-decoded context to the audio already kept
# The T5 text encoder every MusicGen checkpoint conditions on (downloaded with the weights).
TEXT_ENCODER = "t5-base"


def build_prompt(genre: Genre, mood: str, bpm: float, key: Key, user_prompt: str = "") -> str:
    """A MusicGen description: mood, genre, its characteristics and instruments, tempo, key,
    then the user's own words (MusicGen was trained on captions of this shape)."""
    parts = [
        f"{mood} {genre.name} instrumental beat",
        ", ".join(genre.characteristics[:3]),
        ", ".join(genre.instruments),
        f"{round(bpm)} bpm",
        f"in {key.name}",
    ]
    words = " ".join(user_prompt.split())
    if words:
        parts.append(words)
    return ", ".join(parts)


@dataclass(frozen=True)
class Window:
    """One MusicGen pass: ``context_s`` of earlier audio as its prompt, then ``new_s`` of new
    audio that lands at ``start_s`` in the track."""

    start_s: float
    new_s: float
    context_s: float

    @property
    def total_s(self) -> float:
        return self.context_s + self.new_s


def plan_windows(
    duration_s: float, max_window_s: float = MAX_WINDOW_S, context_s: float = CONTEXT_S
) -> list[Window]:
    """Cover ``duration_s``: a first window of up to ``max_window_s``, then continuations."""
    first = min(duration_s, max_window_s)
    windows = [Window(0.0, first, 0.0)]
    t = first
    while t < duration_s - 1e-6:
        new = min(max_window_s - context_s, duration_s - t)
        windows.append(Window(t, new, context_s))
        t += new
    return windows


def _import_musicgen() -> Any:
    try:
        from audiocraft.models import MusicGen  # only in the Modal GPU image
    except ImportError as e:  # pragma: no cover - depends on the image
        raise StageFailed(
            "The MusicGen engine is not installed here (audiocraft lives in the GPU image); "
            "use the procedural engine locally.",
            code="ENGINE_UNAVAILABLE",
            retryable=False,
        ) from e
    return MusicGen


def _to_numpy(wav: Any) -> np.ndarray:
    """A model output (torch tensor or array, ``[B, C, T]``) as float32 numpy."""
    if hasattr(wav, "detach"):
        wav = wav.detach().float().cpu().numpy()
    return np.asarray(wav, dtype=np.float32)


def _to_tensor(samples: np.ndarray) -> Any:
    import torch  # present wherever a MusicGen model is

    return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))


class MusicGenEngine:
    """A loaded MusicGen checkpoint with our generation policy around it.

    ``musicgen_cls`` replaces ``audiocraft.models.MusicGen`` (tests pass a stand-in).
    """

    def __init__(
        self, model_name: str = MODELS["small"], device: str | None = None, musicgen_cls: Any = None
    ) -> None:
        self.model_name = MODELS.get(model_name, model_name)
        self.device = device
        self._musicgen_cls = musicgen_cls
        self.model: Any = None

    def load(self) -> MusicGenEngine:
        """Load the checkpoint (from the local Hugging Face cache / Modal Volume)."""
        if self.model is None:
            cls = self._musicgen_cls or _import_musicgen()
            self.model = cls.get_pretrained(self.model_name, device=self.device)
        return self

    @property
    def sample_rate(self) -> int:
        return int(self.load().model.sample_rate)

    def generate(
        self,
        prompt: str,
        duration_s: float,
        *,
        seed: int | None = None,
        melody: Audio | None = None,
        progress: Callable[[float], None] | None = None,
        top_k: int = 250,
        temperature: float = 1.0,
        cfg_coef: float = 3.0,
    ) -> Audio:
        """Generate ``duration_s`` of mono audio at the model's rate for ``prompt``.

        ``melody`` conditions the first window on its chromagram (``generate_with_chroma``,
        the melody checkpoint only); later windows continue from the last ``CONTEXT_S``.
        ``progress`` receives 0..1 over the whole track, never going backwards.
        """
        model = self.load().model
        sr = int(model.sample_rate)
        if seed is not None:
            import torch

            torch.manual_seed(int(seed))
        windows = plan_windows(duration_s)
        done = [0.0]

        def report(w: Window) -> Callable[[int, int], None]:
            def callback(generated: int, to_generate: int) -> None:
                frac = min(1.0, max(0.0, generated / max(1, to_generate)))
                overall = (w.start_s + frac * w.new_s) / duration_s
                if progress and overall > done[0]:
                    done[0] = overall
                    progress(overall)

            return callback

        track = np.zeros(0, dtype=np.float32)
        fade = int(CROSSFADE_S * sr)
        for i, w in enumerate(windows):
            model.set_generation_params(
                duration=w.total_s,
                use_sampling=True,
                top_k=top_k,
                temperature=temperature,
                cfg_coef=cfg_coef,
            )
            model.set_custom_progress_callback(report(w))
            if i == 0 and melody is not None:
                tune = melody.mono()[: int(MAX_WINDOW_S * melody.sample_rate)]
                wav = model.generate_with_chroma(
                    [prompt], _to_tensor(tune[None, None, :]), melody.sample_rate, progress=True
                )
            elif i == 0:
                wav = model.generate([prompt], progress=True)
            else:
                context = track[-int(w.context_s * sr) :]
                wav = model.generate_continuation(
                    _to_tensor(context[None, None, :]), sr, [prompt], progress=True
                )
            out = _to_numpy(wav)[0].mean(axis=0)  # [B, C, T] -> mono of the first sample
            if not np.all(np.isfinite(out)):
                raise StageFailed("MusicGen produced invalid samples.", code="ENGINE_FAILED")
            if i == 0:
                track = out[: int(round(w.new_s * sr))]
                continue
            # The continuation re-decodes its context before the new audio: keep ours, and
            # crossfade into theirs just before the join so the codec's seam is inaudible.
            ctx_n = len(context)
            new = out[ctx_n : ctx_n + int(round(w.new_s * sr))]
            if fade and len(track) >= fade and ctx_n >= fade:
                ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
                track[-fade:] = track[-fade:] * (1 - ramp) + out[ctx_n - fade : ctx_n] * ramp
            track = np.concatenate([track, new])
        n = int(round(duration_s * sr))
        track = np.pad(track, (0, max(0, n - len(track))))[:n]
        if progress:
            progress(1.0)
        return Audio(track[None, :].astype(np.float32), sr)


@functools.cache
def load_engine(model_name: str) -> MusicGenEngine:
    """One loaded engine per checkpoint per process, for callers that hold none of their own."""
    return MusicGenEngine(model_name).load()


def _wav_bytes(audio: Audio) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio.samples.T, audio.sample_rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def _read_wav(data: bytes) -> Audio:
    samples, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return Audio(np.ascontiguousarray(samples.T), int(sr))


def checkpoint_for(model: str, *, melody: bool = False) -> str:
    """The checkpoint a request runs: the melody model for melody conditioning, else ``model``
    (``small``/``medium`` or a checkpoint name)."""
    return MODELS["melody"] if melody else MODELS.get(model, model)


def musicgen_stage(
    prompt: str,
    duration_s: float,
    model: str = "small",
    seed: int | None = None,
    melody_wav: bytes | None = None,
    progress: Callable[[float], None] | None = None,
    engine: MusicGenEngine | None = None,
) -> dict:
    """Generate with MusicGen; returns ``{"wav": float WAV bytes, "sample_rate", "model",
    "windows", "gpu_s"}``. ``melody_wav`` (WAV bytes) selects melody conditioning.

    ``engine``: a loaded engine the caller holds (a GPU container keeps one per checkpoint);
    without it one is loaded once per process. ``progress`` gets the fraction done.
    """
    started = time.monotonic()
    eng = engine or load_engine(checkpoint_for(model, melody=melody_wav is not None))
    melody = _read_wav(melody_wav) if melody_wav is not None else None
    audio = eng.generate(prompt, duration_s, seed=seed, melody=melody, progress=progress)
    return {
        "wav": _wav_bytes(audio),
        "sample_rate": audio.sample_rate,
        "model": eng.model_name,
        "windows": len(plan_windows(duration_s)),
        "gpu_s": round(time.monotonic() - started, 3),
    }


def decode_stage_audio(result: dict) -> Audio:
    """The ``Audio`` inside a ``musicgen_stage`` result."""
    return _read_wav(result["wav"])


def download_weights(
    model_names: list[str] | None = None, cache_dir: str | None = None
) -> list[str]:
    """Download the MusicGen checkpoints audiocraft loads (and the T5 text encoder) into the
    Hugging Face cache at ``cache_dir`` (a Modal Volume), so containers never download."""
    from huggingface_hub import snapshot_download

    names = [MODELS.get(m, m) for m in (model_names or ["small", "medium", "melody"])]
    paths = []
    for name in names:
        paths.append(
            snapshot_download(
                name,
                cache_dir=cache_dir,
                allow_patterns=["*.json", "state_dict.bin", "compression_state_dict.bin"],
            )
        )
    paths.append(
        snapshot_download(
            TEXT_ENCODER, cache_dir=cache_dir, allow_patterns=["*.json", "*.model", "*.safetensors"]
        )
    )
    return paths
