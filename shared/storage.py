"""File storage: one interface, a local backend and a Supabase backend.

Offers ``Storage`` (``put`` streaming, ``open``, ``download``, ``signed_url``, ``remove``,
``usage``, ``expired``), ``LocalStorage`` (files under ``data_dir/storage`` + rows in
``storage.objects`` + HMAC-signed expiring URLs served by the app at ``/files/...``),
``SupabaseStorage`` (supabase-py's storage client with the service key) and ``BUCKETS``, the
retention policy. Object names are ``{user_id}/{job_id}/{file}``: the first folder is the owner,
which is what the storage RLS policy checks.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import os
import shutil
import time
import urllib.parse
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from psycopg.types.json import Jsonb

from shared.db import Database
from shared.errors import FileTooLarge, InvalidInput, NotFound

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Bucket:
    name: str
    retention_days: float | None
    signed_url_ttl_s: int = 3600
    note: str = ""


# The architecture's buckets and retention; supabase/config.toml declares the same buckets.
BUCKETS: dict[str, Bucket] = {
    b.name: b
    for b in (
        Bucket("audio-uploads", 14),
        Bucket("stems", 14),
        Bucket("audio-outputs", 14),
        Bucket("reference-images", 14),
        Bucket("video-clips", 7, note="deleted right after a successful composition"),
        Bucket("video-outputs", 14, signed_url_ttl_s=3600),
    )
}


@dataclass
class StoredObject:
    bucket: str
    path: str
    size_bytes: int
    sha256: str
    content_type: str


def safe_object_path(*parts: str) -> str:
    """Join path parts, refusing traversal and empty segments."""
    segs: list[str] = []
    for part in parts:
        for seg in str(part).split("/"):
            if seg in ("", ".", "..") or "\x00" in seg:
                raise InvalidInput("Invalid storage path.", code="BAD_PATH", status=400)
            segs.append(seg)
    return "/".join(segs)


def safe_filename(name: str, default: str = "file") -> str:
    """A filename safe to store: the basename, with anything odd replaced by '_'."""
    base = Path(name or default).name
    cleaned = "".join(c if c.isalnum() or c in "._- " else "_" for c in base).strip(" .")
    return cleaned[:120] or default


class Storage(ABC):
    def __init__(self, db: Database) -> None:
        self.db = db

    @abstractmethod
    def put(
        self,
        bucket: str,
        path: str,
        src: BinaryIO | Path,
        *,
        owner: str,
        content_type: str | None = None,
        max_bytes: int | None = None,
        sha256: str | None = None,
    ) -> StoredObject:
        """Store a stream or file; raises FileTooLarge past ``max_bytes`` (nothing is kept).

        ``sha256`` is the digest of a file ``src`` that its caller has already read (an upload
        hashed while it was spooled): the file is then not read again to hash it, and local
        storage takes it over by a hard link instead of a copy, so the caller must not write
        to it afterwards."""

    @abstractmethod
    def download(self, bucket: str, path: str, dest: Path) -> Path: ...

    @abstractmethod
    def signed_url(
        self, bucket: str, path: str, ttl_s: int | None = None, *, download_name: str | None = None
    ) -> str: ...

    @abstractmethod
    def _delete(self, bucket: str, paths: list[str]) -> None: ...

    @abstractmethod
    def copy(self, bucket: str, src: str, dest: str, *, owner: str) -> StoredObject | None:
        """Copy an object within a bucket; None when the source no longer exists."""

    def remove(self, bucket: str, paths: list[str]) -> int:
        """Delete objects (file and row); returns how many rows went."""
        if not paths:
            return 0
        self._delete(bucket, paths)
        return len(paths)

    def remove_prefix(self, owner: str, prefix: str) -> int:
        """Delete every object of ``owner`` whose name starts with ``prefix``, in all buckets
        (a job's files all live under ``{user_id}/{job_id}/``)."""
        with self.db.service() as conn:
            rows = conn.execute(
                "select bucket_id, name from storage.objects where owner = %s and name like %s",
                (owner, prefix.replace("%", r"\%").replace("_", r"\_") + "%"),
            ).fetchall()
        by_bucket: dict[str, list[str]] = {}
        for r in rows:
            by_bucket.setdefault(r["bucket_id"], []).append(r["name"])
        return sum(self.remove(bucket, names) for bucket, names in by_bucket.items())

    def usage(self, user_id: str) -> int:
        """Bytes stored by a user across all buckets."""
        with self.db.service() as conn:
            row = conn.execute(
                "select coalesce(sum((metadata->>'size')::bigint), 0) as n"
                " from storage.objects where owner = %s",
                (user_id,),
            ).fetchone()
        return int(row["n"])

    def expired(self, bucket: str, retention_days: float, limit: int = 1000) -> list[str]:
        with self.db.service() as conn:
            rows = conn.execute(
                "select name from storage.objects o where bucket_id = %s"
                " and created_at < now() - make_interval(secs => %s)"
                # library files have their own retention (shared.library.sweep_library)
                " and not exists (select 1 from public.files f"
                "   where f.bucket = o.bucket_id and f.path = o.name)"
                " order by created_at limit %s",
                (bucket, retention_days * 86400.0, limit),
            ).fetchall()
        return [r["name"] for r in rows]

    @staticmethod
    def _guess_type(path: str, content_type: str | None) -> str:
        return content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"


def copy_with_limit(src: BinaryIO, dst: BinaryIO, max_bytes: int | None) -> tuple[int, str]:
    """Copy in 1 MB chunks; returns (size, sha256). Raises FileTooLarge past ``max_bytes``."""
    h = hashlib.sha256()
    n = 0
    while chunk := src.read(CHUNK):
        n += len(chunk)
        if max_bytes is not None and n > max_bytes:
            raise FileTooLarge(
                f"The file is larger than the {max_bytes / 1024 / 1024:.0f} MB limit.",
                details={"max_bytes": max_bytes},
            )
        h.update(chunk)
        dst.write(chunk)
    return n, h.hexdigest()


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class LocalStorage(Storage):
    """Files under ``root``; ``storage.objects`` rows as Supabase keeps them; HMAC signed URLs."""

    def __init__(self, db: Database, root: Path, secret: bytes, base_url: str) -> None:
        super().__init__(db)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        self.secret = secret
        self.base_url = base_url.rstrip("/")

    def file_path(self, bucket: str, path: str) -> Path:
        if bucket not in BUCKETS:
            raise NotFound("No such bucket.")
        return self.root / bucket / safe_object_path(path)

    def put(
        self, bucket, path, src, *, owner, content_type=None, max_bytes=None, sha256=None
    ) -> StoredObject:
        dest = self.file_path(bucket, path)
        self._private_dir(dest.parent)
        tmp = dest.with_name(dest.name + ".part")
        try:
            if sha256 and isinstance(src, Path) and self._link(src, tmp, max_bytes):
                size, digest = tmp.stat().st_size, sha256
            else:
                # Owner-only (0600 files, 0700 folders): other accounts on the host read nothing.
                with open(tmp, "wb", opener=_private_opener) as out:
                    if isinstance(src, Path):
                        with open(src, "rb") as fh:
                            size, digest = copy_with_limit(fh, out, max_bytes)
                    else:
                        size, digest = copy_with_limit(src, out, max_bytes)
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)
        ctype = self._guess_type(path, content_type)
        meta = {"size": size, "mimetype": ctype, "sha256": digest}
        with self.db.service() as conn:
            conn.execute(
                "insert into storage.objects (bucket_id, name, owner, owner_id, metadata)"
                " values (%s, %s, %s, %s, %s) on conflict (bucket_id, name) do update"
                " set metadata = excluded.metadata, updated_at = now()",
                (bucket, path, owner, str(owner), Jsonb(meta)),
            )
        return StoredObject(bucket, path, size, digest, ctype)

    @staticmethod
    def _link(src: Path, tmp: Path, max_bytes: int | None) -> bool:
        """Hard-link an owner-only ``src`` of at most ``max_bytes`` to ``tmp``; False where
        the file is another's, shared, too large or on another file system (then it is
        copied)."""
        st = src.stat()
        if st.st_mode & 0o077 or (max_bytes is not None and st.st_size > max_bytes):
            return False
        try:
            os.link(src, tmp)
        except OSError:
            return False
        return True

    def _private_dir(self, folder: Path) -> None:
        missing = []
        while folder != self.root and not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for d in reversed(missing):
            d.mkdir(mode=0o700, exist_ok=True)
            d.chmod(0o700)  # mkdir's mode is filtered by the umask

    def download(self, bucket: str, path: str, dest: Path) -> Path:
        src = self.file_path(bucket, path)
        if not src.exists():
            raise NotFound("The file no longer exists (it may have expired).")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest

    def copy(self, bucket: str, src: str, dest: str, *, owner: str) -> StoredObject | None:
        source = self.file_path(bucket, src)
        if not source.exists():
            return None
        with self.db.service() as conn:
            row = conn.execute(
                "select metadata from storage.objects where bucket_id = %s and name = %s",
                (bucket, src),
            ).fetchone()
        ctype = (row["metadata"] or {}).get("mimetype") if row else None
        return self.put(bucket, dest, source, owner=owner, content_type=ctype)

    def _sign(self, bucket: str, path: str, expires: int, download_name: str) -> str:
        msg = f"{bucket}\n{path}\n{expires}\n{download_name}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    def signed_url(self, bucket, path, ttl_s=None, *, download_name=None) -> str:
        ttl = ttl_s or BUCKETS[bucket].signed_url_ttl_s
        expires = int(time.time()) + int(ttl)
        name = download_name or ""
        q = {"expires": str(expires), "sig": self._sign(bucket, path, expires, name)}
        if name:
            q["download"] = name
        quoted = urllib.parse.quote(path)
        return f"{self.base_url}/files/{bucket}/{quoted}?{urllib.parse.urlencode(q)}"

    def verify(self, bucket: str, path: str, expires: int, sig: str, download_name: str) -> bool:
        if expires < time.time() or not sig.isascii():
            return False
        try:
            (bucket + path + download_name).encode("utf-8")
        except UnicodeEncodeError:
            return False
        good = self._sign(bucket, path, expires, download_name)
        return hmac.compare_digest(good, sig)

    def _delete(self, bucket: str, paths: list[str]) -> None:
        with self.db.service() as conn, conn.transaction():
            # The storage API is the one place allowed to delete rows (see the shim's guard).
            conn.execute("set local storage.allow_delete_query = 'true'")
            conn.execute(
                "delete from storage.objects where bucket_id = %s and name = any(%s)",
                (bucket, paths),
            )
        for p in paths:
            self.file_path(bucket, p).unlink(missing_ok=True)


class SupabaseStorage(Storage):
    """Supabase Storage through supabase-py with the service key (never a user's session)."""

    def __init__(self, db: Database, url: str, service_key: str, http_client=None) -> None:
        super().__init__(db)
        from storage3 import SyncStorageClient

        self.client = SyncStorageClient(
            f"{url.rstrip('/')}/storage/v1/",
            {"apikey": service_key, "Authorization": f"Bearer {service_key}"},
            http_client=http_client,
        )

    def put(
        self, bucket, path, src, *, owner, content_type=None, max_bytes=None, sha256=None
    ) -> StoredObject:
        import tempfile

        ctype = self._guess_type(path, content_type)
        size = src.stat().st_size if sha256 and isinstance(src, Path) else None
        if size is not None and (max_bytes is None or size <= max_bytes):
            # Already hashed and size-checked by the caller: stream the file as it is.
            self.client.from_(bucket).upload(path, src, {"content-type": ctype, "upsert": "true"})
            return StoredObject(bucket, path, size, sha256, ctype)
        # Hash and size-check while spooling to disk, then let the client stream the file.
        with tempfile.NamedTemporaryFile(suffix=".upload") as tmp:
            if isinstance(src, Path):
                with open(src, "rb") as fh:
                    size, digest = copy_with_limit(fh, tmp, max_bytes)
            else:
                size, digest = copy_with_limit(src, tmp, max_bytes)
            tmp.flush()
            self.client.from_(bucket).upload(
                path, Path(tmp.name), {"content-type": ctype, "upsert": "true"}
            )
        return StoredObject(bucket, path, size, digest, ctype)

    def download(self, bucket: str, path: str, dest: Path) -> Path:
        data = self.client.from_(bucket).download(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return dest

    def signed_url(self, bucket, path, ttl_s=None, *, download_name=None) -> str:
        ttl = ttl_s or BUCKETS[bucket].signed_url_ttl_s
        opts = {"download": download_name} if download_name else None
        res = self.client.from_(bucket).create_signed_url(path, ttl, opts)
        return res["signedURL"] if isinstance(res, dict) else res.signed_url

    def _delete(self, bucket: str, paths: list[str]) -> None:
        self.client.from_(bucket).remove(paths)

    def copy(self, bucket: str, src: str, dest: str, *, owner: str) -> StoredObject | None:
        from storage3.exceptions import StorageApiError

        try:
            self.client.from_(bucket).copy(src, dest)
        except StorageApiError:
            return None
        with self.db.service() as conn:
            row = conn.execute(
                "select metadata from storage.objects where bucket_id = %s and name = %s",
                (bucket, dest),
            ).fetchone()
        meta = (row or {}).get("metadata") or {}
        return StoredObject(
            bucket,
            dest,
            int(meta.get("size", 0)),
            meta.get("sha256", ""),
            meta.get("mimetype", "application/octet-stream"),
        )


def open_storage(settings, db: Database) -> Storage:
    if settings.storage_backend == "supabase":
        return SupabaseStorage(db, settings.supabase_url, settings.supabase_service_key)
    return LocalStorage(
        db, settings.data_dir / "storage", signing_secret(settings), settings.base_url
    )


def signing_secret(settings) -> bytes:
    """The HMAC key for local signed URLs: configured, or generated once under data_dir."""
    if settings.signing_secret:
        return settings.signing_secret.encode()
    import secrets

    path = Path(settings.data_dir) / "keys" / "url-signing.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()
