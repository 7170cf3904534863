"""A job kind used only by the platform's tests: it sleeps through two stages, reports progress
and costs, writes an output, and can be told to fail. Real pipelines are tested separately;
this one lets the job system's lifecycle be tested without audio compute in the way."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import InvalidInput
from shared.registry import JobKind


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=0.2, ge=0, le=60)
    fail_code: str | None = None


def run(ctx) -> dict:
    with ctx.stage("first", engine="test") as st:
        steps = 10
        for i in range(steps):
            time.sleep(ctx.params.seconds / steps)
            st.progress((i + 1) / steps, f"step {i + 1}")
            ctx.check_canceled()
        ctx.cost("test-provider", 1.0, 0.001, unit="calls")
    with ctx.stage("second", engine="test"):
        if ctx.params.fail_code:
            raise InvalidInput("Asked to fail.", code=ctx.params.fail_code)
        out = ctx.workdir / "note.txt"
        sizes = [i.size_bytes for i in ctx.inputs]
        out.write_text(f"inputs={sizes}")
        ctx.output("note", out, content_type="text/plain")
    return {"inputs": len(ctx.inputs), "sizes": sizes}


KIND = JobKind(
    name="test_sleep",
    params=SleepParams,
    stages=[("first", 3.0), ("second", 1.0)],
    run=run,
    min_files=0,
    max_files=4,
    audio_inputs=True,
    description="platform test kind",
    estimate_s=lambda p, files: p.seconds,
)
