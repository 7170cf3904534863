"""The one registry of job kinds: the API, CLI, worker, web client and Modal all read it.

A pipeline module registers its kind once::

    KIND = register(JobKind(
        name="analyze", params=AnalyzeParams, stages=[("audio_analysis", 1.0)],
        run=run_analyze, min_files=1, max_files=1, estimate_s=lambda p, files: 5.0,
        description="Tempo, beats, key, sections and loudness of one track.",
    ))

``stages`` pairs each stage name with its share of the progress bar.
``estimate_s(params, inputs)`` gives the expected run time (``inputs`` is a list of dicts with
``duration_s`` where known) and ``estimate_cost_usd`` the pre-flight cost.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from shared.errors import InvalidInput


@dataclass
class JobKind:
    name: str
    params: type[BaseModel]
    stages: list[tuple[str, float]]
    run: Callable[[Any], dict]
    description: str = ""
    min_files: int = 0
    max_files: int = 0
    estimate_s: Callable[[BaseModel, list[dict]], float] = lambda p, files: 10.0
    estimate_cost_usd: Callable[[BaseModel, list[dict]], float] = lambda p, files: 0.0
    # Inputs of this kind must be audio (checked at upload); video kinds may say otherwise.
    audio_inputs: bool = True
    # Limits that the upload layer enforces per file (None: the global default).
    max_file_mb: float | None = None
    max_duration_s: float | None = None
    # Accepted input formats (recognised by content); None: every format audio_io can decode.
    input_formats: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def stage_names(self) -> list[str]:
        return [s for s, _ in self.stages]


_KINDS: dict[str, JobKind] = {}
_LOADED = False


def register(kind: JobKind) -> JobKind:
    _KINDS[kind.name] = kind
    return kind


def load_kinds() -> dict[str, JobKind]:
    """Import every pipeline module (each registers itself) and return the registry."""
    global _LOADED
    if not _LOADED:
        importlib.import_module("functions.pipelines")
        _LOADED = True
    return _KINDS


def get_kind(name: str) -> JobKind:
    kinds = load_kinds()
    if name not in kinds:
        raise InvalidInput(
            f"Unknown job kind '{name}'. Known kinds: {', '.join(sorted(kinds))}.",
            code="UNKNOWN_KIND",
            status=400,
        )
    return kinds[name]
