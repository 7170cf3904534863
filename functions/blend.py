"""Blend two tracks through a neural codec's latent space (EnCodec 24 kHz at 6 kbps).

Both segments (24 kHz mono) are encoded to EnCodec codes at 6 kbps (8 residual codebooks, 75
frames a second), the codes are turned back into the codec's 128-dim latent vectors, the two
latent sequences are mixed frame by frame (a fixed ``weight`` of track B, or a crossfade from A
to B over the segment), and the codec's decoder renders the mix. A trained transformer
checkpoint (:class:`LatentCascade`, a cascade of transformer stages over the 128-dim latents)
refines the mixed latents when one is configured. Without codec weights the same blend is done
as a spectral-envelope morph (:func:`spectral_morph`), reported as ``engine: "spectral"``.

Why transformers' ``EncodecModel`` and not the ``encodec`` package: they are the same codec
(architecture and the ``facebook/encodec_24khz`` weights), but ``encodec`` imports torchaudio
at import time, a heavy second torch-family dependency to pin, while transformers is already
in the ``ml`` extra and loads the model with ``local_files_only`` from a Volume or cache.

Offers ``blend_stage`` (the stage function: WAV bytes in, WAV bytes out), ``EncodecBlender``,
``mix_latents``, ``LatentCascade`` / ``load_cascade``, ``spectral_morph``, ``weight_curve``,
``find_encodec_weights`` and ``download_encodec_weights``.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from shared.errors import InvalidInput

SAMPLE_RATE = 24000
BANDWIDTH_KBPS = 6.0
ENCODEC_REPO = "facebook/encodec_24khz"
ENCODEC_DIR = "encodec_24khz"  # under the weights folder (a Modal Volume in production)
BlendMode = Literal["weight", "crossfade"]


def weight_curve(n_frames: int, mode: BlendMode, weight: float) -> np.ndarray:
    """Share of track B per frame: constant ``weight``, or 0 -> 1 across the segment."""
    if mode == "crossfade":
        return np.linspace(0.0, 1.0, n_frames, dtype=np.float32)
    return np.full(n_frames, float(weight), dtype=np.float32)


def mix_latents(latents_a, latents_b, mode: BlendMode = "weight", weight: float = 0.5):
    """Frame-wise mix of two ``(batch, dim, frames)`` latent tensors by :func:`weight_curve`."""
    import torch

    frames = latents_a.shape[-1]
    w = torch.from_numpy(weight_curve(frames, mode, weight)).to(latents_a.dtype)[None, None, :]
    return (1.0 - w) * latents_a + w * latents_b


# -- the trained refinement: a cascade of transformer stages over the latents ---------------------


def _build_cascade_class():
    import torch
    from torch import nn

    class LatentCascade(nn.Module):
        """Refines a blended latent sequence given both sources.

        Input projection of the two tracks' latents (2 x ``latent_dim``) to ``latent_dim``, then
        ``num_stages`` transformer encoders; each stage predicts a residual correction to the
        blend, so an untrained (zero-head) cascade leaves the plain blend untouched.
        """

        def __init__(
            self,
            latent_dim: int = 128,
            num_stages: int = 2,
            num_heads: int = 8,
            layers_per_stage: int = 4,
            ff_dim: int = 512,
        ) -> None:
            super().__init__()
            self.config = {
                "latent_dim": latent_dim,
                "num_stages": num_stages,
                "num_heads": num_heads,
                "layers_per_stage": layers_per_stage,
                "ff_dim": ff_dim,
            }
            self.inputs = nn.Linear(2 * latent_dim, latent_dim)
            self.stages = nn.ModuleList(
                nn.TransformerEncoder(
                    nn.TransformerEncoderLayer(latent_dim, num_heads, ff_dim, batch_first=True),
                    layers_per_stage,
                    enable_nested_tensor=False,
                )
                for _ in range(num_stages)
            )
            self.heads = nn.ModuleList(nn.Linear(latent_dim, latent_dim) for _ in range(num_stages))

        def forward(
            self, latents_a: torch.Tensor, latents_b: torch.Tensor, blended: torch.Tensor
        ) -> torch.Tensor:
            """``(batch, latent_dim, frames)`` each -> refined ``(batch, latent_dim, frames)``."""
            x = self.inputs(torch.cat([latents_a, latents_b], dim=1).transpose(1, 2))
            y = blended.transpose(1, 2)
            for stage, head in zip(self.stages, self.heads, strict=True):
                x = stage(x + y)
                y = y + head(x)
            return y.transpose(1, 2)

    return LatentCascade


@functools.cache
def cascade_class():
    """The :class:`LatentCascade` module class (built on first use: torch loads lazily)."""
    return _build_cascade_class()


def save_cascade(model, path: str | Path) -> Path:
    import torch

    torch.save({"config": model.config, "state_dict": model.state_dict()}, str(path))
    return Path(path)


def load_cascade(path: str | Path):
    """Load a checkpoint written by :func:`save_cascade` (weights only, no pickled code)."""
    import torch

    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    model = cascade_class()(**ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


# -- the codec ------------------------------------------------------------------------------------


class EncodecBlender:
    """EnCodec encode -> latent blend (-> cascade) -> decode, on 24 kHz mono float arrays."""

    def __init__(self, model, cascade=None, bandwidth_kbps: float = BANDWIDTH_KBPS) -> None:
        self.model = model.eval()
        self.cascade = cascade
        self.bandwidth_kbps = bandwidth_kbps

    @property
    def engine(self) -> str:
        return "encodec+cascade" if self.cascade is not None else "encodec"

    def latents(self, samples: np.ndarray):
        """Codes at the target bandwidth, dequantised to latents ``(1, latent_dim, frames)``."""
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None, None, :]
            encoded = self.model.encode(x, bandwidth=self.bandwidth_kbps, return_dict=True)
            codes = encoded.audio_codes[0]  # (batch, codebooks, frames): one chunk at 24 kHz
            return self.model.quantizer.decode(codes.transpose(0, 1))

    def decode(self, latents, n_samples: int) -> np.ndarray:
        import torch

        with torch.no_grad():
            audio = self.model.decoder(latents)[0, 0]
        out = audio.float().cpu().numpy()[:n_samples]
        return np.pad(out, (0, max(0, n_samples - len(out)))).astype(np.float32)

    def blend(
        self, a: np.ndarray, b: np.ndarray, mode: BlendMode = "weight", weight: float = 0.5
    ) -> np.ndarray:
        import torch

        n = min(len(a), len(b))
        la, lb = self.latents(a[:n]), self.latents(b[:n])
        frames = min(la.shape[-1], lb.shape[-1])
        la, lb = la[..., :frames], lb[..., :frames]
        mixed = mix_latents(la, lb, mode, weight)
        if self.cascade is not None:
            with torch.no_grad():
                mixed = self.cascade(la, lb, mixed)
        return self.decode(mixed, n)


def find_encodec_weights(weights_dir: str | Path | None = None) -> str | None:
    """Where EnCodec 24 kHz weights are: ``weights_dir/encodec_24khz``, else the Hugging Face
    cache; None when neither has them."""
    if weights_dir:
        local = Path(weights_dir) / ENCODEC_DIR
        if (local / "config.json").is_file():
            return str(local)
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(ENCODEC_REPO, "config.json")
    except Exception:  # noqa: BLE001 - no hub library or cache: no weights
        return None
    return str(Path(hit).parent) if isinstance(hit, str) else None


@functools.lru_cache(maxsize=2)
def _load_codec(path: str, mtime: float):
    from transformers import EncodecModel

    return EncodecModel.from_pretrained(path, local_files_only=True).eval()


def load_blender(
    checkpoint: str = "", weights_dir: str | Path | None = None
) -> EncodecBlender | None:
    """An :class:`EncodecBlender` when codec weights exist here, else None. A relative
    ``checkpoint`` (the trained cascade) is found in ``weights_dir``."""
    path = find_encodec_weights(weights_dir)
    if path is None:
        return None
    model = _load_codec(path, (Path(path) / "config.json").stat().st_mtime)
    cascade = None
    if checkpoint:
        ckpt = Path(checkpoint)
        if not ckpt.is_absolute() and weights_dir:
            ckpt = Path(weights_dir) / ckpt
        if not ckpt.is_file():
            raise InvalidInput(
                f"The blend checkpoint '{checkpoint}' does not exist.",
                code="MISSING_CHECKPOINT",
                status=500,
            )
        cascade = load_cascade(ckpt)
    return EncodecBlender(model, cascade)


def download_encodec_weights(target_dir: str | Path) -> Path:
    """Save ``facebook/encodec_24khz`` into ``target_dir`` (run once on the Modal Volume, with
    ``<weights folder>/encodec_24khz``)."""
    from transformers import EncodecModel

    target = Path(target_dir)
    EncodecModel.from_pretrained(ENCODEC_REPO).save_pretrained(target)
    return target


# -- the fallback: spectral-envelope morph ----------------------------------------------------------


def _envelope(log_mag: np.ndarray, lifter: int = 40) -> np.ndarray:
    """Cepstrally smoothed log-magnitude spectra: the spectral envelope of each frame."""
    cep = np.fft.irfft(log_mag, axis=0)
    cep[lifter:-lifter] = 0.0
    return np.fft.rfft(cep, axis=0).real[: log_mag.shape[0]]


def spectral_morph(
    a: np.ndarray,
    b: np.ndarray,
    sr: int,
    mode: BlendMode = "weight",
    weight: float = 0.5,
    n_fft: int = 1024,
) -> np.ndarray:
    """Morph A into B: envelopes interpolated in the log domain (timbre), the whitened fine
    structure mixed linearly (both tracks' partials survive), phase from the complex mix.
    With a weight of 0 the result is A and with 1 it is B (up to the STFT round trip)."""
    from scipy.signal import istft, stft

    n = min(len(a), len(b))
    hop = n_fft // 4
    _, _, sa = stft(a[:n], sr, nperseg=n_fft, noverlap=n_fft - hop)
    _, _, sb = stft(b[:n], sr, nperseg=n_fft, noverlap=n_fft - hop)
    w = weight_curve(sa.shape[1], mode, weight)[None, :]
    log_a, log_b = np.log(np.abs(sa) + 1e-7), np.log(np.abs(sb) + 1e-7)
    env_a, env_b = _envelope(log_a), _envelope(log_b)
    fine = (1 - w) * np.exp(log_a - env_a) + w * np.exp(log_b - env_b)
    magnitude = fine * np.exp((1 - w) * env_a + w * env_b)
    phase = np.angle((1 - w) * sa + w * sb)
    _, out = istft(magnitude * np.exp(1j * phase), sr, nperseg=n_fft, noverlap=n_fft - hop)
    out = out[:n]
    return np.pad(out, (0, n - len(out))).astype(np.float32)


# -- the stage --------------------------------------------------------------------------------------


def _read(data: bytes) -> np.ndarray:
    samples, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ValueError(f"blend inputs must be {SAMPLE_RATE} Hz, got {sr}")
    return samples.mean(axis=1)


def blend_stage(
    a_wav: bytes,
    b_wav: bytes,
    mode: BlendMode = "weight",
    weight: float = 0.5,
    engine: str = "auto",
    checkpoint: str = "",
    weights_dir: str | None = None,
) -> dict:
    """Blend two 24 kHz mono WAVs; returns ``{"wav": 16-bit PCM WAV bytes, "engine"}``.

    ``engine``: ``encodec`` (fails without weights), ``spectral``, or ``auto`` (EnCodec where
    its weights are, else the spectral morph). ``weights_dir`` is the folder of model weights
    on the machine that runs it. The output peaks at most at -1 dBFS.
    """
    a, b = _read(a_wav), _read(b_wav)
    blender = None if engine == "spectral" else load_blender(checkpoint, weights_dir)
    if blender is None and engine == "encodec":
        raise InvalidInput(
            "EnCodec weights are not installed on this server; use engine 'spectral' or 'auto'.",
            code="ENGINE_UNAVAILABLE",
            status=422,
        )
    if blender is not None:
        out, used = blender.blend(a, b, mode, weight), blender.engine
    else:
        out, used = spectral_morph(a, b, SAMPLE_RATE, mode, weight), "spectral"
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    ceiling = 10 ** (-1.0 / 20)
    if peak > ceiling:
        out = out * (ceiling / peak)
    buf = io.BytesIO()
    sf.write(buf, out, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return {"wav": buf.getvalue(), "engine": used}
