"""Creating a job (shared by the API and the local CLI) and the job object users see.

``submit_job`` validates the kind, its params and its files, streams the files to the
``audio-uploads`` bucket, checks them (format by content, duration, silence) and inserts the job
``queued``; anything wrong raises a typed 4xx error and leaves nothing behind.
``job_view`` turns a job row into the public job object, with signed URLs for outputs.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ValidationError

from functions.audio_io import inspect_audio
from shared.auth import User
from shared.errors import FileTooLarge, InvalidInput, SoundstageError
from shared.input_refs import plan_inputs
from shared.library import record_job_inputs
from shared.registry import JobKind, get_kind
from shared.services import Services
from shared.storage import copy_with_limit, safe_filename

log = logging.getLogger("soundstage.submit")

MIN_DURATION_S = 1.0


@dataclass
class Upload:
    filename: str
    stream: BinaryIO
    content_type: str | None = None


def parse_params(kind: JobKind, params: str | dict | None) -> BaseModel:
    """Validate params for ``kind``; raises InvalidInput with a readable first problem."""
    if params is None or params == "":
        raw: Any = {}
    elif isinstance(params, str):
        try:
            raw = json.loads(params)
        except json.JSONDecodeError as e:
            raise InvalidInput(
                f"'params' is not valid JSON ({e.msg} at position {e.pos}).",
                code="BAD_PARAMS_JSON",
                status=400,
            ) from None
    else:
        raw = params
    if not isinstance(raw, dict):
        raise InvalidInput("'params' must be a JSON object.", code="BAD_PARAMS_JSON", status=400)
    try:
        return kind.params.model_validate(raw)
    except ValidationError as e:
        raise params_error(e) from None


def params_error(e: ValidationError) -> SoundstageError:
    # A typed error raised inside a validator keeps its own code and sentence.
    for err in e.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, SoundstageError):
            return cause
    first = e.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "params"
    msg = first.get("msg", "invalid value").removeprefix("Value error, ")
    return InvalidInput(
        f"Invalid parameter '{where}': {msg}.",
        code="INVALID_PARAMS",
        details={
            "errors": [
                {"field": ".".join(str(p) for p in x.get("loc", ())), "message": x.get("msg")}
                for x in e.errors()
            ]
        },
    )


def _check_file_count(kind: JobKind, n: int, max_files: int) -> None:
    hi = min(kind.max_files, max_files) if kind.max_files else 0
    if n < kind.min_files:
        need = f"{kind.min_files} file" + ("s" if kind.min_files > 1 else "")
        raise InvalidInput(
            f"A '{kind.name}' job needs at least {need} in the 'files' field.",
            code="MISSING_FILE",
            status=400,
        )
    if n > hi:
        raise InvalidInput(
            f"A '{kind.name}' job takes at most {hi} file{'s' if hi != 1 else ''}; got {n}.",
            code="TOO_MANY_FILES",
            status=400,
        )


def submit_job(
    services: Services,
    user: User,
    kind_name: str,
    params: str | dict | None,
    uploads: list[Upload],
    *,
    idempotency_key: str | None = None,
    inputs: str | list | None = None,
) -> tuple[dict, bool]:
    """Create a queued job; returns ``(job row, created)`` (False for an idempotent replay).

    ``inputs`` names library files / earlier jobs' outputs by reference (``shared.input_refs``).
    """
    s = services.settings
    kind = get_kind(kind_name)
    if idempotency_key is not None:
        if not (1 <= len(idempotency_key) <= 255):
            raise InvalidInput(
                "Idempotency-Key must be 1-255 characters.", code="BAD_IDEMPOTENCY_KEY", status=400
            )
        existing = services.jobs.find_idempotent(user.id, idempotency_key)
        if existing is not None:
            return existing, False
    model = parse_params(kind, params)
    plan = plan_inputs(services, user.id, kind, inputs, len(uploads))
    _check_file_count(kind, plan.count, s.max_files)
    services.jobs.check_rate_limit(user.id, s.rate_limit)

    job_id = str(uuid.uuid4())
    max_mb = kind.max_file_mb or s.max_upload_mb
    max_bytes = int(max_mb * 1024 * 1024)
    quota_left = s.user_quota_bytes - services.storage.usage(user.id)
    stored: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
            for i, up in enumerate(uploads):
                name = safe_filename(up.filename, f"input-{i}")
                filename = up.filename or name
                # Spool to local disk first (streamed, size-capped): the audio is checked there,
                # so a rejected file never reaches storage and is never read back from it.
                local = Path(tmp) / f"{i}"
                with open(local, "wb") as fh:
                    size, _ = copy_with_limit(up.stream, fh, max_bytes)
                quota_left -= size
                if quota_left < 0:
                    raise FileTooLarge(
                        f"Your storage quota of {s.user_quota_bytes / 1024**3:.0f} GB is full; "
                        "delete old jobs to make room.",
                        code="QUOTA_EXCEEDED",
                    )
                info = _check_audio(services, local, filename, kind) if kind.audio_inputs else {}
                path = f"{user.id}/{job_id}/input-{i}-{name}"
                obj = services.storage.put(
                    "audio-uploads", path, local, owner=user.id, content_type=up.content_type
                )
                stored.append(
                    {
                        "filename": filename,
                        "bucket": "audio-uploads",
                        "path": path,
                        "size_bytes": obj.size_bytes,
                        "sha256": obj.sha256,
                        "content_type": obj.content_type,
                        **info,
                    }
                )
        stored = plan.merge(services, user.id, stored)
        job = services.jobs.create(
            job_id=job_id,
            user_id=user.id,
            kind=kind.name,
            params=model.model_dump(mode="json"),
            inputs=stored,
            stages=kind.stage_names(),
            idempotency_key=idempotency_key,
            estimated_duration_s=float(kind.estimate_s(model, stored)),
            estimated_cost_usd=float(kind.estimate_cost_usd(model, stored)),
            budget_usd=s.job_budget_usd,
        )
    except BaseException:
        # Nothing is half-created: uploads of a rejected job are removed again.
        # (Files named by reference, or already in the library, are not this job's to remove.)
        if fresh := [x["path"] for x in stored if not x.get("file_id")]:
            services.storage.remove("audio-uploads", fresh)
        raise
    record_job_inputs(services, job)
    log.info("job created", extra={"job_id": job_id, "kind": kind.name, "user_id": user.id})
    return job, True


def _check_audio(services: Services, local: Path, filename: str, kind: JobKind) -> dict:
    """Decode the spooled upload (format by content, duration, silence) against the kind's
    limits; returns what the job records about it."""
    limit_s = kind.max_duration_s or services.settings.max_duration_s
    try:
        info = inspect_audio(local)
    except SoundstageError as e:
        e.message = f"'{filename}': {e.message}"
        raise
    if kind.input_formats and info["format"] not in kind.input_formats:
        raise InvalidInput(
            f"'{filename}' is {info['format']}; a '{kind.name}' job takes "
            f"{', '.join(kind.input_formats)}.",
            code="UNSUPPORTED_FORMAT",
        )
    if info["duration_s"] > limit_s:
        raise InvalidInput(
            f"'{filename}' is {info['duration_s'] / 60:.1f} minutes long; the limit is "
            f"{limit_s / 60:.0f} minutes.",
            code="TOO_LONG",
        )
    if info["duration_s"] < MIN_DURATION_S:
        raise InvalidInput(
            f"'{filename}' is shorter than {MIN_DURATION_S:.0f} second.", code="TOO_SHORT"
        )
    return {
        "format": info["format"],
        "duration_s": info["duration_s"],
        "sample_rate": info["sample_rate"],
        "channels": info["channels"],
    }


def job_view(services: Services, job: dict) -> dict:
    """The public job object."""
    status = job["status"]
    error = None
    if job.get("error_code"):
        error = {
            "code": job["error_code"],
            "message": job.get("error_message"),
            "retryable": bool(job.get("error_retryable")),
        }
    outputs = []
    if status == "completed":
        for o in job.get("outputs") or []:
            ttl = None
            url = services.storage.signed_url(
                o["bucket"], o["path"], ttl, download_name=o.get("filename")
            )
            outputs.append({**o, "url": url})
    else:
        outputs = [{**o, "url": None} for o in job.get("outputs") or []]
    return {
        "id": str(job["id"]),
        "kind": job["kind"],
        "status": status,
        "progress": round(float(job.get("progress") or 0), 1),
        "current_stage": job.get("current_stage"),
        "stages": job.get("stages", []),
        "params": job.get("params") or {},
        "inputs": [
            {k: v for k, v in i.items() if k not in ("bucket", "path")}
            for i in job.get("inputs") or []
        ],
        "result": job.get("result"),
        "outputs": outputs,
        "error": error,
        "costs": {
            "total_usd": round(float(job.get("total_cost_usd") or 0), 6),
            "estimated_usd": None
            if job.get("estimated_cost_usd") is None
            else round(float(job["estimated_cost_usd"]), 4),
            "budget_usd": None if job.get("budget_usd") is None else float(job["budget_usd"]),
            "items": job.get("cost_items", []),
        },
        "queue_position": job.get("queue_position", 0),
        "estimated_duration_s": job.get("estimated_duration_s"),
        "estimated_remaining_s": job.get("estimated_remaining_s"),
        "attempts": job.get("attempts", 0),
        "created_at": job.get("created_at"),
        "started_at": job.get("started_at"),
        "completed_at": job.get("completed_at"),
        "expires_at": job.get("expires_at"),
    }
