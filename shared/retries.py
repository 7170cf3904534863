"""Which failures a job is run again for, and how long it waits first.

A job that fails for a reason that may pass on its own (a provider timeout, a 5xx from a model
API, a GPU that ran out of memory, a Modal container that went away) is run again, up to
``Settings.max_attempts`` attempts in all, after an exponential backoff with jitter (tenacity's
``wait_exponential_jitter``): about 2 s, 4 s, 8 s... capped at ``retry_backoff_max_s``. A user's
error (any 4xx: bad params, bad audio, budget) is never retried: the same input fails the same way.
A lost worker is the other retry path (``JobStore.recover_stale`` requeues the job).

Offers ``classify(exc) -> Failure`` (stable code, sentence, whether the user may retry, whether
we retry automatically) and ``job_retrying(settings, sleep, before_sleep)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenacity

from shared.errors import JobCanceled, SoundstageError

# Exception class names from libraries ``shared`` does not import (Modal, torch, providers):
# matched by name so the classification needs none of them installed.
_TIMEOUT_NAMES = {"ProviderTimeout", "FunctionTimeoutError", "TimeoutException", "ReadTimeout"}
_LOST_NAMES = {"InternalFailure", "ConnectionError", "TransportError"}
_OOM_NAMES = {"OutOfMemoryError"}


# Failures that come after the providers' own retries were spent (video clips: 3 attempts per
# model, then the fallback model) or after the whole time budget: running the job again would
# pay for every call twice and likely fail the same way. The user may still retry.
NOT_RETRIED_AUTOMATICALLY = {"TOO_FEW_CLIPS", "PIPELINE_TIMEOUT"}


@dataclass(frozen=True)
class Failure:
    code: str
    message: str
    retryable: bool  # the user may try again (stored on the job)
    retry_automatically: bool  # we try again ourselves


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def classify(exc: BaseException) -> Failure:
    """The job-level verdict on an exception raised by a pipeline."""
    if isinstance(exc, JobCanceled):
        return Failure(exc.code, exc.message, False, False)
    if isinstance(exc, SoundstageError):
        # 4xx is the user's input: never worth another run. 5xx + retryable is ours.
        auto = exc.retryable and exc.status >= 500 and exc.code not in NOT_RETRIED_AUTOMATICALLY
        return Failure(exc.code, exc.message, exc.retryable, auto)
    names = _names(exc)
    text = str(exc)
    if names & _OOM_NAMES or "out of memory" in text.lower():
        return Failure(
            "GPU_OUT_OF_MEMORY",
            "The GPU ran out of memory; the job runs again (stems in shorter blocks).",
            True,
            True,
        )
    if names & _TIMEOUT_NAMES or isinstance(exc, TimeoutError):
        return Failure(
            "PROVIDER_TIMEOUT", "A model or provider took too long to answer.", True, True
        )
    status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(
        exc, "status", None
    )
    if isinstance(status, int) and (status >= 500 or status == 429):
        return Failure("PROVIDER_ERROR", f"A model API answered with HTTP {status}.", True, True)
    if getattr(exc, "transient", False) or names & _LOST_NAMES:
        return Failure(
            "PROVIDER_ERROR",
            f"A remote worker or provider failed ({type(exc).__name__}).",
            True,
            True,
        )
    return Failure(
        "INTERNAL_ERROR",
        f"The job failed unexpectedly ({type(exc).__name__}); it can be retried.",
        True,
        False,  # a bug does not go away by running it again
    )


def job_retrying(
    *,
    attempts: int,
    backoff_s: float,
    backoff_max_s: float,
    sleep: Callable[[float], None],
    before_sleep: Callable[[tenacity.RetryCallState], Any],
) -> tenacity.Retrying:
    """tenacity policy for whole-job attempts: transient failures only, exponential + jitter."""
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(1, attempts)),
        wait=tenacity.wait_exponential(multiplier=backoff_s, max=backoff_max_s, exp_base=2)
        + tenacity.wait_random(0, backoff_s),  # jitter: workers failing together part ways
        retry=tenacity.retry_if_exception(lambda e: classify(e).retry_automatically),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
