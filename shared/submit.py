"""Creating a job (shared by the API and the local CLI) and the job object users see.

``submit_job`` validates the kind, its params and its files, streams the files to the
``audio-uploads`` bucket, checks them (format by content, duration, silence) and inserts the job
``queued``; anything wrong raises a typed 4xx error and leaves nothing behind.
``job_view`` turns a job row into the public job object, with signed URLs for outputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ValidationError

from shared import quota
from shared.auth import User
from shared.errors import InvalidInput, SoundstageError
from shared.input_checks import check_json, clean_text, loads_json
from shared.input_refs import plan_inputs
from shared.library import record_job_inputs
from shared.quota import estimate_output_bytes
from shared.registry import JobKind
from shared.services import Services
from shared.submit_checks import check_params_against_audio, check_params_against_files
from shared.throttle import AttemptCounter
from shared.uploads import spool_uploads

log = logging.getLogger("soundstage.submit")


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
            raw = loads_json(params)
        except json.JSONDecodeError as e:
            raise InvalidInput(
                f"'params' is not valid JSON ({e.msg} at position {e.pos}).",
                code="BAD_PARAMS_JSON",
                status=400,
            ) from None
    else:
        raw = check_json(params)
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


def request_fingerprint(kind: str, model: BaseModel, filenames: list[str]) -> str:
    """What makes two job requests the same one (kind, normalised params, file names)."""
    doc = {"kind": kind, "params": model.model_dump(mode="json"), "files": list(filenames)}
    raw = json.dumps(doc, sort_keys=True, ensure_ascii=True).encode()
    return hashlib.sha256(raw).hexdigest()


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
    kind = services.kinds.get(clean_text(kind_name, "kind"))
    if idempotency_key is not None:
        if not (1 <= len(idempotency_key) <= 255) or not idempotency_key.isprintable():
            raise InvalidInput(
                "Idempotency-Key must be 1-255 printable characters.",
                code="BAD_IDEMPOTENCY_KEY",
                status=400,
            )
    model = parse_params(kind, params)
    # Inputs by reference are part of the request too: another reference is another request.
    refs = [str(inputs)] if inputs else []
    params_hash = request_fingerprint(kind.name, model, [*(u.filename for u in uploads), *refs])
    if idempotency_key is not None:
        existing = services.jobs.find_idempotent(user.id, idempotency_key)
        if existing is not None:
            if existing.get("request_hash") not in (None, params_hash):
                # As Stripe does: one key, one request. A different body is a client bug.
                raise InvalidInput(
                    "This Idempotency-Key was already used for a different request; "
                    "use a new key for a new job.",
                    code="IDEMPOTENCY_KEY_REUSED",
                )
            return existing, False
    plan = plan_inputs(services, user.id, kind, inputs, len(uploads))
    _check_file_count(kind, plan.count, s.max_files)
    check_params_against_files(kind.name, model, plan.count)

    job_id = str(uuid.uuid4())
    max_mb = kind.max_file_mb or s.max_upload_mb
    max_bytes = int(max_mb * 1024 * 1024)
    stored: list[dict] = []
    reserved = False
    try:
        with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
            # Spool to local disk first (streamed, size-capped) and check there, so a rejected
            # file never reaches storage and is never read back from it.
            spooled = spool_uploads(
                services.audio, kind, uploads, Path(tmp), max_bytes, s.max_duration_s
            )
            check_params_against_audio(kind.name, model, [x.info for x in spooled])
            # Only a well-formed request counts against the limit; deleting jobs gives nothing back.
            AttemptCounter(services.db).take(
                "jobs",
                user.id,
                s.rate_limit,
                3600,
                f"You can start {s.rate_limit} jobs per hour; try again later.",
            )
            params_json = model.model_dump(mode="json")
            infos = [{"duration_s": x.info.get("duration_s")} for x in spooled]
            outputs_bytes = estimate_output_bytes(kind.name, params_json, infos)
            quota.reserve(
                services.db,
                user.id,
                job_id,
                sum(x.size_bytes for x in spooled) + outputs_bytes,
                s.user_quota_bytes,
            )
            reserved = True
            for x in spooled:
                path = f"{user.id}/{job_id}/input-{x.index}-{x.name}"
                obj = services.storage.put(
                    "audio-uploads",
                    path,
                    x.local,
                    owner=user.id,
                    content_type=x.content_type,
                    sha256=x.sha256,
                )
                stored.append(
                    {
                        "filename": x.filename,
                        "bucket": "audio-uploads",
                        "path": path,
                        "size_bytes": obj.size_bytes,
                        "sha256": obj.sha256,
                        "content_type": obj.content_type,
                        **x.info,
                    }
                )
        stored = plan.merge(services, user.id, stored)
        if plan.count > len(uploads):  # inputs by reference: their durations are known now
            check_params_against_audio(kind.name, model, stored)
        job = services.jobs.create(
            job_id=job_id,
            user_id=user.id,
            kind=kind.name,
            params=params_json,
            inputs=stored,
            stages=kind.stage_names(),
            idempotency_key=idempotency_key,
            estimated_duration_s=float(kind.estimate_s(model, stored)),
            estimated_cost_usd=float(kind.estimate_cost_usd(model, stored)),
            budget_usd=s.job_budget_usd,
            params_hash=params_hash,
        )
        # The inputs are stored (and counted) now; what stays reserved is the outputs' estimate.
        quota.set_reserved(services.db, job_id, outputs_bytes)
    except BaseException:
        # Nothing is half-created: uploads of a rejected job are removed again.
        # (Files named by reference, or already in the library, are not this job's to remove.)
        if fresh := [x["path"] for x in stored if not x.get("file_id")]:
            services.storage.remove("audio-uploads", fresh)
        if reserved:
            quota.release(services.db, job_id)
        raise
    record_job_inputs(services, job)
    log.info("job created", extra={"job_id": job_id, "kind": kind.name, "user_id": user.id})
    return job, True


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
        # Retention per kind (shared.retention): when the uploads / outputs were removed.
        "uploads_deleted_at": job.get("inputs_swept_at"),
        "outputs_deleted_at": job.get("outputs_swept_at"),
    }
