"""What a job kind is, and the registry of kinds the API, CLI, worker, web client and Modal read.

A pipeline module describes its kind once, with no side effect::

    KIND = JobKind(
        name="analyze", params=AnalyzeParams, stages=[("audio_analysis", 1.0)],
        run=run_analyze, min_files=1, max_files=1, estimate_s=lambda p, files: 5.0,
        description="Tempo, beats, key, sections and loudness of one track.",
    )

``functions.pipelines.KINDS`` lists every kind, one line each. Whoever composes a process (the
app factory, the worker, the CLI, a Modal function) hands that ``Kinds`` to ``open_services``;
the rest reads it from ``services.kinds``, so nothing here imports a pipeline.

``stages`` pairs each stage name with its share of the progress bar.
``estimate_s(params, inputs)`` gives the expected run time (``inputs`` is a list of dicts with
``duration_s`` where known) and ``estimate_cost_usd`` the pre-flight cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from shared.errors import InvalidInput


def saved_lines(saved: list[Any]) -> str:
    """The ``  wrote <path>`` lines a terminal summary ends with, one per saved file."""
    return "\n".join(f"  wrote {p}" for p in saved)


@dataclass(frozen=True)
class CliFlag:
    """How a params field reads on the ``soundstage`` command line where its own name would
    not do; put it in the field's ``Annotated[...]`` (it stays out of the JSON schema)::

        output_format: Annotated[Literal["wav", "flac"], CliFlag("to")] = "wav"    # --to
        mode: Annotated[Literal["weight", "crossfade"], CliFlag(switch="crossfade")] = "weight"
        tracks: Annotated[list[TrackSettings], CliFlag(per_file=True)] = ...

    ``name``: the flag without dashes (default: the field's name with dashes). ``switch``: a
    value the flag sets on its own (``--crossfade``). ``per_file``: a list of models, one per
    input file; each of the model's fields becomes a comma-separated flag in file order (a bool
    field: the 0-based indices of the files where it is true).
    """

    name: str | None = None
    switch: Any = None
    per_file: bool = False


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
    # The output a command line's ``-o FILE`` saves (None: the first the job wrote).
    main_output: str | None = None
    # The terminal summary of a completed job: ``summarize(result, inputs, saved)`` (the input
    # names as given, the paths the CLI wrote) returns rich console markup; None: the saved
    # paths only.
    summarize: Callable[[dict, list[str], list[Any]], str] | None = None

    def stage_names(self) -> list[str]:
        return [s for s, _ in self.stages]


class Kinds:
    """The job kinds one process serves, looked up by name."""

    def __init__(self, kinds: Iterable[JobKind] = ()) -> None:
        self._by_name: dict[str, JobKind] = {}
        for kind in kinds:
            if kind.name in self._by_name:
                raise ValueError(f"job kind '{kind.name}' is listed twice")
            self._by_name[kind.name] = kind

    def get(self, name: str) -> JobKind:
        """The kind called ``name``; raises InvalidInput (UNKNOWN_KIND) for any other name."""
        kind = self._by_name.get(name)
        if kind is None:
            raise InvalidInput(
                f"Unknown job kind '{name}'. Known kinds: {', '.join(sorted(self._by_name))}.",
                code="UNKNOWN_KIND",
                status=400,
            )
        return kind

    def plus(self, *kinds: JobKind) -> Kinds:
        """These kinds and ``kinds`` (e.g. a test's own kinds beside the real ones)."""
        return Kinds([*self, *kinds])

    def names(self) -> list[str]:
        return list(self._by_name)

    def __iter__(self) -> Iterator[JobKind]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name
