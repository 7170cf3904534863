"""A job kind used only by the retry tests: it fails its first ``fail_times`` attempts with the
error asked for (a provider timeout, a GPU out-of-memory, an HTTP 5xx from a model API, a user
error), then succeeds, so the runner's retry policy can be watched from the outside."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import InvalidInput
from shared.registry import JobKind


class FlakyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fail_times: int = Field(1, ge=0, le=10)
    error: str = "timeout"  # timeout | oom | http500 | http404 | user | bug


class OutOfMemoryError(RuntimeError):
    """Named as torch names its CUDA OOM (torch.cuda.OutOfMemoryError)."""


def make_error(kind: str) -> BaseException:
    request = httpx.Request("POST", "https://api.replicate.com/v1/predictions")
    if kind == "timeout":
        return httpx.ReadTimeout("read timed out", request=request)
    if kind == "oom":
        return OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    if kind in ("http500", "http404"):
        status = int(kind[4:])
        response = httpx.Response(status, request=request)
        return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)
    if kind == "user":
        return InvalidInput("This input cannot work.", code="BAD_INPUT_FOR_TEST")
    return KeyError("a bug")


def run(ctx) -> dict:
    with ctx.stage("work", engine="test") as st:
        st.progress(0.5, f"attempt {ctx.attempt}")
        if ctx.attempt <= ctx.params.fail_times:
            raise make_error(ctx.params.error)
    return {"attempt": ctx.attempt, "previous_failure": ctx.previous_failure}


KIND = JobKind(
    name="test_flaky",
    params=FlakyParams,
    stages=[("work", 1.0)],
    run=run,
    description="retry test kind",
    estimate_s=lambda p, files: 0.1,
)
