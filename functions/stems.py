"""Stem separation of one track, with bounded memory however long the track is.

Offers:
- ``STEM_NAMES``: ``vocals``, ``drums``, ``bass``, ``other``, ``guitar`` and ``piano`` (six-source
  model only), ``melody`` (see ``melody_definition``) and the two-stem ``no_vocals``.
- ``resolve_engine(engine, model_name, weights_dir)``: what ``auto`` means on this machine.
- ``get_separator(engine, model_name, weights_dir)``: Demucs (``functions.demucs_engine``) when
  asked for or, with ``auto``, when its weights are cached here; otherwise the DSP separator
  (``functions.stems_dsp``). One instance per process and model, so a long-lived worker (a Modal
  GPU container) loads weights once.
- ``separate_file(path, out_dir, ...) -> StemSet``: reads the track block by block, separates
  each block, crossfades neighbouring blocks and writes every stem incrementally in the wanted
  format at the input's sample rate and channel count.
- ``separate_track(audio=bytes, ...)``: the same as a stage function with plain arguments and
  a plain-bytes result, for ``ctx.call``/``ctx.map`` (Modal ``.remote()``/``.map()``).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from functions.audio_stream import CONTENT_TYPES, BlockReader, match_channels, open_sink
from shared.errors import InvalidInput, StageFailed

STEM_NAMES = ("vocals", "drums", "bass", "other", "guitar", "piano", "melody", "no_vocals")
FOUR_STEMS = ("vocals", "drums", "bass", "other")
# Demucs' six-source model adds guitar and piano to the four.
SIX_STEM_MODEL = "htdemucs_6s"
SIX_STEMS = ("vocals", "drums", "bass", "guitar", "piano", "other")
# "melody" is not a source any model separates: it is everything pitched that is neither the
# voice nor the bass line, i.e. the sum of the non-rhythm-section sources the model has.
RHYTHM_AND_VOICE = ("vocals", "drums", "bass")


def melody_definition(sources: list[str] | tuple[str, ...]) -> list[str]:
    """The sources a model's ``melody`` stem sums (4-stem: other; 6-stem: guitar+piano+other)."""
    return [s for s in sources if s not in RHYTHM_AND_VOICE]


def model_sources(engine: str, model_name: str | None) -> list[str]:
    """The sources an engine separates, known without loading it (Demucs' published models:
    htdemucs and htdemucs_ft four, htdemucs_6s six)."""
    if engine == "demucs" and model_name == SIX_STEM_MODEL:
        return list(SIX_STEMS)
    return list(FOUR_STEMS)


def stems_offered(sources: list[str] | tuple[str, ...]) -> list[str]:
    """Every stem name a model (or the DSP separator) with these sources can give."""
    return [*sources, "melody", "no_vocals"]


ProgressFn = Callable[[float], None]


class Separator(Protocol):
    """What ``separate_file`` needs from an engine (Demucs or DSP)."""

    engine: str
    model_name: str | None
    normalize: bool
    block_s: float
    context_s: float

    @property
    def sample_rate(self) -> int | None: ...  # the rate it works at; None: the input's

    @property
    def channels(self) -> int | None: ...

    @property
    def sources(self) -> list[str]: ...

    def load(self) -> Any: ...

    def separate_block(
        self, block: np.ndarray, sample_rate: int, progress: ProgressFn | None = None
    ) -> dict[str, np.ndarray]: ...


@dataclass
class StemSet:
    """Stems written to disk: ``files`` maps stem name -> path."""

    files: dict[str, Path]
    engine: str
    model: str | None
    sample_rate: int
    channels: int
    duration_s: float
    output_format: str
    meta: dict[str, Any] = field(default_factory=dict)


_SEPARATORS: dict[tuple[str, str], Separator] = {}
_SEPARATORS_LOCK = threading.Lock()


def resolve_engine(
    engine: str, model_name: str, weights_dir: str | Path | None = None
) -> tuple[str, str]:
    """``(engine, model)`` that ``auto`` resolves to on this machine: Demucs when
    ``model_name``'s weights are in ``weights_dir`` (or a model cache), else the DSP separator."""
    from functions.demucs_engine import find_demucs_weights

    if engine == "auto":
        found = find_demucs_weights(model_name, weights_dir)
        engine = "demucs" if found is not None else "dsp"
    return engine, model_name


def get_separator(engine: str, model_name: str, weights_dir: str | Path | None = None) -> Separator:
    """The process-wide separator for ``engine`` (auto/demucs/dsp) and ``model_name``, loaded
    (Demucs weights are looked up in ``weights_dir``, then in the model caches)."""
    engine, model_name = resolve_engine(engine, model_name, weights_dir)
    key = (engine, model_name if engine == "demucs" else "")
    with _SEPARATORS_LOCK:
        if key not in _SEPARATORS:
            if engine == "demucs":
                from functions.demucs_engine import DemucsSeparator

                _SEPARATORS[key] = DemucsSeparator(
                    model_name, weights_dir=Path(weights_dir) if weights_dir else None
                ).load()
            elif engine == "dsp":
                from functions.stems_dsp import DspSeparator

                _SEPARATORS[key] = DspSeparator()
            else:
                raise InvalidInput(f"Unknown stems engine '{engine}'.", code="BAD_ENGINE")
        return _SEPARATORS[key]


def _who(sep: Separator) -> str:
    return "The DSP separator" if sep.engine == "dsp" else f"Demucs model {sep.model_name}"


def check_stems(stems: list[str] | tuple[str, ...]) -> list[str]:
    """Validate a stem choice: known names, at least one, no repeats."""
    if not stems:
        raise InvalidInput("Choose at least one stem.", code="BAD_STEMS")
    unknown = [s for s in stems if s not in STEM_NAMES]
    if unknown:
        raise InvalidInput(
            f"Unknown stem {unknown[0]!r}; choose from {', '.join(STEM_NAMES)}.", code="BAD_STEMS"
        )
    if len(set(stems)) != len(stems):
        raise InvalidInput("Each stem may be asked for once.", code="BAD_STEMS")
    return list(stems)


def check_stems_for(wanted: list[str], sources: list[str] | tuple[str, ...], who: str) -> None:
    """Raise ``STEMS_UNAVAILABLE`` when ``wanted`` asks for a source ``who`` cannot separate."""
    missing = [w for w in wanted if w not in stems_offered(sources)]
    if missing:
        raise InvalidInput(
            f"{who} cannot give {', '.join(missing)}; it gives {', '.join(stems_offered(sources))}"
            f" (guitar and piano need the {SIX_STEM_MODEL} model and its weights).",
            code="STEMS_UNAVAILABLE",
            details={"available": stems_offered(sources)},
        )


def _pick(sources: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
    """The wanted stems from a model's sources. ``no_vocals`` is everything but the vocals;
    ``melody`` is :func:`melody_definition`; ``other`` absorbs the sources beyond the four that
    were not asked for by name (a six-source model's guitar and piano), so a four-stem choice
    still sums to the mix."""
    extra = [k for k in sources if k not in FOUR_STEMS and k not in wanted]
    out: dict[str, np.ndarray] = {}
    for name in wanted:
        if name == "no_vocals":
            out[name] = sum(v for k, v in sources.items() if k != "vocals")
        elif name == "melody":
            out[name] = sum(sources[k] for k in melody_definition(list(sources)))
        elif name == "other":
            out[name] = sources["other"] + sum(
                (sources[k] for k in extra), np.zeros_like(sources["other"])
            )
        else:
            out[name] = sources[name]
    return out


def _mean_std(blocks: Iterable[np.ndarray]) -> tuple[float, float]:
    """Mean and standard deviation of the mono mix over ``(ch, n)`` blocks (Demucs'
    normalisation, as ``demucs.api`` applies it to the whole track)."""
    total, total_sq, frames = 0.0, 0.0, 0
    for block in blocks:
        mono = block.mean(axis=0, dtype=np.float64)
        total += float(mono.sum())
        total_sq += float(np.dot(mono, mono))
        frames += mono.size
    mean = total / max(1, frames)
    std = max(total_sq / max(1, frames) - mean**2, 0.0) ** 0.5
    return mean, (std if std > 1e-8 else 1.0)


def _block_plan(frames: int, hop: int, context: int) -> list[tuple[int, int, int]]:
    """``(read_start, read_end, keep_until)`` per block. Each block owns ``hop`` frames (the
    last owns the remainder, up to ``2*hop``) and reads ``context`` frames beyond each side;
    neighbours overlap by ``2*context`` frames, where they are crossfaded."""
    n_blocks = max(1, frames // max(1, hop))
    plan = []
    for i in range(n_blocks):
        last = i == n_blocks - 1
        own_start, own_end = i * hop, frames if last else (i + 1) * hop
        start = max(0, own_start - context)
        end = frames if last else own_end + context
        plan.append((start, end, end if last else own_end - context))
    return plan


def separate_file(
    path: str | Path,
    out_dir: str | Path,
    *,
    stems: list[str] | tuple[str, ...] = FOUR_STEMS,
    output_format: str = "wav",
    bit_depth: int = 16,
    bitrate_kbps: int = 320,
    separator: Separator,
    progress: ProgressFn | None = None,
    scratch_dir: str | Path | None = None,
    block_s: float | None = None,
) -> StemSet:
    """Separate ``path`` into ``stems`` written to ``out_dir/<stem>.<format>``.

    Stems keep the input's sample rate and channel count. ``block_s`` overrides the engine's
    block length (shorter blocks: less memory per model call, e.g. after a GPU ran out of it).
    Raises InvalidAudio for unreadable input, InvalidInput for a bad choice of stems or format.
    """
    wanted = check_stems(stems)
    sep = separator
    check_stems_for(wanted, list(sep.sources), _who(sep))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with BlockReader(
        path, sample_rate=sep.sample_rate, channels=sep.channels, scratch_dir=scratch_dir
    ) as reader:
        sr = reader.sample_rate
        out_channels = min(reader.source_channels, 2)  # surround input gives stereo stems
        reader.channels = sep.channels or out_channels
        hop_s = min(sep.block_s, block_s) if block_s else sep.block_s
        plan = _block_plan(reader.frames, int(hop_s * sr), int(sep.context_s * sr))
        # A track that is one block is read once; longer ones get a streaming statistics pass.
        whole = reader.read(0, reader.frames) if len(plan) == 1 else None
        mean, std = 0.0, 1.0
        if sep.normalize:
            chunk = 30 * sr
            mean, std = _mean_std(
                [whole]
                if whole is not None
                else (
                    reader.read(i, min(reader.frames, i + chunk))
                    for i in range(0, reader.frames, chunk)
                )
            )
        files = {name: out_dir / f"{name}.{output_format}" for name in wanted}
        sinks = {
            name: open_sink(
                file,
                output_format,
                sample_rate=sr,
                channels=out_channels,
                out_sample_rate=reader.source_sample_rate,
                bit_depth=bit_depth,
                bitrate_kbps=bitrate_kbps,
            )
            for name, file in files.items()
        }
        total_work = float(sum(end - start for start, end, _ in plan))
        done = 0
        tails: dict[str, np.ndarray] = {}
        try:
            for start, end, keep_until in plan:
                block = whole if whole is not None else reader.read(start, end)
                if sep.normalize:
                    block = (block - mean) / std

                def block_progress(f: float, _done: int = done, _n: int = end - start) -> None:
                    if progress is not None:
                        progress(min(1.0, (_done + f * _n) / total_work))

                sources = sep.separate_block(block, sr, block_progress)
                if sep.normalize:
                    sources = {k: v * std + mean for k, v in sources.items()}
                for name, audio in _pick(sources, wanted).items():
                    audio = match_channels(audio, out_channels)
                    if name in tails:  # linear crossfade with the previous block's tail
                        tail = tails.pop(name)
                        fade = np.linspace(
                            0.0, 1.0, tail.shape[1], endpoint=False, dtype=np.float32
                        )
                        audio[:, : tail.shape[1]] = (
                            tail * (1.0 - fade) + audio[:, : tail.shape[1]] * fade
                        )
                    cut = keep_until - start
                    sinks[name].write(audio[:, :cut])
                    if cut < audio.shape[1]:
                        tails[name] = audio[:, cut:].copy()
                done += end - start
                if progress is not None:
                    progress(done / total_work)
        finally:
            for sink in sinks.values():
                sink.close()
        return StemSet(
            files=files,
            engine=sep.engine,
            model=sep.model_name,
            sample_rate=reader.source_sample_rate,
            channels=out_channels,
            duration_s=round(reader.frames / sr, 3),
            output_format=output_format,
            meta={"blocks": len(plan)},
        )


def separate_track(
    *,
    audio: bytes,
    filename: str = "track",
    stems: list[str] | tuple[str, ...] = FOUR_STEMS,
    output_format: str = "wav",
    bit_depth: int = 16,
    bitrate_kbps: int = 320,
    engine: str = "auto",
    model_name: str = "htdemucs",
    weights_dir: str | None = None,
    progress: ProgressFn | None = None,
    block_s: float | None = None,
    separator: Separator | None = None,
) -> dict[str, Any]:
    """Stage function: the stems of ``audio`` (the file's bytes) as bytes.

    ``separator``: a loaded separator the caller holds (a GPU container loads Demucs once);
    without it the process-wide one for ``engine`` and ``model_name``.

    Returns ``{"engine", "model", "sample_rate", "channels", "duration_s", "format",
    "content_type", "stems": {name: bytes}}``. Plain arguments and a plain result, so it runs
    in-process or as a Modal ``.remote()``/``.map()`` unchanged. ``weights_dir`` is the folder
    of model weights on the machine that runs it (whoever starts that machine knows it).
    """
    sep = separator or get_separator(engine, model_name, weights_dir)
    with tempfile.TemporaryDirectory(prefix="stems-") as tmp:
        src = Path(tmp) / (Path(filename).name or "track")
        src.write_bytes(audio)
        try:
            result = separate_file(
                src,
                Path(tmp) / "out",
                stems=stems,
                output_format=output_format,
                bit_depth=bit_depth,
                bitrate_kbps=bitrate_kbps,
                separator=sep,
                progress=progress,
                scratch_dir=tmp,
                block_s=block_s,
            )
        except (MemoryError, RuntimeError) as exc:
            oom = "out of memory" in str(exc).lower() or isinstance(exc, MemoryError)
            raise StageFailed(
                f"Stem separation failed: {exc}", code="GPU_OUT_OF_MEMORY" if oom else None
            ) from exc
        return {
            "engine": result.engine,
            "model": result.model,
            "sample_rate": result.sample_rate,
            "channels": result.channels,
            "duration_s": result.duration_s,
            "format": output_format,
            "content_type": CONTENT_TYPES[output_format],
            "blocks": result.meta.get("blocks"),
            "stems": {name: p.read_bytes() for name, p in result.files.items()},
        }
