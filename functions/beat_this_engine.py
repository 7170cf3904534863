"""Beat This! (Foscarin, Schlüter & Widmer, ISMIR 2024) as the neural beat and downbeat engine.

Offers:
- ``BEAT_THIS_CHECKPOINT``: the published checkpoint used in production (``final0``).
- ``find_beat_this_checkpoint(weights_dir)``: the checkpoint file if it is on this machine, else
  None. Nothing is ever downloaded here.
- ``download_beat_this_checkpoint(dest)``: the one-off fetch that fills the weights folder (a
  Modal Volume in production) through beat_this' own loader.
- ``BeatThisTracker``: holds a ``beat_this.model.beat_tracker.BeatThis`` model and returns beat
  and downbeat times of an ``Audio``. Built from a checkpoint (``from_checkpoint``) or from any
  model instance (tests build a randomly initialised one through the package's own class).

The package's ``inference`` module imports torchaudio for its spectrogram; torchaudio is not
part of our dependencies (it pins torch), so the same log-mel front end is computed here with
torch and librosa's filterbank (22.05 kHz, 1024-point FFT, 441 hop = 50 frames/s, 128 Slaney
mel bands 30 Hz-11 kHz, magnitude normalised by the window's energy, ``log1p(1000 x)``), and
the chunking of long pieces (1500 frames with 6-frame borders) follows ``split_predict_aggregate``.
torch and beat_this are imported lazily: they belong to the ``ml`` extra.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from functions.audio_io import Audio

ENGINE_NAME = "beat-this"
BEAT_THIS_CHECKPOINT = "final0"
SAMPLE_RATE = 22050
N_FFT = 1024
HOP = 441  # 50 frames a second, what the model was trained on
FPS = SAMPLE_RATE / HOP
N_MELS = 128
CHUNK_FRAMES = 1500  # 30 s: the training excerpt length
BORDER_FRAMES = 6


def checkpoint_path(weights_dir: Path) -> Path:
    return Path(weights_dir) / "beat_this" / f"{BEAT_THIS_CHECKPOINT}.ckpt"


def find_beat_this_checkpoint(weights_dir: Path) -> Path | None:
    """The production checkpoint under ``weights_dir`` if present (never downloads)."""
    path = checkpoint_path(weights_dir)
    return path if path.is_file() else None


def download_beat_this_checkpoint(dest: Path) -> Path:
    """Fetch the published checkpoint with beat_this' own loader and save it under ``dest``."""
    import torch
    from beat_this.inference import load_checkpoint  # needs torchaudio: Modal image only

    checkpoint = load_checkpoint(BEAT_THIS_CHECKPOINT)
    path = checkpoint_path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


@functools.cache
def _mel_basis() -> np.ndarray:
    import librosa.filters

    return librosa.filters.mel(
        sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=30.0, fmax=11000.0, htk=False, norm=None
    ).astype(np.float32)


def log_mel(audio: Audio) -> Any:
    """The model's input ``(frames, 128)`` as a torch tensor: mono at 22.05 kHz, log-mel."""
    import torch
    from scipy.signal import resample_poly

    mono = audio.mono().astype(np.float64)
    if audio.sample_rate != SAMPLE_RATE:
        from math import gcd

        g = gcd(int(audio.sample_rate), SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // g, int(audio.sample_rate) // g)
    x = torch.from_numpy(mono.astype(np.float32))
    window = torch.hann_window(N_FFT)
    spec = (
        torch.stft(
            x, N_FFT, HOP, window=window, center=True, pad_mode="reflect", return_complex=True
        ).abs()
        / window.pow(2).sum().sqrt()
    )
    mel = torch.from_numpy(_mel_basis()) @ spec
    return torch.log1p(1000.0 * mel).T.contiguous()


def _frame_logits(model: Any, spect: Any) -> tuple[np.ndarray, np.ndarray]:
    """Beat and downbeat logits per frame; long pieces in overlapping 30 s chunks (the first
    chunk's prediction wins where two overlap, as in beat_this' ``keep_first``)."""
    import torch

    n = spect.shape[0]
    step = CHUNK_FRAMES - 2 * BORDER_FRAMES
    starts = list(range(-BORDER_FRAMES, n - BORDER_FRAMES, step))
    if n > step and starts:
        starts[-1] = n - (CHUNK_FRAMES - BORDER_FRAMES)
    beat = np.full(n, -1000.0, np.float32)
    down = np.full(n, -1000.0, np.float32)
    with torch.inference_mode():
        for start in reversed(starts):
            lo, hi = max(start, 0), min(start + CHUNK_FRAMES, n)
            chunk = spect[lo:hi]
            left = max(0, -start)
            right = max(0, min(BORDER_FRAMES, start + CHUNK_FRAMES - n))
            chunk = torch.nn.functional.pad(chunk, (0, 0, left, right))
            out = model(chunk.unsqueeze(0))
            b = out["beat"][0].float().numpy()[BORDER_FRAMES:-BORDER_FRAMES]
            d = out["downbeat"][0].float().numpy()[BORDER_FRAMES:-BORDER_FRAMES]
            a = start + BORDER_FRAMES
            keep = slice(max(a, 0), min(a + len(b), n))
            beat[keep] = b[keep.start - a : keep.stop - a]
            down[keep] = d[keep.start - a : keep.stop - a]
    return beat, down


@dataclass
class BeatThisTracker:
    """A loaded Beat This! model; ``track(audio)`` -> ``(beats_s, downbeats_s)``."""

    model: Any
    name: str = ENGINE_NAME

    @classmethod
    def from_checkpoint(cls, path: Path, device: str = "cpu") -> BeatThisTracker:
        import inspect

        import torch
        from beat_this.model.beat_tracker import BeatThis
        from beat_this.utils import replace_state_dict_key

        checkpoint = torch.load(path, map_location=device, weights_only=True)
        wanted = set(inspect.signature(BeatThis).parameters)
        hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if k in wanted}
        model = BeatThis(**hparams)
        model.load_state_dict(replace_state_dict_key(checkpoint["state_dict"], "model.", ""))
        return cls(model.to(device).eval())

    def track(self, audio: Audio) -> tuple[np.ndarray, np.ndarray]:
        """Beat and downbeat times in seconds: the model's frame logits, peak-picked as beat_this'
        "minimal" postprocessor does (maxima over +-70 ms with probability > 0.5, adjacent
        frames merged, each downbeat moved onto its nearest beat). Every downbeat is a beat."""
        import torch
        from beat_this.model.postprocessor import Postprocessor

        self.model.eval()
        beat, down = _frame_logits(self.model, log_mel(audio))
        post = Postprocessor(type="minimal", fps=int(round(FPS)))
        beats_s, downbeats_s = post(torch.from_numpy(beat), torch.from_numpy(down))
        beats_s = np.asarray(beats_s, dtype=np.float64)
        downbeats_s = np.asarray(downbeats_s, dtype=np.float64)
        # With no beat at all the postprocessor leaves downbeats where they were; a downbeat
        # is a beat, so those are dropped.
        return beats_s, downbeats_s[np.isin(downbeats_s, beats_s)]
