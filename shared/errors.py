"""Errors a user can cause, each with a stable ``code`` and an HTTP status.

Everything raised for bad input derives from :class:`SoundstageError`; the API maps
it to a JSON 4xx in one place (``web.app``), the CLI prints ``message`` and exits 2,
and the worker stores ``code``/``message``/``retryable`` on the failed job.
"""

from __future__ import annotations

from typing import Any


class SoundstageError(Exception):
    """Base class: ``code`` is stable, ``message`` is a sentence a person understands."""

    code = "INTERNAL_ERROR"
    status = 500
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        details: dict[str, Any] | list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if retryable is not None:
            self.retryable = retryable
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.details:
            out["details"] = self.details
        return out


class InvalidInput(SoundstageError):
    """Parameters or files that cannot be processed as given (HTTP 400/422)."""

    code = "INVALID_INPUT"
    status = 422


class InvalidAudio(InvalidInput):
    """A file that is not decodable audio, is truncated, empty or silent."""

    code = "INVALID_AUDIO"
    status = 422


class FileTooLarge(InvalidInput):
    code = "FILE_TOO_LARGE"
    status = 413


class NotFound(SoundstageError):
    code = "NOT_FOUND"
    status = 404


class Unauthorized(SoundstageError):
    code = "UNAUTHORIZED"
    status = 401


class Conflict(SoundstageError):
    code = "CONFLICT"
    status = 409


class RateLimited(SoundstageError):
    code = "RATE_LIMITED"
    status = 429
    retryable = True


class BudgetExceeded(SoundstageError):
    code = "BUDGET_EXCEEDED"
    status = 402


class StageFailed(SoundstageError):
    """A stage failed for a reason that is not the user's input (engine, provider, timeout)."""

    code = "STAGE_FAILED"
    status = 500
    retryable = True


class JobCanceled(SoundstageError):
    code = "CANCELED"
    status = 409


class WorkerLost(JobCanceled):
    """This worker no longer owns its job (another worker took it over): it stops and writes
    nothing more."""

    code = "WORKER_LOST"

    def __init__(self) -> None:
        super().__init__("This worker lost the job (it was taken over).")
