"""A stand-in for ``audiocraft.models.MusicGen`` that honours its documented interface.

audiocraft cannot be installed here (it pins torch 2.1), so our side of the boundary is tested
against this class: same method names and arguments, torch tensors ``[B, C, T]`` at 32 kHz out,
the progress callback called as ``(generated_tokens, tokens_to_generate)`` when ``progress=True``,
``generate_continuation`` returning the prompt followed by new audio, and the generation
duration taken from ``set_generation_params``. It records every call for assertions.

The audio is a tone whose pitch encodes which call made it, so tests can tell the windows apart.
"""

from __future__ import annotations

import numpy as np
import torch

FRAME_RATE = 50  # MusicGen's codec frame rate: one token step per 20 ms


class StandInMusicGen:
    sample_rate = 32000
    audio_channels = 1
    max_duration = 30.0
    loaded: list[str] = []

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[dict] = []
        self.generation_params: dict = {}
        self.duration = 15.0
        self._progress_callback = None

    @staticmethod
    def get_pretrained(name: str = "facebook/musicgen-melody", device=None) -> StandInMusicGen:
        StandInMusicGen.loaded.append(name)
        return StandInMusicGen(name)

    def set_generation_params(
        self,
        use_sampling: bool = True,
        top_k: int = 250,
        top_p: float = 0.0,
        temperature: float = 1.0,
        duration: float = 30.0,
        cfg_coef: float = 3.0,
        two_step_cfg: bool = False,
        extend_stride: float = 18,
    ) -> None:
        assert duration <= self.max_duration, "MusicGen cannot write more than 30 s in one pass"
        self.duration = duration
        self.generation_params = {
            "use_sampling": use_sampling,
            "top_k": top_k,
            "temperature": temperature,
            "cfg_coef": cfg_coef,
        }

    def set_custom_progress_callback(self, progress_callback=None) -> None:
        self._progress_callback = progress_callback

    def _tokens(self, progress: bool, steps: int) -> None:
        if progress and self._progress_callback is not None:
            for i in range(0, steps + 1, max(1, steps // 10)):
                self._progress_callback(i, steps)

    def _tone(self, n: int, hz: float) -> torch.Tensor:
        t = torch.arange(n, dtype=torch.float32) / self.sample_rate
        return (0.3 * torch.sin(2 * np.pi * hz * t))[None, None, :]

    def generate(
        self, descriptions: list[str], progress: bool = False, return_tokens: bool = False
    ) -> torch.Tensor:
        n = int(self.duration * self.sample_rate)
        self.calls.append(
            {"method": "generate", "descriptions": list(descriptions), "duration": self.duration}
        )
        self._tokens(progress, int(self.duration * FRAME_RATE))
        return self._tone(n, 220.0).repeat(len(descriptions), 1, 1)

    def generate_with_chroma(
        self,
        descriptions: list[str],
        melody_wavs,
        melody_sample_rate: int,
        progress: bool = False,
        return_tokens: bool = False,
    ) -> torch.Tensor:
        if isinstance(melody_wavs, torch.Tensor) and melody_wavs.dim() == 2:
            melody_wavs = melody_wavs[None]
        assert isinstance(melody_wavs, torch.Tensor) and melody_wavs.dim() == 3, (
            "melody must be [B, C, T]"
        )
        assert melody_wavs.shape[0] == len(descriptions)
        self.calls.append(
            {
                "method": "generate_with_chroma",
                "descriptions": list(descriptions),
                "duration": self.duration,
                "melody": melody_wavs.clone(),
                "melody_sample_rate": melody_sample_rate,
            }
        )
        self._tokens(progress, int(self.duration * FRAME_RATE))
        return self._tone(int(self.duration * self.sample_rate), 330.0)

    def generate_continuation(
        self,
        prompt: torch.Tensor,
        prompt_sample_rate: int,
        descriptions=None,
        progress: bool = False,
        return_tokens: bool = False,
    ) -> torch.Tensor:
        if prompt.dim() == 2:
            prompt = prompt[None]
        assert prompt.dim() == 3, "prompt should have 3 dimensions: [B, C, T]"
        assert prompt_sample_rate == self.sample_rate
        n = int(self.duration * self.sample_rate)
        assert prompt.shape[-1] < n, "Prompt is longer than audio to generate"
        self.calls.append(
            {
                "method": "generate_continuation",
                "descriptions": list(descriptions or []),
                "duration": self.duration,
                "prompt_samples": prompt.shape[-1],
            }
        )
        new_steps = int((n - prompt.shape[-1]) / self.sample_rate * FRAME_RATE)
        self._tokens(progress, new_steps)
        # The model re-decodes the prompt, then continues (here: a new tone per window).
        window = sum(c["method"] == "generate_continuation" for c in self.calls)
        new = self._tone(n - prompt.shape[-1], 220.0 * (1 + 0.25 * window))
        return torch.cat([prompt.to(torch.float32), new], dim=-1)
