"""An in-process JobContext that records what a pipeline does, for pipeline-level tests.

It runs the real pipeline code; only persistence differs from the worker's DbJobContext
(events, stages, costs and outputs go to lists and a folder instead of Postgres and storage).
End-to-end tests through the API exercise the real context.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import prices
from shared.config import get_settings
from shared.context import InputFile, OutputFile
from shared.executors import LocalExecutor
from shared.submit import parse_params
from tests.kinds import TEST_KINDS


class _Stage:
    def __init__(self, ctx: RecordingContext, name: str, engine: str | None) -> None:
        self.ctx, self.name, self.engine = ctx, name, engine

    def progress(self, fraction: float, message: str | None = None) -> None:
        self.ctx.events.append(
            ("progress", {"stage": self.name, "fraction": fraction, "message": message})
        )


@dataclass
class PipelineRun:
    result: dict
    outputs: dict[str, Path]
    stages: list[dict]
    events: list[tuple[str, dict]]
    costs: list[dict]
    output_files: dict[str, OutputFile] = field(default_factory=dict)


class RecordingContext:
    def __init__(
        self,
        kind: str,
        files: list[Path],
        params: dict | Any,
        workdir: Path,
        budget_usd: float | None = 20.0,
        cache: dict | None = None,
    ) -> None:
        k = TEST_KINDS.get(kind)
        self.kind = kind
        self.job_id = "00000000-0000-4000-8000-000000000000"
        self.user_id = "00000000-0000-4000-8000-000000000001"
        self.params = params if not isinstance(params, dict) else parse_params(k, params)
        self.workdir = workdir
        self.inputs = []
        for f in map(Path, files):
            self.inputs.append(
                InputFile(
                    path=f,
                    filename=f.name,
                    size_bytes=f.stat().st_size,
                    sha256=hashlib.sha256(f.read_bytes()).hexdigest(),
                )
            )
        self.events: list[tuple[str, dict]] = []
        self.stages: list[dict] = []
        self.costs: list[dict] = []
        self.map_calls: list[dict] = []
        self.outputs: dict[str, Path] = {}
        self.output_files: dict[str, OutputFile] = {}
        self.cache: dict = cache if cache is not None else {}
        self.budget_usd = prices.job_budget_usd(budget_usd, self.params)
        self.total_cost_usd = 0.0
        self.executor = LocalExecutor()
        self._out_dir = workdir / "_outputs"
        self._out_dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def stage(self, name: str, engine: str | None = None) -> Iterator[_Stage]:
        h = _Stage(self, name, engine)
        rec = {"name": name, "status": "running", "engine": engine}
        self.stages.append(rec)
        self.events.append(("stage_update", {"stage": name, "status": "running"}))
        t = time.monotonic()
        try:
            yield h
        except BaseException:
            rec.update(status="failed", engine=h.engine, duration_s=time.monotonic() - t)
            raise
        rec.update(status="completed", engine=h.engine, duration_s=time.monotonic() - t)
        self.events.append(
            ("stage_update", {"stage": name, "status": "completed", "engine": h.engine})
        )

    def progress(self, percent: float, message: str | None = None) -> None:
        self.events.append(("progress", {"progress": percent, "message": message}))

    def message(self, text: str, **data: Any) -> None:
        self.events.append(("message", {"message": text, **data}))

    def cost(
        self, provider: str, units: float, usd: float, *, unit: str = "seconds", detail: str = ""
    ) -> None:
        self.total_cost_usd += usd
        self.costs.append(
            {"provider": provider, "units": units, "unit": unit, "cost_usd": usd, "detail": detail}
        )
        self.events.append(
            (
                "cost_update",
                {"provider": provider, "cost_usd": usd, "total_cost_usd": self.total_cost_usd},
            )
        )

    def ensure_budget(self, next_cost_usd: float, what: str = "the next step") -> None:
        prices.check_budget(self.total_cost_usd, next_cost_usd, self.budget_usd, what)

    def compute_price(self, stage, wall_s: float, *, cores: float = 2.0, memory_gib: float = 4.0):
        where = self.executor.placement(stage, cores=cores, memory_gib=memory_gib)
        return prices.compute_usd(where, wall_s)

    def compute_cost(
        self, stage, wall_s, *, cores=2.0, memory_gib=4.0, detail=None, unit="wall_seconds"
    ) -> float:
        where = self.executor.placement(stage, cores=cores, memory_gib=memory_gib)
        usd, provider, detail = prices.compute_charge(where, stage, wall_s, detail)
        self.cost(provider, round(wall_s, 3), round(usd, 6), unit=unit, detail=detail)
        return usd

    @property
    def settings(self):
        return get_settings()

    def output(
        self,
        name: str,
        path: Path,
        *,
        bucket: str = "audio-outputs",
        content_type: str | None = None,
        filename: str | None = None,
        meta: dict | None = None,
    ) -> OutputFile:
        fname = filename or Path(path).name
        dest = self._out_dir / f"{name}-{fname}"
        shutil.copyfile(path, dest)
        self.outputs[name] = dest
        of = OutputFile(
            name=name,
            bucket=bucket,
            object_path=f"{self.user_id}/{self.job_id}/{name}-{fname}",
            content_type=content_type or "application/octet-stream",
            size_bytes=dest.stat().st_size,
            filename=fname,
            meta=meta or {},
        )
        self.output_files[name] = of
        return of

    def discard_outputs(self, names) -> list[str]:
        gone = [n for n in names if n in self.outputs]
        for n in gone:
            self.outputs.pop(n).unlink(missing_ok=True)
            self.output_files.pop(n, None)
        return gone

    def call(self, fn, /, **kwargs):
        self.ensure_budget(0.0, f"running {fn.__name__}")
        return fn(**kwargs)

    def map(self, fn, items, *, max_concurrency=None, on_result=None):
        self.ensure_budget(0.0, f"running {fn.__name__}")
        self.map_calls.append({"fn": fn.__name__, "n": len(items), "max": max_concurrency})
        with ThreadPoolExecutor(max_workers=max_concurrency or 2) as pool:
            results = list(pool.map(lambda kw: fn(**kw), items))
        for r in results:
            if on_result is not None:
                on_result(r)
        return results

    def cache_get(self, namespace: str, key: str):
        return self.cache.get((namespace, key))

    def cache_put(self, namespace: str, key: str, value) -> None:
        self.cache[(namespace, key)] = value

    def check_canceled(self, force: bool = False) -> None:
        return None


def run_pipeline_in_process(
    kind: str,
    files: list[Path],
    params: dict,
    *,
    cache: dict | None = None,
    budget_usd: float | None = 20.0,
    workdir: Path | None = None,
) -> PipelineRun:
    workdir = workdir or Path(tempfile.mkdtemp(prefix=f"pipeline-{kind}-"))
    ctx = RecordingContext(kind, files, params, workdir, budget_usd=budget_usd, cache=cache)
    result = TEST_KINDS.get(kind).run(ctx)
    return PipelineRun(
        result=result,
        outputs=ctx.outputs,
        stages=ctx.stages,
        events=ctx.events,
        costs=ctx.costs,
        output_files=ctx.output_files,
    )
