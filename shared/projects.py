"""Projects: version control for audio, as SQL on the real database.

A project (name, description, public or private, owner) holds commits: a message, an author, a
time, one parent (two for a merge) and a snapshot -- named library files (``mix`` plus stems)
and metadata (bpm, key, time signature, duration, loudness, tags). Commits form a DAG; branches
are named pointers. A commit is addressed by id (or a unique prefix of 7+ characters), by a
branch name, or ``branch~N`` (N first parents back).

Every write runs in one transaction *as the user* (``db.as_user``), so the row-level security
of the migration -- owner-only writes, private projects invisible -- holds even if a check here
were wrong; a commit lands with all its files or not at all. Moving a branch is a
compare-and-set on its head: of two writers committing on one branch at once, the second gets
409 ``BRANCH_MOVED`` and nothing of its commit is kept.

Merges, reverts, forks and diffs live in ``shared.project_merge``; building a snapshot from
uploads, library files and job outputs in ``shared.project_sources``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.auth import User
from shared.errors import Conflict, InvalidInput, NotFound, SoundstageError
from shared.services import Services

BRANCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$")
STEM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}$")
REF_RE = re.compile(r"^(?P<base>[^~\s]+)(?:~(?P<n>\d{1,6}))?$")
MIX = "mix"  # the snapshot slot of the mix; every other name is a stem


class Forbidden(SoundstageError):
    code = "FORBIDDEN"
    status = 403


def project_id(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound("No project with this id.", code="PROJECT_NOT_FOUND") from None


def check_branch_name(name: str) -> str:
    if not BRANCH_RE.match(name or ""):
        raise InvalidInput(
            "A branch name is 1-60 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit.",
            code="BAD_BRANCH_NAME",
            status=400,
        )
    return name


def check_stem_name(name: str) -> str:
    if name == MIX or not STEM_RE.match(name or ""):
        raise InvalidInput(
            f"'{name}' is not a stem name: use 1-60 letters, digits, spaces, '.', '_' or '-' "
            "(and not 'mix', which is the mix).",
            code="BAD_STEM_NAME",
            status=400,
        )
    return name


class ProjectStore:
    """Projects, commits, refs and branches. Methods named ``_x(conn, ...)`` run inside the
    caller's transaction so that larger writes (merge, revert) compose atomically."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.db = services.db

    # -- projects -------------------------------------------------------------------------------

    def create(self, user: User, name: str, description: str = "", is_public: bool = False):
        try:
            with self.db.as_user(user.id) as conn:
                return conn.execute(
                    "insert into projects (user_id, name, description, is_public)"
                    " values (%s, %s, %s, %s) returning *",
                    (user.id, name.strip(), description, is_public),
                ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise Conflict(
                f"You already have a project named '{name}'.", code="PROJECT_NAME_TAKEN"
            ) from None

    def list(
        self, user_id: str, scope: str = "all", q: str | None = None, limit=50, offset=0
    ) -> tuple[list[dict], int]:
        where, args = ["true"], []
        if scope == "mine":
            where.append("p.user_id = %s")
            args.append(user_id)
        elif scope == "public":
            where.append("p.is_public")
        if q:
            where.append("p.name ilike %s")
            args.append("%" + q.replace("%", r"\%").replace("_", r"\_") + "%")
        cond = " and ".join(where)
        with self.db.as_user(user_id) as conn:  # RLS: mine and public ones only
            total = conn.execute(f"select count(*) as n from projects p where {cond}", args)
            total = total.fetchone()["n"]
            rows = conn.execute(
                f"select p.*, {self._counts} from projects p where {cond}"
                " order by p.updated_at desc, p.id limit %s offset %s",
                [*args, limit, offset],
            ).fetchall()
        return rows, int(total)

    _counts = (
        "(select count(*) from commits c where c.project_id = p.id) as commit_count,"
        " (select count(*) from branches b where b.project_id = p.id) as branch_count"
    )

    def get(self, user_id: str, pid: str) -> dict:
        with self.db.as_user(user_id) as conn:
            return self._readable(conn, pid)

    def _readable(self, conn, pid: str) -> dict:
        row = conn.execute(
            f"select p.*, {self._counts} from projects p where p.id = %s", (project_id(pid),)
        ).fetchone()
        if row is None:
            raise NotFound("No project with this id.", code="PROJECT_NOT_FOUND")
        return row

    def _owned(self, conn, user_id: str, pid: str) -> dict:
        row = self._readable(conn, pid)
        if str(row["user_id"]) != str(user_id):
            raise Forbidden(
                "This public project belongs to someone else; fork it to make changes.",
                code="NOT_PROJECT_OWNER",
            )
        return row

    def require_owner(self, user_id: str, pid: str) -> dict:
        """The project, if the user owns it (404 when unreadable, 403 when someone else's)."""
        with self.db.as_user(user_id) as conn:
            return self._owned(conn, user_id, pid)

    def update(self, user_id: str, pid: str, **fields: Any) -> dict:
        sets = {k: v for k, v in fields.items() if v is not None}
        pid = project_id(pid)
        try:
            with self.db.as_user(user_id) as conn:
                self._owned(conn, user_id, pid)
                if "default_branch" in sets:
                    self._branch_head(conn, pid, sets["default_branch"])
                if sets:
                    cols = ", ".join(f"{k} = %s" for k in sets)
                    conn.execute(
                        f"update projects set {cols}, updated_at = now() where id = %s",
                        [*sets.values(), pid],
                    )
                return self._readable(conn, pid)
        except psycopg.errors.UniqueViolation:
            raise Conflict(
                f"You already have a project named '{sets.get('name')}'.",
                code="PROJECT_NAME_TAKEN",
            ) from None

    def delete(self, user_id: str, pid: str) -> dict:
        with self.db.as_user(user_id) as conn:
            row = self._owned(conn, user_id, pid)
            conn.execute("delete from projects where id = %s", (row["id"],))
        return row

    # -- refs and snapshots ---------------------------------------------------------------------

    def _branch_head(self, conn, pid: str, name: str) -> str:
        row = conn.execute(
            "select head_id from branches where project_id = %s and name = %s", (pid, name)
        ).fetchone()
        if row is None:
            raise NotFound(f"No branch named '{name}'.", code="BRANCH_NOT_FOUND")
        return str(row["head_id"])

    def _resolve(self, conn, pid: str, ref: str) -> dict:
        """A commit row from an id, a unique id prefix, a branch, or ``branch~N``."""
        m = REF_RE.match((ref or "").strip())
        if not m:
            raise NotFound(f"'{ref}' is not a commit, branch or branch~N.", code="REF_NOT_FOUND")
        base, back = m["base"], int(m["n"] or 0)
        start = conn.execute(
            "select head_id from branches where project_id = %s and name = %s", (pid, base)
        ).fetchone()
        if start is not None:
            cid = str(start["head_id"])
        else:
            hexed = base.lower().replace("-", "")
            if not re.fullmatch(r"[0-9a-f]{7,32}", hexed):
                raise NotFound(f"No branch or commit '{base}'.", code="REF_NOT_FOUND")
            rows = conn.execute(
                "select id from commits where project_id = %s and replace(id::text, '-', '')"
                " like %s limit 2",
                (pid, hexed + "%"),
            ).fetchall()
            if not rows:
                raise NotFound(f"No branch or commit '{base}'.", code="REF_NOT_FOUND")
            if len(rows) > 1:
                raise InvalidInput(
                    f"'{base}' matches more than one commit; give more characters.",
                    code="AMBIGUOUS_REF",
                    status=400,
                )
            cid = str(rows[0]["id"])
        if back:
            row = conn.execute(
                "with recursive walk(id, depth) as (select %s::uuid, 0 union all"
                " select c.parent_ids[1], w.depth + 1 from commits c join walk w"
                " on c.project_id = %s and c.id = w.id"
                " where w.depth < %s and cardinality(c.parent_ids) > 0)"
                " select id from walk where depth = %s",
                (cid, pid, back, back),
            ).fetchone()
            if row is None:
                raise NotFound(f"'{ref}' goes back past the first commit.", code="REF_NOT_FOUND")
            cid = str(row["id"])
        return conn.execute(
            "select * from commits where project_id = %s and id = %s", (pid, cid)
        ).fetchone()

    def _snapshot(self, conn, pid: str, commit_id: str | None) -> dict[str, str]:
        """``{"mix": file_id, "<stem>": file_id, ...}`` of a commit ({} for none)."""
        if commit_id is None:
            return {}
        rows = conn.execute(
            "select name, file_id from commit_files where project_id = %s and commit_id = %s",
            (pid, commit_id),
        ).fetchall()
        return {r["name"]: str(r["file_id"]) for r in rows}

    def commit_files(self, conn, pid: str, commit_ids: list[str]) -> dict[str, list[dict]]:
        """The files of commits (as readers see them), by commit id."""
        rows = conn.execute(
            "select f.*, cf.commit_id, cf.name as slot, cf.role from commit_files cf"
            " join files f on f.id = cf.file_id"
            " where cf.project_id = %s and cf.commit_id = any(%s)"
            " order by cf.role, cf.name",
            (pid, commit_ids),
        ).fetchall()
        out: dict[str, list[dict]] = {}
        for r in rows:
            out.setdefault(str(r["commit_id"]), []).append(r)
        return out

    def get_commit(self, user_id: str, pid: str, ref: str) -> tuple[dict, dict, list[dict]]:
        """(project, commit, files) of a ref in a project the user can read."""
        with self.db.as_user(user_id) as conn:
            project = self._readable(conn, pid)
            commit = self._resolve(conn, project_id(pid), ref)
            files = self.commit_files(conn, project_id(pid), [str(commit["id"])])
        return project, commit, files.get(str(commit["id"]), [])

    # -- writing commits ------------------------------------------------------------------------

    def _write_commit(
        self,
        conn,
        user: User,
        pid: str,
        parents: list[str],
        message: str,
        snapshot: dict[str, str],
        metadata: dict,
    ) -> dict:
        if not snapshot:
            raise InvalidInput(
                "A commit needs a mix or at least one stem.", code="EMPTY_COMMIT", status=422
            )
        message = (message or "").strip()
        if not 1 <= len(message) <= 2000:
            raise InvalidInput(
                "A commit message is 1-2000 characters.", code="BAD_MESSAGE", status=422
            )
        row = conn.execute(
            "insert into commits (project_id, user_id, author_id, author_email, message,"
            " parent_ids, metadata) values (%s, %s, %s, %s, %s, %s, %s) returning *",
            (pid, user.id, user.id, user.email, message, parents, Jsonb(metadata)),
        ).fetchone()
        with conn.cursor() as cur:
            cur.executemany(
                "insert into commit_files (project_id, commit_id, user_id, role, name, file_id)"
                " values (%s, %s, %s, %s, %s, %s)",
                [
                    (pid, row["id"], user.id, "mix" if name == MIX else "stem", name, fid)
                    for name, fid in sorted(snapshot.items())
                ],
            )
        conn.execute("update projects set updated_at = now() where id = %s", (pid,))
        return row

    def _move_branch(
        self, conn, user: User, pid: str, branch: str, old: str | None, new: str
    ) -> None:
        """Compare-and-set: the branch moves only if its head is still ``old``."""
        if old is None:
            row = conn.execute(
                "insert into branches (project_id, name, user_id, head_id)"
                " values (%s, %s, %s, %s) on conflict do nothing returning name",
                (pid, branch, user.id, new),
            ).fetchone()
        else:
            row = conn.execute(
                "update branches set head_id = %s, updated_at = now()"
                " where project_id = %s and name = %s and head_id = %s returning name",
                (new, pid, branch, old),
            ).fetchone()
        if row is None:
            raise Conflict(
                f"Branch '{branch}' moved while this commit was being made (someone else "
                "committed first); nothing was changed. Look at the new head and try again.",
                code="BRANCH_MOVED",
                details={"branch": branch},
            )

    def commit(
        self,
        user: User,
        pid: str,
        *,
        message: str,
        changes: dict[str, str | None],
        metadata: dict,
        branch: str | None = None,
        expected_head: str | None = None,
        replace: bool = False,
    ) -> dict:
        """Commit on a branch: the parent's snapshot with ``changes`` applied (a file id sets
        a slot, None removes it; ``replace`` starts from nothing) and the parent's metadata
        updated with ``metadata``. The first commit of a project creates its branch."""
        pid = project_id(pid)
        with self.db.as_user(user.id) as conn:
            project = self._owned(conn, user.id, pid)
            branch = check_branch_name(branch or project["default_branch"])
            head = conn.execute(
                "select head_id from branches where project_id = %s and name = %s", (pid, branch)
            ).fetchone()
            head_id = str(head["head_id"]) if head else None
            if head_id is None and project["commit_count"]:
                raise NotFound(
                    f"No branch named '{branch}'; create it first.", code="BRANCH_NOT_FOUND"
                )
            if expected_head and not (head_id or "").startswith(expected_head.lower()):
                raise Conflict(
                    f"Branch '{branch}' is at {head_id or 'no commit'}, not {expected_head}; "
                    "nothing was changed.",
                    code="BRANCH_MOVED",
                    details={"branch": branch, "head": head_id},
                )
            parent_meta: dict = {}
            if head_id:
                parent_meta = conn.execute(
                    "select metadata from commits where project_id = %s and id = %s",
                    (pid, head_id),
                ).fetchone()["metadata"]
            snap = {} if replace else self._snapshot(conn, pid, head_id)
            for name, fid in changes.items():
                if fid is None:
                    snap.pop(name, None)
                else:
                    snap[name] = fid
            meta = {**parent_meta, **{k: v for k, v in metadata.items() if v is not None}}
            row = self._write_commit(
                conn, user, pid, [head_id] if head_id else [], message, snap, meta
            )
            self._move_branch(conn, user, pid, branch, head_id, str(row["id"]))
        return row

    # -- history --------------------------------------------------------------------------------

    def log(
        self, user_id: str, pid: str, ref: str | None, limit: int = 50, offset: int = 0
    ) -> tuple[dict, list[dict], int]:
        """Ancestors of ``ref`` (default: the default branch), newest first."""
        with self.db.as_user(user_id) as conn:
            project = self._readable(conn, pid)
            pid = str(project["id"])
            if not project["commit_count"]:
                return project, [], 0
            head = self._resolve(conn, pid, ref or project["default_branch"])
            rows = conn.execute(
                "with recursive anc(id) as (select %s::uuid union"
                " select p from commits c join anc on c.project_id = %s and c.id = anc.id,"
                " unnest(c.parent_ids) p)"
                " select c.*, count(*) over () as total from commits c join anc on c.id = anc.id"
                " where c.project_id = %s order by c.seq desc limit %s offset %s",
                (head["id"], pid, pid, limit, offset),
            ).fetchall()
        total = int(rows[0]["total"]) if rows else 0
        return project, rows, total

    def tree(self, user_id: str, pid: str) -> tuple[dict, list[dict], list[dict]]:
        """Every commit (oldest first, parents before children) and every branch head."""
        with self.db.as_user(user_id) as conn:
            project = self._readable(conn, pid)
            pid = str(project["id"])
            commits = conn.execute(
                "select id, parent_ids, message, author_email, created_at, metadata"
                " from commits where project_id = %s order by seq",
                (pid,),
            ).fetchall()
            branches = self._branches(conn, pid)
        return project, commits, branches

    # -- branches -------------------------------------------------------------------------------

    def _branches(self, conn, pid: str) -> list[dict]:
        return conn.execute(
            "select name, head_id, created_at, updated_at from branches where project_id = %s"
            " order by name",
            (pid,),
        ).fetchall()

    def branches(self, user_id: str, pid: str) -> tuple[dict, list[dict]]:
        with self.db.as_user(user_id) as conn:
            project = self._readable(conn, pid)
            return project, self._branches(conn, str(project["id"]))

    def create_branch(self, user_id: str, pid: str, name: str, start: str | None) -> dict:
        check_branch_name(name)
        pid = project_id(pid)
        try:
            with self.db.as_user(user_id) as conn:
                project = self._owned(conn, user_id, pid)
                if not project["commit_count"]:
                    raise Conflict(
                        "This project has no commits yet; the first commit creates its "
                        f"'{project['default_branch']}' branch.",
                        code="EMPTY_PROJECT",
                    )
                commit = self._resolve(conn, pid, start or project["default_branch"])
                return conn.execute(
                    "insert into branches (project_id, name, user_id, head_id)"
                    " values (%s, %s, %s, %s) returning name, head_id, created_at, updated_at",
                    (pid, name, user_id, commit["id"]),
                ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise Conflict(f"A branch named '{name}' exists.", code="BRANCH_EXISTS") from None

    def delete_branch(self, user_id: str, pid: str, name: str) -> None:
        pid = project_id(pid)
        with self.db.as_user(user_id) as conn:
            project = self._owned(conn, user_id, pid)
            if name == project["default_branch"]:
                raise Conflict(
                    f"'{name}' is the project's default branch; it cannot be deleted.",
                    code="DEFAULT_BRANCH",
                )
            gone = conn.execute(
                "delete from branches where project_id = %s and name = %s returning name",
                (pid, name),
            ).fetchone()
            if gone is None:
                raise NotFound(f"No branch named '{name}'.", code="BRANCH_NOT_FOUND")
