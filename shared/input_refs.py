"""Job inputs by reference: my library files and named outputs of my earlier jobs.

``POST /api/v1/jobs`` (and the CLI's ``file:<id>`` / ``job:<id>/<output>``) may name inputs
instead of uploading them; no bytes travel again: the job reads the stored object.

The ``inputs`` field is a JSON list, each entry one of::

    {"file": "<file id>"}                      a file of my library
    {"job": "<job id>", "output": "drums"}     a named output of my completed job (default: its
                                               first output)
    {"upload": 0}                              the first uploaded file, to place uploads among
                                               references (uploads not placed come first)

Someone else's file or job is a 404, exactly as for jobs. A reference is checked against the
kind's limits (audio only, formats, duration, size) as an upload would be.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from shared.errors import Conflict, FileTooLarge, InvalidInput, NotFound
from shared.library import dedupe_uploads, register
from shared.library_files import FileStore
from shared.registry import JobKind
from shared.services import Services
from shared.storage import StoredObject

MAX_REFS = 16


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="BAD_INPUT_REF", status=400)


def parse_inputs_field(raw: str | list | None) -> list[dict]:
    """The ``inputs`` form field as a list of reference entries; 400 with a sentence if not."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise InvalidInput(
                f"'inputs' is not valid JSON ({e.msg} at position {e.pos}).",
                code="BAD_INPUTS_JSON",
                status=400,
            ) from None
    if not isinstance(raw, list):
        raise InvalidInput(
            'inputs must be a JSON list, e.g. [{"file": "<id>"}, {"job": "<id>", "output": "mix"}].',
            code="BAD_INPUTS_JSON",
            status=400,
        )
    if len(raw) > MAX_REFS:
        raise _bad(f"At most {MAX_REFS} inputs may be given by reference.")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise _bad(f'inputs[{i}] must be an object such as {{"file": "<id>"}}.')
        keys = set(entry) - {"output"}
        if len(keys) != 1 or not keys <= {"file", "job", "upload"}:
            raise _bad(f"inputs[{i}] must have exactly one of 'file', 'job' or 'upload'.")
        if "output" in entry and "job" not in entry:
            raise _bad(f"inputs[{i}]: 'output' goes with 'job'.")
        if "upload" in entry and not (
            isinstance(entry["upload"], int) and not isinstance(entry["upload"], bool)
        ):
            raise _bad(f"inputs[{i}]: 'upload' is the 0-based index of an uploaded file.")
        out.append(entry)
    return out


def _uuid(value: Any, code: str, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound(f"No {what} with this id.", code=code) from None


def expand_id(services: Services, user_id: str, table: str, value: Any, code: str) -> str:
    """A full id, or the one id of mine starting with ``value`` (8+ hex characters, as the
    CLI prints them). 404 when none, 400 when several match."""
    what = "file" if table == "files" else "job"
    text = str(value).strip().lower()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        pass
    hexed = text.replace("-", "")
    if not re.fullmatch(r"[0-9a-f]{8,31}", hexed):
        raise NotFound(f"No {what} with this id.", code=code)
    with services.db.as_user(user_id) as conn:  # RLS: only my rows can match
        rows = conn.execute(
            f"select id from {table} where user_id = %s"
            " and replace(id::text, '-', '') like %s limit 2",
            (user_id, hexed + "%"),
        ).fetchall()
    if not rows:
        raise NotFound(f"No {what} with this id.", code=code)
    if len(rows) > 1:
        raise InvalidInput(
            f"'{value}' matches more than one {what}; give more characters.",
            code="AMBIGUOUS_ID",
            status=400,
        )
    return str(rows[0]["id"])


def _spec_from_file(row: dict, ref: dict) -> dict:
    return {
        "filename": row["name"],
        "bucket": row["bucket"],
        "path": row["path"],
        "size_bytes": int(row["size_bytes"]),
        "sha256": row["sha256"],
        "content_type": row["content_type"],
        "format": row.get("format"),
        "duration_s": row.get("duration_s"),
        "sample_rate": row.get("sample_rate"),
        "channels": row.get("channels"),
        "kind": row.get("kind"),
        "file_id": str(row["id"]),
        "ref": ref,
    }


def job_output_file(services: Services, user_id: str, job_id: str, output: str | None) -> dict:
    """The library file of a named output of my completed job (404 for someone else's)."""
    job = services.jobs.get(user_id, expand_id(services, user_id, "jobs", job_id, "JOB_NOT_FOUND"))
    if job["status"] != "completed":
        raise Conflict(
            f"The job is {job['status']}; its outputs can be used once it has completed.",
            code="JOB_NOT_COMPLETED",
        )
    outputs = job.get("outputs") or []
    chosen = outputs[0] if output is None and outputs else None
    if output is not None:
        chosen = next((o for o in outputs if o["name"] == output), None)
    if chosen is None:
        names = ", ".join(o["name"] for o in outputs) or "none"
        raise NotFound(
            f"The job has no output named '{output}'. Outputs: {names}.", code="OUTPUT_NOT_FOUND"
        )
    store = FileStore(services)
    if chosen.get("file_id"):
        return store.get(user_id, chosen["file_id"])
    # An output stored before the library existed: adopt its object now (no bytes move).
    with services.db.service() as conn:
        obj = conn.execute(
            "select metadata from storage.objects where bucket_id = %s and name = %s",
            (chosen["bucket"], chosen["path"]),
        ).fetchone()
    meta = (obj or {}).get("metadata") or {}
    if not meta.get("sha256"):
        raise NotFound(
            "That output no longer exists (it may have expired).", code="OUTPUT_NOT_FOUND"
        )
    return register(
        services,
        user_id,
        StoredObject(
            chosen["bucket"],
            chosen["path"],
            int(meta.get("size", 0)),
            meta["sha256"],
            chosen.get("content_type") or meta.get("mimetype") or "application/octet-stream",
        ),
        name=chosen.get("filename") or chosen["name"],
        source="output",
        job_id=str(job["id"]),
        output_name=chosen["name"],
        known=chosen.get("meta") or {},
    )


def resolve_ref(services: Services, user_id: str, entry: dict) -> dict:
    """One ``{"file": id}`` or ``{"job": id, "output": name}`` as a job input spec."""
    if "file" in entry:
        fid = expand_id(services, user_id, "files", entry["file"], "FILE_NOT_FOUND")
        row = FileStore(services).get(user_id, fid)
        return _spec_from_file(row, {"file": str(row["id"])})
    jid = expand_id(services, user_id, "jobs", entry["job"], "JOB_NOT_FOUND")
    row = job_output_file(services, user_id, jid, entry.get("output"))
    return _spec_from_file(row, {"job": jid, "output": entry.get("output") or row["output_name"]})


def check_for_kind(services: Services, kind: JobKind, spec: dict) -> None:
    """The limits an upload of this kind would meet, from what the library knows."""
    name = spec["filename"]
    max_mb = kind.max_file_mb or services.settings.max_upload_mb
    if spec["size_bytes"] > max_mb * 1024 * 1024:
        raise FileTooLarge(f"'{name}' is larger than the {max_mb:.0f} MB limit of this kind.")
    if not kind.audio_inputs:
        return
    if spec.get("kind") != "audio":
        raise InvalidInput(
            f"'{name}' is not audio; a '{kind.name}' job takes audio files.", code="NOT_AUDIO"
        )
    if kind.input_formats and spec.get("format") not in kind.input_formats:
        raise InvalidInput(
            f"'{name}' is {spec.get('format')}; a '{kind.name}' job takes "
            f"{', '.join(kind.input_formats)}.",
            code="UNSUPPORTED_FORMAT",
        )
    limit_s = kind.max_duration_s or services.settings.max_duration_s
    if (spec.get("duration_s") or 0) > limit_s:
        raise InvalidInput(
            f"'{name}' is {spec['duration_s'] / 60:.1f} minutes long; the limit is "
            f"{limit_s / 60:.0f} minutes.",
            code="TOO_LONG",
        )


@dataclass
class InputPlan:
    """Where each input of a job comes from, in order: an upload (by index) or a reference."""

    order: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.order)

    def merge(self, services: Services, user_id: str, uploaded: list[dict]) -> list[dict]:
        """The job's input specs in order; uploads the user already had point at that file."""
        specs = [uploaded[v] if what == "upload" else v for what, v in self.order]
        return dedupe_uploads(services, user_id, specs)


def plan_inputs(
    services: Services, user_id: str, kind: JobKind, raw: str | list | None, n_uploads: int
) -> InputPlan:
    """Resolve the references (404 for someone else's) and order them with the uploads."""
    entries = parse_inputs_field(raw)
    placed = [e["upload"] for e in entries if "upload" in e]
    if any(not 0 <= i < n_uploads for i in placed) or len(set(placed)) != len(placed):
        raise _bad(f"'upload' entries must name each of the {n_uploads} uploaded files once.")
    plan = InputPlan([("upload", i) for i in range(n_uploads) if i not in placed])
    for entry in entries:
        if "upload" in entry:
            plan.order.append(("upload", entry["upload"]))
            continue
        spec = resolve_ref(services, user_id, entry)
        check_for_kind(services, kind, spec)
        plan.order.append(("ref", spec))
    return plan
