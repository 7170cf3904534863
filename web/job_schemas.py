"""Typed response models of the jobs API: what /openapi.json promises a client gets.

They describe the public job object ``shared.submit.job_view`` builds. Routes return it with
``response_model_exclude_unset``, so the JSON is exactly the object built (a key the object
leaves out stays out); the models add the documentation and check the shape on the way out.
Timestamps are ISO 8601 strings as the job store writes them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "processing", "completed", "failed", "canceled"]
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class ErrorPublic(BaseModel):
    """Every error the API answers (``shared.errors.SoundstageError.to_dict``)."""

    code: str = Field(description="stable, e.g. JOB_NOT_FOUND, VALIDATION_ERROR")
    message: str = Field(description="a sentence a person understands")
    retryable: bool
    details: Any = None


class JobError(BaseModel):
    code: str
    message: str | None
    retryable: bool


class JobStage(BaseModel):
    name: str
    status: Literal["pending", "running", "completed", "failed", "skipped"]
    engine: str | None = Field(description="what really ran (a fallback is named as such)")
    attempts: int
    attempt_log: list[dict[str, Any]] = Field(description="one entry per attempt, how it ended")
    started_at: Timestamp | None
    completed_at: Timestamp | None
    duration_s: float | None
    cost_usd: float | None
    error: str | None


class JobCostItem(BaseModel):
    stage: str | None
    provider: str
    units: float
    unit: str = Field(description="e.g. seconds, gpu_seconds, images")
    cost_usd: float
    detail: str | None
    created_at: Timestamp


class JobCosts(BaseModel):
    total_usd: float
    estimated_usd: float | None
    budget_usd: float | None
    items: list[JobCostItem]


class JobInputPublic(BaseModel):
    """An input as the job took it (storage locations left out); audio inputs carry what the
    upload check measured, inputs by reference where they came from."""

    model_config = ConfigDict(extra="allow")
    filename: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    file_id: str | None = None


class JobOutputPublic(BaseModel):
    """A file the job kept; ``url`` is a signed, expiring download link once it completed."""

    model_config = ConfigDict(extra="allow")
    name: str
    bucket: str
    path: str
    filename: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    meta: dict[str, Any] | None = None
    file_id: str | None = None
    url: str | None


class JobPublic(BaseModel):
    """A job: its status, stages, costs, result and output files."""

    id: str
    kind: str
    status: JobStatus
    progress: float = Field(description="0-100")
    current_stage: str | None
    stages: list[JobStage]
    params: dict[str, Any]
    inputs: list[JobInputPublic]
    result: dict[str, Any] | None
    outputs: list[JobOutputPublic]
    error: JobError | None
    costs: JobCosts
    queue_position: int = Field(description="1 for the next job to start; 0 once it started")
    estimated_duration_s: float | None
    estimated_remaining_s: float | None
    attempts: int
    created_at: Timestamp | None
    started_at: Timestamp | None
    completed_at: Timestamp | None
    expires_at: Timestamp | None
    uploads_deleted_at: Timestamp | None = Field(description="when retention removed the uploads")
    outputs_deleted_at: Timestamp | None = Field(description="when retention removed the outputs")
    # A job just created also carries its first uploaded file, signed for a while.
    audio_url: str | None = Field(None, description="only in the answer to POST /api/v1/jobs")
    audio_url_expires_in_s: int | None = None


class JobsPublic(BaseModel):
    """One page of the user's jobs, newest first."""

    items: list[JobPublic]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class JobDeleted(BaseModel):
    id: str
    deleted: Literal[True]
    files_removed: int = Field(description="files that went with it (none another job needs)")
