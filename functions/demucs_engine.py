"""Demucs through its own API: finding weights, loading them, separating a block.

Offers:
- ``find_demucs_weights(name, weights_dir)``: where the weights of a pretrained model already are on this
  machine (our weights folder, torch hub's cache, or the Hugging Face cache), or None. Nothing is
  ever downloaded here.
- ``load_demucs_model(weights)``: the model (a demucs ``BagOfModels``) built by demucs' own repo
  and state loaders.
- ``download_demucs_weights(dest, names)``: the one-off fetch that fills the weights folder (a
  Modal Volume in production) from demucs' published model list.
- ``DemucsSeparator``: holds a loaded model and separates one block with
  ``demucs.apply.apply_model`` (split into the model's segments with overlap), reporting
  progress from Demucs' callback.

torch and demucs are imported lazily: they belong to the ``ml`` extra.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shared.errors import InvalidInput, StageFailed

DEMUCS_MODELS = ("htdemucs", "htdemucs_ft", "htdemucs_6s")
HF_NAMESPACE = "adefossez"  # where demucs publishes its models on the Hugging Face hub


@dataclass(frozen=True)
class DemucsWeights:
    """Where a model's files are: ``source`` is ``repo`` (a demucs model folder: bag yaml plus
    ``.th`` files), ``torch_hub`` (the ``.th`` files in torch hub's checkpoint cache, the bag
    yaml from demucs' package) or ``huggingface`` (the Hugging Face cache)."""

    name: str
    source: Literal["repo", "torch_hub", "huggingface"]
    path: Path


def _remote_root() -> Path:
    from demucs.pretrained import REMOTE_ROOT

    return Path(REMOTE_ROOT)


def _bag_signatures(yaml_path: Path) -> list[str]:
    import yaml

    with open(yaml_path) as fh:
        return list(yaml.safe_load(fh)["models"])


def _has_checkpoints(folder: Path, signatures: list[str]) -> bool:
    if not folder.is_dir():
        return False
    names = [p.stem for p in folder.glob("*.th")]
    return all(any(n == s or n.startswith(f"{s}-") for n in names) for s in signatures)


def _hf_cached(name: str) -> Path | None:
    try:
        from demucs.hf import hf_repo_name
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    repo_id = f"{HF_NAMESPACE}/{hf_repo_name(name)}"
    bag = try_to_load_from_cache(repo_id, f"{name}.yaml")
    if not isinstance(bag, str):
        return None
    for sig in _bag_signatures(Path(bag)):
        if not isinstance(try_to_load_from_cache(repo_id, f"{sig}.safetensors"), str):
            return None
    return Path(bag)


def find_demucs_weights(name: str, weights_dir: str | Path | None = None) -> DemucsWeights | None:
    """The cached weights of pretrained model ``name`` (in ``weights_dir/demucs``, torch hub's
    cache or the Hugging Face cache), or None when they are not on this machine."""
    try:
        import torch
    except ImportError:
        return None
    repo = Path(weights_dir) / "demucs" if weights_dir else None
    if (
        repo is not None
        and (repo / f"{name}.yaml").exists()
        and _has_checkpoints(repo, _bag_signatures(repo / f"{name}.yaml"))
    ):
        return DemucsWeights(name, "repo", repo)
    bag_yaml = _remote_root() / f"{name}.yaml"
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    if bag_yaml.exists() and _has_checkpoints(hub, _bag_signatures(bag_yaml)):
        return DemucsWeights(name, "torch_hub", hub)
    hf_yaml = _hf_cached(name)
    if hf_yaml is not None:
        return DemucsWeights(name, "huggingface", hf_yaml)
    return None


def load_demucs_model(weights: DemucsWeights) -> Any:
    """Build the model with demucs' own loaders (``BagOfModels``), in eval mode, on the CPU."""
    from demucs.apply import BagOfModels
    from demucs.pretrained import get_model
    from demucs.repo import AnyModelRepo, BagOnlyRepo, LocalRepo

    if weights.source == "repo":
        model = get_model(weights.name, repo=weights.path)
    elif weights.source == "torch_hub":
        checkpoints = LocalRepo(weights.path)
        model = AnyModelRepo(checkpoints, BagOnlyRepo(_remote_root(), checkpoints)).get_model(
            weights.name
        )
    else:
        import yaml
        from demucs.hf import load_safetensors_model

        with open(weights.path) as fh:
            bag = yaml.safe_load(fh)
        folder = weights.path.parent
        models = [load_safetensors_model(folder / f"{sig}.safetensors") for sig in bag["models"]]
        model = BagOfModels(models, bag.get("weights"), bag.get("segment"))
    if not isinstance(model, BagOfModels):
        model = BagOfModels([model])
    model.eval()
    return model


def download_demucs_weights(dest: str | Path, names: tuple[str, ...] = DEMUCS_MODELS) -> list[Path]:
    """Fetch ``names`` into ``dest/demucs`` (bag yaml + checksummed ``.th`` files) so that
    ``find_demucs_weights(name, dest)`` finds them. Run once to fill the weights Volume; files
    already present are kept."""
    import torch
    from demucs.pretrained import _parse_remote_files
    from demucs.repo import check_checksum

    repo = Path(dest) / "demucs"
    repo.mkdir(parents=True, exist_ok=True)
    urls = _parse_remote_files(_remote_root() / "files.txt")
    written: list[Path] = []
    for name in names:
        bag_yaml = _remote_root() / f"{name}.yaml"
        if not bag_yaml.exists():
            raise InvalidInput(f"Unknown Demucs model '{name}'.", code="UNKNOWN_MODEL")
        shutil.copy(bag_yaml, repo / bag_yaml.name)
        for sig in _bag_signatures(bag_yaml):
            url = urls[sig]
            target = repo / url.rsplit("/", 1)[1]
            if not target.exists():
                part = target.with_suffix(".part")
                torch.hub.download_url_to_file(url, str(part), progress=False)
                check_checksum(part, target.stem.split("-", 1)[1])
                os.replace(part, target)
            written.append(target)
    return written


ProgressFn = Callable[[float], None]


class DemucsSeparator:
    """A loaded Demucs model and the settings of ``apply_model``.

    ``model`` may be given directly (tests build a tiny ``HTDemucs`` with random weights);
    otherwise ``load()`` finds and loads ``model_name``'s cached weights. ``shifts=0`` keeps
    the output deterministic, which content-hash caching relies on.
    """

    engine = "demucs"
    normalize = True  # Demucs expects the mix normalised by its mean/std, as demucs.api does

    def __init__(
        self,
        model_name: str = "htdemucs",
        *,
        model: Any | None = None,
        device: str | None = None,
        shifts: int = 0,
        overlap: float = 0.25,
        segment_s: float | None = None,
        block_s: float = 150.0,
        context_s: float = 2.5,
        weights_dir: Path | None = None,
    ) -> None:
        self.model_name = model_name
        self.model = model
        self.device = device
        self.shifts = shifts
        self.overlap = overlap
        self.segment_s = segment_s
        # Long tracks are cut into blocks of ``block_s`` seconds (crossfaded over 2*context_s)
        # so memory stays bounded; a track up to 2*block_s long is one block, one apply_model.
        self.block_s = block_s
        self.context_s = context_s
        self.weights_dir = weights_dir

    def load(self) -> DemucsSeparator:
        """Load the weights once (Modal calls this in ``@modal.enter()``); raise StageFailed if absent."""
        import torch

        if self.device is None:
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.model is None:
            weights = find_demucs_weights(self.model_name, self.weights_dir)
            if weights is None:
                raise StageFailed(
                    f"Demucs weights for '{self.model_name}' are not present on this machine.",
                    code="WEIGHTS_MISSING",
                    retryable=False,
                )
            self.model = load_demucs_model(weights)
        # Kept on its device: apply_model would otherwise move each bag member there and back.
        self.model.to(self.device).eval()
        return self

    @property
    def sample_rate(self) -> int:
        return int(self._loaded().samplerate)

    @property
    def channels(self) -> int:
        return int(self._loaded().audio_channels)

    @property
    def sources(self) -> list[str]:
        return list(self._loaded().sources)

    def _loaded(self) -> Any:
        if self.model is None:
            self.load()
        return self.model

    def separate_block(
        self, block: np.ndarray, sample_rate: int, progress: ProgressFn | None = None
    ) -> dict[str, np.ndarray]:
        """Sources of a normalised ``(channels, n)`` block at the model's rate, each ``(channels, n)``."""
        import torch
        from demucs.apply import apply_model

        model = self._loaded()
        if sample_rate != model.samplerate:
            raise ValueError(f"block rate {sample_rate} != model rate {model.samplerate}")
        n = block.shape[1]
        segment_s = float(self.segment_s or _model_segment_s(model))
        segment_n = int(segment_s * model.samplerate)
        passes = max(1, self.shifts)

        def on_segment(info: dict) -> None:
            # Demucs calls back at the start and end of every segment; ends mark progress.
            if progress is None or info.get("state") != "end":
                return
            done = min(1.0, (info["segment_offset"] + segment_n) / max(1, n))
            model_part = (info["shift_idx"] + done) / passes
            progress((info["model_idx_in_bag"] + model_part) / info["models"])

        mix = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))[None]
        out = apply_model(
            model,
            mix,
            shifts=self.shifts,
            split=True,
            overlap=self.overlap,
            segment=self.segment_s,
            device=self.device,
            callback=on_segment,
            progress=False,
        )
        out = out[0].cpu().numpy()
        return {src: out[k] for k, src in enumerate(model.sources)}


def _model_segment_s(model: Any) -> float:
    from demucs.apply import BagOfModels

    if isinstance(model, BagOfModels):
        return float(min(float(m.segment) for m in model.models))
    return float(model.segment)
