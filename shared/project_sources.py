"""What a commit is made of: uploads, library files and job outputs in one request.

The commit request names the snapshot's changes as JSON (the ``snapshot`` form field)::

    {"from_job": "<job id>",                         every output of a job: its main audio as
                                                     the mix, its stem outputs as stems
     "mix": {"job": "<id>", "output": "master"},     or {"file": id} or {"upload": 0}
     "stems": {"drums": {"file": "<id>"}, "vox": {"upload": 1}},
     "remove": ["other"],                            stems to drop from the parent's snapshot
     "replace": false}                               true: start from nothing, not the parent

and the commit's metadata as JSON (``metadata``): ``bpm``, ``key``, ``time_signature``,
``duration_s``, ``loudness_lufs``, ``tags``. What is not given is inherited from the parent;
a new mix brings its own duration and loudness (measured once per file and kept); a job brings
its result's tempo and key.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.auth import User
from shared.errors import InvalidInput
from shared.input_refs import expand_id, job_output_file
from shared.library import forget_new_file, store_upload
from shared.library_files import FileStore
from shared.projects import MIX, check_stem_name
from shared.services import Services
from shared.submit import Upload

# Output names a job's main audio goes by, most specific first.
MAIN_OUTPUTS = ("master", "mashup", "mix", "track", "blend", "converted")


class SourceRef(BaseModel):
    """Exactly one of: a library file, a job's output, an uploaded file (index in ``files``)."""

    model_config = ConfigDict(extra="forbid")
    file: str | None = None
    job: str | None = None
    output: str | None = None
    upload: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one(self) -> SourceRef:
        given = [k for k in ("file", "job", "upload") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'file', 'job' or 'upload'")
        if self.output is not None and self.job is None:
            raise ValueError("'output' goes with 'job'")
        return self


class SnapshotChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_job: str | None = None
    mix: SourceRef | None = None
    stems: dict[str, SourceRef] = Field(default_factory=dict, max_length=32)
    remove: list[str] = Field(default_factory=list, max_length=32)
    replace: bool = False


class CommitMetadata(BaseModel):
    """Facts about a commit's music; every field optional (inherited from the parent)."""

    model_config = ConfigDict(extra="forbid")
    bpm: float | None = Field(None, ge=20, le=400)
    key: str | None = Field(None, max_length=24)
    time_signature: str | None = Field(None, pattern=r"^\d{1,2}/\d{1,2}$")
    duration_s: float | None = Field(None, ge=0)
    loudness_lufs: float | None = Field(None, ge=-120, le=10)
    tags: list[str] | None = Field(None, max_length=20)


def _json_model(model: type[BaseModel], raw: str | dict | None, field: str) -> BaseModel:
    if raw is None or raw == "":
        return model()
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as e:
        raise InvalidInput(
            f"'{field}' is not valid JSON ({e.msg} at position {e.pos}).",
            code="BAD_JSON",
            status=400,
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or field
        msg = first.get("msg", "invalid").removeprefix("Value error, ")
        raise InvalidInput(
            f"Invalid '{field}' at '{where}': {msg}.",
            code=f"BAD_{field.upper()}",
            status=422,
        ) from None


def parse_snapshot(raw: str | dict | None) -> SnapshotChanges:
    return _json_model(SnapshotChanges, raw, "snapshot")  # type: ignore[return-value]


def parse_metadata(raw: str | dict | None) -> CommitMetadata:
    return _json_model(CommitMetadata, raw, "metadata")  # type: ignore[return-value]


def _main_and_stems(job: dict) -> tuple[str | None, list[str]]:
    audio = [
        o
        for o in job.get("outputs") or []
        if str(o.get("content_type", "")).startswith("audio/") and "midi" not in o["content_type"]
    ]
    stems = [o["name"] for o in audio if o.get("bucket") == "stems"]
    rest = [o["name"] for o in audio if o.get("bucket") != "stems"]
    main = next((n for n in MAIN_OUTPUTS if n in rest), rest[0] if rest else None)
    return main, stems


def _job_facts(job: dict) -> dict[str, Any]:
    r = job.get("result") or {}
    bpm = r.get("bpm") or r.get("tempo_bpm") or r.get("target_tempo_bpm")
    key = r.get("key") or r.get("target_key")
    facts = {"bpm": bpm, "key": key, "time_signature": r.get("time_signature")}
    return {k: v for k, v in facts.items() if v is not None}


def mix_facts(services: Services, row: dict) -> dict[str, Any]:
    """Duration and integrated loudness of a mix; the loudness is measured once per file."""
    facts: dict[str, Any] = {"duration_s": row.get("duration_s")}
    lufs = row.get("loudness_lufs")
    if lufs is None and row.get("kind") == "audio":
        with tempfile.TemporaryDirectory(prefix="mix-") as tmp:
            local = services.storage.download(row["bucket"], row["path"], Path(tmp) / "mix")
            value, duration_s = services.audio.file_loudness(local)
            facts["duration_s"] = facts["duration_s"] or round(duration_s, 3)
        if value != float("-inf"):
            lufs = round(value, 2)
            with services.db.service() as conn:
                conn.execute("update files set loudness_lufs = %s where id = %s", (lufs, row["id"]))
    facts["loudness_lufs"] = lufs
    return {k: v for k, v in facts.items() if v is not None}


class ResolvedSnapshot:
    """The changes as file ids, facts for the metadata, and the files this request created
    (removed again if the commit does not land)."""

    def __init__(self) -> None:
        self.changes: dict[str, str | None] = {}
        self.facts: dict[str, Any] = {}
        self.created: list[dict] = []
        self.uploaded: dict[int, dict] = {}
        self.replace = False

    def forget_created(self, services: Services) -> None:
        for row in self.created:
            forget_new_file(services, row)


def resolve_snapshot(
    services: Services, user: User, req: SnapshotChanges, uploads: list[Upload]
) -> ResolvedSnapshot:
    """Turn the request's sources into library file ids (storing uploads in the library)."""
    out = ResolvedSnapshot()
    out.replace = req.replace
    rows: dict[str, dict] = {}
    try:
        if req.from_job:
            jid = expand_id(services, user.id, "jobs", req.from_job, "JOB_NOT_FOUND")
            job = services.jobs.get(user.id, jid)
            main, stems = _main_and_stems(job)
            if main is None and not stems:
                raise InvalidInput("That job has no audio outputs to commit.", code="NO_AUDIO")
            for slot, name in ([(MIX, main)] if main else []) + [(s, s) for s in stems]:
                rows[slot] = job_output_file(services, user.id, str(job["id"]), name)
            out.facts.update(_job_facts(job))
        named = dict(req.stems)
        for name in named:
            check_stem_name(name)
        if req.mix is not None:
            named[MIX] = req.mix
        for slot, ref in named.items():
            rows[slot] = _resolve_source(services, user, ref, uploads, out)
        for slot, row in rows.items():
            if row.get("kind") != "audio":
                raise InvalidInput(
                    f"'{row['name']}' is not audio; a commit holds a mix and stems.",
                    code="NOT_AUDIO",
                )
            out.changes[slot] = str(row["id"])
        for name in req.remove:
            if name in out.changes:
                raise InvalidInput(
                    f"'{name}' is both set and removed in this commit.", code="BAD_SNAPSHOT"
                )
            out.changes[name] = None
        if MIX in rows:
            out.facts.update(mix_facts(services, rows[MIX]))
    except BaseException:
        out.forget_created(services)
        raise
    return out


def _resolve_source(
    services: Services, user: User, ref: SourceRef, uploads: list[Upload], out: ResolvedSnapshot
) -> dict:
    if ref.file is not None:
        fid = expand_id(services, user.id, "files", ref.file, "FILE_NOT_FOUND")
        return FileStore(services).get(user.id, fid)
    if ref.job is not None:
        return job_output_file(services, user.id, ref.job, ref.output)
    if ref.upload is None or ref.upload >= len(uploads):
        raise InvalidInput(
            f"'upload': {ref.upload} names no uploaded file ({len(uploads)} were sent).",
            code="BAD_SNAPSHOT",
            status=400,
        )
    if ref.upload in out.uploaded:  # one upload may fill two slots; its stream is read once
        return out.uploaded[ref.upload]
    up = uploads[ref.upload]
    row, created = store_upload(services, user.id, up.filename, up.stream, up.content_type)
    if created:
        out.created.append(row)
    out.uploaded[ref.upload] = row
    return row
