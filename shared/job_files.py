"""The files of a running job: its inputs brought to local disk, and the outputs it keeps --
each stored, entered in the user's library and recorded on the job (one record shape, built in
one place). An earlier job's output can be attached again without copying (a content-hash cache
hit), fetched back to disk, or discarded once it served its purpose (video clips after
composition)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.context import InputFile, OutputFile
from shared.library import file_at, link_job, register_output
from shared.services import Services
from shared.storage import safe_filename


class JobFiles:
    """The inputs and outputs of job ``job_id`` of user ``user_id``."""

    def __init__(self, services: Services, job_id: str, user_id: str) -> None:
        self.services = services
        self.store = services.jobs
        self.job_id = job_id
        self.user_id = user_id

    def download_inputs(self, specs: list[dict[str, Any]], folder: Path) -> list[InputFile]:
        """Bring the job's inputs (``jobs.inputs``) to ``folder``, in order."""
        inputs = []
        for i, spec in enumerate(specs):
            dest = folder / f"{i}_{safe_filename(spec.get('filename', 'input'))}"
            self.services.storage.download(spec["bucket"], spec["path"], dest)
            inputs.append(
                InputFile(
                    path=dest,
                    filename=spec.get("filename", dest.name),
                    bucket=spec["bucket"],
                    object_path=spec["path"],
                    size_bytes=int(spec.get("size_bytes", 0)),
                    sha256=spec.get("sha256", ""),
                )
            )
        return inputs

    def _object_path(self, name: str, filename: str) -> str:
        return f"{self.user_id}/{self.job_id}/{safe_filename(name)}-{filename}"

    def keep(
        self,
        name: str,
        path: Path,
        *,
        bucket: str,
        content_type: str | None,
        filename: str | None,
        meta: dict[str, Any] | None,
    ) -> OutputFile:
        """Store the file at ``path`` as output ``name`` (see ``JobContext.output``)."""
        fname = safe_filename(filename or Path(path).name)
        obj_path = self._object_path(name, fname)
        stored = self.services.storage.put(
            bucket, obj_path, Path(path), owner=self.user_id, content_type=content_type
        )
        # Every output is a library file; bytes the user already has stay stored once.
        lib = register_output(
            self.services, self.user_id, self.job_id, name, stored, Path(path), fname, meta
        )
        if lib is not None:
            bucket, obj_path = lib["bucket"], lib["path"]
        return self._record(
            OutputFile(
                name=name,
                bucket=bucket,
                object_path=obj_path,
                content_type=stored.content_type,
                size_bytes=stored.size_bytes,
                filename=fname,
                meta=meta or {},
            ),
            file_id=str(lib["id"]) if lib is not None else None,
        )

    def reuse(self, name: str, stored: dict[str, Any]) -> OutputFile | None:
        """Attach an object an earlier job of this user stored (see ``JobContext.reuse_output``):
        a library file is linked, not copied; anything else is copied into this job's folder.
        None when the object is gone or not this user's."""
        src = stored.get("object_path") or stored.get("path")
        bucket = stored.get("bucket", "audio-outputs")
        if not src or not src.startswith(f"{self.user_id}/"):
            return None  # only ever the same user's objects
        meta = stored.get("meta") or {}
        row = file_at(self.services, self.user_id, bucket, src)
        if row is not None:
            link_job(self.services, self.job_id, self.user_id, str(row["id"]), "output", name)
            return self._record(
                OutputFile(
                    name=name,
                    bucket=bucket,
                    object_path=src,
                    content_type=row["content_type"],
                    size_bytes=int(row["size_bytes"]),
                    filename=row["name"],
                    meta=meta,
                ),
                file_id=str(row["id"]),
            )
        fname = safe_filename(stored.get("filename") or Path(src).name)
        obj_path = self._object_path(name, fname)
        copied = self.services.storage.copy(bucket, src, obj_path, owner=self.user_id)
        if copied is None:
            return None
        return self._record(
            OutputFile(
                name=name,
                bucket=bucket,
                object_path=obj_path,
                content_type=copied.content_type,
                size_bytes=copied.size_bytes,
                filename=fname,
                meta=meta,
            ),
            file_id=None,
        )

    def fetch(self, stored: dict[str, Any], dest: Path) -> Path | None:
        """Download an object this user stored earlier to ``dest``; None when it is gone or
        not this user's."""
        src = stored.get("object_path") or stored.get("path")
        if not src or not src.startswith(f"{self.user_id}/"):
            return None
        try:
            self.services.storage.download(stored.get("bucket", "audio-outputs"), src, dest)
        except Exception:  # noqa: BLE001 - a vanished cache object means: compute again
            return None
        return dest if dest.exists() else None

    def discard(self, names: Sequence[str]) -> list[str]:
        """Remove outputs ``names`` (their files and their records); returns those that were."""
        wanted = set(names)
        gone = [o for o in self.store.load(self.job_id)["outputs"] if o["name"] in wanted]
        by_bucket: dict[str, list[str]] = {}
        for o in gone:
            by_bucket.setdefault(o["bucket"], []).append(o["path"])
        for bucket, paths in by_bucket.items():
            self.services.storage.remove(bucket, paths)
        self.store.remove_outputs(self.job_id, list(names))
        return [o["name"] for o in gone]

    def _record(self, out: OutputFile, *, file_id: str | None) -> OutputFile:
        """Record ``out`` on the job (the one shape of a job's output record) and return it."""
        self.store.record_output(
            self.job_id,
            {
                "name": out.name,
                "bucket": out.bucket,
                "path": out.object_path,
                "filename": out.filename,
                "content_type": out.content_type,
                "size_bytes": out.size_bytes,
                "meta": out.meta,
                "file_id": file_id,
            },
        )
        return out
