"""Provider clients (OpenAI, Replicate), their timeouts and the retry policies of the stages.

Offers:
- ``RetryPolicy`` and the per-stage policies (``WHISPER``, ``PLANNER``, ``SDXL``, ``CLIP``,
  ``COMPOSE``): attempt counts, per-attempt timeouts and the 2/4/8 s backoff from the issue.
- ``openai_client(api_key, timeout_s)`` / ``replicate_client(api_token, timeout_s)``: a
  configured client, or None without a key (the caller then runs its local engine and says so).
- ``run_prediction(client, version, input, timeout_s)``: one Replicate prediction, bounded by a
  deadline (canceled when it passes), returning its output and billed seconds.
- ``is_transient(exc)``: whether an error is worth another attempt (timeouts, connection
  errors, 429, 5xx).

Tests swap the clients' HTTP transport by monkeypatching ``openai_client`` /
``replicate_client``, and the backoff by monkeypatching ``sleep``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenacity

# Replicate model versions, pinned: a version id is immutable, a model name is not.
SDXL_MODEL = "stability-ai/sdxl"
SDXL_VERSION = "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
SVD_MODEL = "stability-ai/stable-video-diffusion"
SVD_VERSION = "3f0457e4619daac51203dedb472816fd4af51f3149fa7a9e0b5ffcf1b8172438"
T2V_MODEL = "anotherjesse/zeroscope-v2-xl"
T2V_VERSION = "9f747673945c62801b13b84701c783929c0ee784e4748ec062204894dda1a351"

POLL_INTERVAL_S = 1.0


def sleep(seconds: float) -> None:
    """Indirection over ``time.sleep`` so tests can record backoffs instead of waiting."""
    time.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one provider call may try: ``attempts`` tries, each bounded by
    ``timeout_s``, waiting ``backoff_s[i]`` after the i-th failure."""

    attempts: int
    timeout_s: float
    backoff_s: tuple[float, ...] = (2.0, 4.0, 8.0)

    def retrying(
        self, retry_on: Callable[[BaseException], bool] | None = None
    ) -> tenacity.Retrying:
        def wait(state: tenacity.RetryCallState) -> float:
            return self.backoff_s[min(state.attempt_number - 1, len(self.backoff_s) - 1)]

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(retry_on or is_transient),
            sleep=lambda s: sleep(s),
            reraise=True,
        )


# The numbers: Whisper 60 s x3, LLM 90 s x3, SDXL 30 s x3, clips 120 s x3,
# FFmpeg composition 120 s with one retry. Backoff 2 s, 4 s, 8 s.
WHISPER = RetryPolicy(attempts=3, timeout_s=60.0)
PLANNER = RetryPolicy(attempts=3, timeout_s=90.0)
SDXL = RetryPolicy(attempts=3, timeout_s=30.0)
CLIP = RetryPolicy(attempts=3, timeout_s=120.0)
COMPOSE = RetryPolicy(attempts=2, timeout_s=120.0, backoff_s=(0.0,))
PIPELINE_TIMEOUT_S = 15 * 60.0


class ProviderTimeout(Exception):
    """A provider call ran past its deadline (and was canceled where the provider allows)."""


class ProviderFailed(Exception):
    """A provider answered but the work failed (model error, canceled prediction, bad output)."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


def _is_transport_error(exc: BaseException) -> bool:
    """A timeout or connection error of the HTTP stack under both SDKs (httpx's
    ``TransportError`` family, which the Replicate SDK lets through), recognised by its class
    so that this module needs no HTTP library of its own."""
    return any(
        cls.__name__ == "TransportError" and cls.__module__.split(".")[0] == "httpx"
        for cls in type(exc).__mro__
    )


def is_transient(exc: BaseException) -> bool:
    """Timeouts, connection errors, 429 and 5xx are retried; other 4xx are not."""
    import openai
    from replicate.exceptions import ReplicateError

    if isinstance(exc, ProviderTimeout) or _is_transport_error(exc):
        return True
    if isinstance(exc, ProviderFailed):
        return exc.transient
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    if isinstance(exc, ReplicateError):
        return exc.status is None or exc.status == 429 or exc.status >= 500
    return False


def openai_client(api_key: str, timeout_s: float) -> Any | None:
    """An ``openai.OpenAI`` client with our timeout and no SDK retries (tenacity owns them),
    or None without an ``api_key``."""
    if not api_key:
        return None
    import openai

    return openai.OpenAI(api_key=api_key, timeout=timeout_s, max_retries=0)


def replicate_client(api_token: str, timeout_s: float) -> Any | None:
    """A ``replicate.Client`` whose HTTP requests each end within ``timeout_s`` (a prediction's
    own deadline is ``run_prediction``'s), or None without an ``api_token``."""
    if not api_token:
        return None
    import replicate

    # httpx's (connect, read, write, pool) form: a dead host fails within 10 s.
    connect_s = min(10.0, timeout_s)
    return replicate.Client(
        api_token=api_token, timeout=(connect_s, timeout_s, timeout_s, timeout_s)
    )


@dataclass
class PredictionResult:
    id: str
    output: Any
    predict_time_s: float  # what Replicate bills for public models
    wall_s: float


def run_prediction(
    client: Any,
    version: str,
    model_input: dict[str, Any],
    *,
    timeout_s: float,
    billed_s: list[float] | None = None,
) -> PredictionResult:
    """Create a prediction (``POST /v1/predictions`` with ``Prefer: wait``), poll it until it
    ends, and cancel it when ``timeout_s`` passes so a stuck run stops billing.

    Every prediction that ran appends its billed GPU seconds to ``billed_s`` (the reported
    ``predict_time``; for a canceled one, the wall time it ran, an upper bound), so failed
    attempts are paid for too. Raises ProviderTimeout, ProviderFailed, or the SDK's
    ReplicateError for HTTP errors.
    """
    billed_s = billed_s if billed_s is not None else []
    started = time.monotonic()
    deadline = started + timeout_s
    # Prefer: wait keeps the request open up to 60 s, so a fast model answers in one trip.
    hold_s = max(1, min(60, int(timeout_s) - 1))
    prediction = client.predictions.create(version=version, input=model_input, wait=hold_s)
    while prediction.status not in ("succeeded", "failed", "canceled"):
        if time.monotonic() >= deadline:
            try:
                prediction.cancel()
            except Exception:  # noqa: BLE001 - the timeout is the error worth reporting
                pass
            billed_s.append(time.monotonic() - started)
            raise ProviderTimeout(
                f"Replicate prediction {prediction.id} ran past {timeout_s:.0f} s"
            )
        sleep(POLL_INTERVAL_S)
        prediction.reload()
    metrics = prediction.metrics or {}
    predict_time_s = float(metrics.get("predict_time") or 0.0)
    billed_s.append(predict_time_s)
    if prediction.status != "succeeded":
        raise ProviderFailed(
            f"Replicate prediction {prediction.id} {prediction.status}: {prediction.error or 'no detail'}"
        )
    return PredictionResult(
        id=prediction.id,
        output=prediction.output,
        predict_time_s=predict_time_s,
        wall_s=time.monotonic() - started,
    )


def download(client: Any, url: str) -> bytes:
    """Fetch a prediction's output file through the client's own HTTP stack."""
    from replicate.helpers import FileOutput

    if not isinstance(url, str) or not url.startswith(("https:", "data:")):
        raise ProviderFailed(f"Replicate returned no file URL (got {url!r})")
    return FileOutput(url, client).read()


# Which Replicate model plays each role, and when that choice was made (the versions are pinned
# above). The text-to-video model is also the fallback for a failed image-to-video
# clip. Chosen 2026-12-02: zeroscope v2 XL stays, a public model billed per GPU-second on the
# A100 row of shared.prices, pinned by version and answering at 1024x576; the newer per-video-priced
# text-to-video models could not be checked for price and interface from where this was built,
# so none is wired in without a verified request shape.
MODEL_CHOICES: dict[str, dict[str, str]] = {
    "reference": {"model": SDXL_MODEL, "chosen_on": "2026-11-22"},
    "image_to_video": {"model": SVD_MODEL, "chosen_on": "2026-11-22"},
    "text_to_video": {
        "model": T2V_MODEL,
        "chosen_on": "2026-12-02",
        "role": "scenes without a reference image, and the fallback after image-to-video fails",
    },
}
