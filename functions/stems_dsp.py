"""The CPU separator used when no Demucs weights are present, reported as ``engine: "dsp"``.

It is classic signal processing, not a neural model, and says so: four soft masks over the
STFT that sum to one in every time-frequency bin, so the stems add back up to the mix (up to
the STFT's reconstruction error).

- drums: the percussive part of harmonic/percussive separation (median filtering, librosa's
  ``hpss``);
- vocals: the harmonic part that does not repeat (REPET-SIM: librosa's ``nn_filter`` finds each
  frame's similar frames; what they do not share is foreground), weighted to the voice band and,
  for stereo, to the centre of the stereo image (the panning similarity of left and right);
- bass: the rest of the harmonic part below ~150 Hz (fading out by 300 Hz);
- other: everything left.

Quality is far below Demucs; it exists so that the product works on a laptop without weights.
"""

from __future__ import annotations

from collections.abc import Callable

import librosa
import numpy as np

SOURCES = ["drums", "bass", "other", "vocals"]


def _band_weight(freqs_hz: np.ndarray, lo_hz: float, hi_hz: float, edge: float = 2.0) -> np.ndarray:
    """1 inside [lo, hi], raised-cosine roll-off over an ``edge`` ratio (octave-ish) outside."""
    w = np.ones_like(freqs_hz)
    f = np.maximum(freqs_hz, 1e-3)
    below = f < lo_hz
    above = f > hi_hz
    x_lo = np.clip(np.log(lo_hz / f[below]) / np.log(edge), 0, 1)
    x_hi = np.clip(np.log(f[above] / hi_hz) / np.log(edge), 0, 1)
    w[below] = 0.5 * (1 + np.cos(np.pi * x_lo))
    w[above] = 0.5 * (1 + np.cos(np.pi * x_hi))
    return w


class DspSeparator:
    """HPSS + REPET-SIM + band and stereo-centre masks; works at the input's own rate."""

    engine = "dsp"
    model_name = None
    normalize = False
    sample_rate = None  # the input's
    channels = None  # the input's
    sources = SOURCES

    def __init__(self, *, block_s: float = 30.0, context_s: float = 1.0) -> None:
        # REPET-SIM compares every frame with every other in a block: blocks keep that bounded.
        self.block_s = block_s
        self.context_s = context_s

    def load(self) -> DspSeparator:
        return self

    def separate_block(
        self,
        block: np.ndarray,
        sample_rate: int,
        progress: Callable[[float], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Stems of a ``(channels, n)`` block, each ``(channels, n)`` float32."""
        n = block.shape[1]
        n_fft = 2048 if sample_rate >= 32000 else 1024
        hop = n_fft // 4
        if n < n_fft:  # too short to analyse: all of it is "other"
            zeros = np.zeros_like(block)
            return {
                "drums": zeros,
                "bass": zeros.copy(),
                "other": block.copy(),
                "vocals": zeros.copy(),
            }
        spec = librosa.stft(block, n_fft=n_fft, hop_length=hop)  # (ch, F, T)
        mid = np.abs(spec.mean(axis=0))
        harmonic, percussive = librosa.decompose.hpss(mid, mask=True, margin=1.0)
        if progress:
            progress(0.4)
        vocal = self._foreground_mask(harmonic * mid, sample_rate, hop)
        if progress:
            progress(0.8)
        freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)[:, None]
        vocal *= _band_weight(freqs, 150.0, 6000.0)
        if spec.shape[0] == 2:
            left, right = np.abs(spec[0]), np.abs(spec[1])
            vocal *= 2 * left * right / np.maximum(left**2 + right**2, 1e-12)
        low = _band_weight(freqs, 0.0 + 1e-3, 150.0)
        masks = {
            "drums": percussive,
            "vocals": harmonic * vocal,
            "bass": harmonic * (1.0 - vocal) * low,
        }
        masks["other"] = np.clip(1.0 - masks["drums"] - masks["vocals"] - masks["bass"], 0.0, 1.0)
        out = {
            name: librosa.istft(spec * mask[None], hop_length=hop, n_fft=n_fft, length=n).astype(
                np.float32
            )
            for name, mask in masks.items()
        }
        if progress:
            progress(1.0)
        return out

    @staticmethod
    def _foreground_mask(harmonic_mag: np.ndarray, sample_rate: int, hop: int) -> np.ndarray:
        """Soft mask of what does not repeat (REPET-SIM, as in librosa's vocal separation).

        The frame-similarity search runs on frames pooled 4 to 1 (~46 ms at 44.1 kHz): it is
        quadratic in the frame count, and the background it finds changes more slowly than that.
        """
        pool = 4
        frames = harmonic_mag.shape[1]
        width = int(librosa.time_to_frames(2.0, sr=sample_rate, hop_length=hop * pool))
        coarse_n = -(-frames // pool)
        if coarse_n <= 2 * width + 2:
            return np.zeros_like(harmonic_mag)  # too short to find repetition
        padded = np.pad(harmonic_mag, ((0, 0), (0, coarse_n * pool - frames)), mode="edge")
        coarse = padded.reshape(harmonic_mag.shape[0], coarse_n, pool).mean(axis=2)
        background = librosa.decompose.nn_filter(
            coarse, aggregate=np.median, metric="cosine", width=width
        )
        background = np.minimum(harmonic_mag, np.repeat(background, pool, axis=1)[:, :frames])
        # margin 10: only clearly non-repeating energy counts as voice (librosa's example value)
        return librosa.util.softmask(
            harmonic_mag - background, 10.0 * background, power=2, split_zeros=False
        )
