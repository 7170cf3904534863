"""A commit as a zip, streamed: ``mix.<ext>``, ``stems/<name>.<ext>`` and ``manifest.json``.

The archive is written into a sink that the response drains chunk by chunk (zipfile writes data
descriptors when its output cannot seek), so a commit of large stems never sits whole in
memory. Audio is stored, not deflated: it is compressed already or does not shrink much.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from shared.projects import MIX
from shared.services import Services

CHUNK = 1024 * 1024


class _Sink(io.RawIOBase):
    """A write-only, non-seekable stream whose written bytes are taken out as they come."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


def _suffix(row: dict) -> str:
    fmt = row.get("format")
    if fmt:
        return "." + fmt
    return Path(row["name"]).suffix or ".bin"


def archive_names(files: list[dict]) -> dict[str, str]:
    """The path of each snapshot slot inside the archive."""
    return {
        r["slot"]: (f"mix{_suffix(r)}" if r["slot"] == MIX else f"stems/{r['slot']}{_suffix(r)}")
        for r in files
    }


def manifest(project: dict, commit: dict, files: list[dict]) -> dict:
    names = archive_names(files)

    def iso(v):
        return v.isoformat() if isinstance(v, dt.datetime) else v

    return {
        "project": {"id": str(project["id"]), "name": project["name"]},
        "commit": {
            "id": str(commit["id"]),
            "message": commit["message"],
            "author_email": commit.get("author_email"),
            "parents": [str(p) for p in commit["parent_ids"]],
            "created_at": iso(commit["created_at"]),
            "metadata": commit["metadata"],
        },
        "files": [
            {
                "slot": r["slot"],
                "role": r["role"],
                "path": names[r["slot"]],
                "name": r["name"],
                "file_id": str(r["id"]),
                "sha256": r["sha256"],
                "size_bytes": int(r["size_bytes"]),
                "duration_s": r.get("duration_s"),
                "sample_rate": r.get("sample_rate"),
                "channels": r.get("channels"),
            }
            for r in files
        ],
    }


def stream_commit_zip(
    services: Services, project: dict, commit: dict, files: list[dict]
) -> Iterator[bytes]:
    """Yield the zip archive of a commit piece by piece."""
    sink = _Sink()
    names = archive_names(files)
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:
        for r in sorted(files, key=lambda r: (r["slot"] != MIX, r["slot"])):
            with tempfile.TemporaryDirectory(prefix="export-") as tmp:
                local = services.storage.download(r["bucket"], r["path"], Path(tmp) / "f")
                info = zipfile.ZipInfo(names[r["slot"]], date_time=_zip_time(r))
                with open(local, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                    while chunk := src.read(CHUNK):
                        dst.write(chunk)
                        yield sink.take()
            yield sink.take()
        body = json.dumps(manifest(project, commit, files), indent=2).encode()
        zf.writestr("manifest.json", body, compress_type=zipfile.ZIP_DEFLATED)
    yield sink.take()


def _zip_time(row: dict) -> tuple[int, int, int, int, int, int]:
    t = row.get("created_at")
    if not isinstance(t, dt.datetime) or t.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (t.year, t.month, t.day, t.hour, t.minute, t.second)
