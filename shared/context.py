"""The small context a pipeline talks to while it runs a job.

A pipeline (``functions/pipelines/<kind>.py``) receives a :class:`JobContext` and uses:

- ``ctx.params``: the kind's validated pydantic params; ``ctx.inputs``: the uploaded files,
  already on local disk (``InputFile.path``); ``ctx.workdir``: a scratch folder removed after.
- ``with ctx.stage("audio_analysis", engine="librosa") as st:`` marks a stage (a ``job_stages`` row and
  a ``stage_update`` event); ``st.progress(0.4, "beats")`` reports progress inside it (0..1),
  mapped onto the job's 0-100 by the stage weights of the kind; ``st.engine = "dsp"`` records
  which engine really ran (a fallback is named as such).
- ``ctx.message(text)``, ``ctx.cost(provider, units, usd, unit=...)``: events / cost rows (API
  calls: OpenAI, Replicate). ``ctx.compute_cost(stage, wall_s, cores=..., memory_gib=...)``:
  compute as a cost row, priced where the executor ran it (free locally, Modal's price there);
  ``ctx.compute_price(...)`` the same price without recording it (estimates).
- ``ctx.output(name, path, bucket=..., content_type=...)``: keep a file as a job output.
- ``ctx.call(stage_fn, **kw)`` / ``ctx.map(stage_fn, [kw, ...])``: run a stage function where
  the job's executor puts it (shared.executors; the pipeline never asks where); a ``progress``
  callable in ``kw`` reports back into the stage from wherever it runs.
- ``ctx.settings``: the deployment's settings (stage functions get values as arguments).
- ``ctx.cache_get(namespace, key)`` / ``ctx.cache_put(namespace, key, value)``: content-addressed
  JSON cache (the ``analysis_cache`` table) so the same work is never done twice.
- ``ctx.discard_outputs(names)``: remove outputs that served their purpose (video clips).
- ``ctx.budget_usd`` / ``ctx.total_cost_usd`` / ``ctx.ensure_budget(next_usd, what)``: the
  spending cap of every kind (a kind's ``budget_usd`` param lowers it); ``call``/``map`` refuse
  to start once it is spent, and paid steps check their worst case first.
- ``ctx.check_canceled()``: raises :class:`shared.errors.JobCanceled` if the user canceled.
- ``ctx.reuse_output(name, stored)`` (optional; pipelines look it up with ``getattr`` and
  compute afresh without it): attach an object an earlier job stored as an output of this job,
  without copying it. ``stored`` is an :class:`OutputFile` as a dict (``bucket``,
  ``object_path``, ``filename``, ``content_type``, ``size_bytes``, ``meta``), as a cache entry
  keeps it; returns the attached OutputFile, or None when the object is gone (retention) or
  not the user's. The stems cache uses it so the same track split twice is separated once.

A pipeline returns the job's ``result`` (a JSON-serialisable dict).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel


@dataclass
class InputFile:
    """An uploaded file, materialised on local disk for the pipeline."""

    path: Path
    filename: str  # the name the user gave it (never trusted for format detection)
    bucket: str = "audio-uploads"
    object_path: str = ""
    size_bytes: int = 0
    sha256: str = ""


@dataclass
class OutputFile:
    name: str
    bucket: str
    object_path: str
    content_type: str
    size_bytes: int
    filename: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class StageHandle(Protocol):
    name: str
    engine: str | None

    def progress(self, fraction: float, message: str | None = None) -> None: ...


class JobContext(Protocol):
    job_id: str
    kind: str
    user_id: str
    params: BaseModel
    inputs: list[InputFile]
    workdir: Path
    budget_usd: float | None  # the job's spending cap (None: no cap)
    total_cost_usd: float

    def stage(
        self, name: str, engine: str | None = None
    ) -> AbstractContextManager[StageHandle]: ...

    def progress(self, percent: float, message: str | None = None) -> None: ...

    def message(self, text: str, **data: Any) -> None: ...

    def cost(
        self, provider: str, units: float, usd: float, *, unit: str = "seconds", detail: str = ""
    ) -> None: ...

    def output(
        self,
        name: str,
        path: Path,
        *,
        bucket: str = "audio-outputs",
        content_type: str | None = None,
        filename: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> OutputFile: ...

    def discard_outputs(self, names: Sequence[str]) -> list[str]:
        """Remove outputs that served their purpose (e.g. clips once the video is composed)."""
        ...

    def ensure_budget(self, next_cost_usd: float, what: str = "the next step") -> None:
        """Raise BUDGET_EXCEEDED if spending ``next_cost_usd`` more would pass the budget."""
        ...

    def compute_price(
        self,
        stage: Callable[..., Any] | str,
        wall_s: float,
        *,
        cores: float = 2.0,
        memory_gib: float = 4.0,
    ) -> float: ...

    def compute_cost(
        self,
        stage: Callable[..., Any] | str,
        wall_s: float,
        *,
        cores: float = 2.0,
        memory_gib: float = 4.0,
        detail: str | None = None,
        unit: str = "wall_seconds",
    ) -> float: ...

    @property
    def settings(self) -> Any: ...

    def call(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any: ...

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[dict[str, Any]],
        *,
        max_concurrency: int | None = None,
        on_result: Callable[[Any], None] | None = None,
    ) -> list[Any]: ...

    def cache_get(self, namespace: str, key: str) -> Any | None: ...

    def cache_put(self, namespace: str, key: str, value: Any) -> None: ...

    def check_canceled(self) -> None: ...


def iter_progress(total: int, handle: StageHandle, every: int = 1) -> Iterator[int]:
    """Yield 0..total-1 and report progress on ``handle`` as it goes."""
    for i in range(total):
        if i % every == 0:
            handle.progress(i / max(1, total))
        yield i
