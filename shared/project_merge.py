"""Merges, reverts, diffs and forks of projects.

The merge rule (three-way, per snapshot slot -- the mix and each stem by name -- and per
metadata field), with B the merge base (the newest common ancestor), O the target branch's head
("ours") and T the merged ref ("theirs"):

- O and T hold the same file (same content): keep it;
- only one side changed the slot since B (added, replaced or removed): take that side;
- both changed it, differently: a conflict. With ``on_conflict="fail"`` (the default) nothing
  is written and the conflicts are reported (409 ``MERGE_CONFLICT``); ``"ours"`` / ``"theirs"``
  resolve every conflict to that side and the merge commit records which slots were resolved.

Metadata follows the same rule; a metadata conflict never blocks a merge: it goes to ``ours``
unless ``on_conflict="theirs"``, and is reported.

A revert of commit C on a branch is the same three-way merge with C as the base, the branch head
as ours and C's first parent as theirs: C's changes are undone, later changes are kept.

A diff compares two snapshots by content hash (stems added, removed, changed), the metadata
deltas, and -- for each changed slot -- the loudness of the difference signal (decoded, same
rate and channels, sample-aligned from the start): how loud what changed is.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Literal

from shared.auth import User
from shared.errors import Conflict, InvalidInput
from shared.projects import MIX, ProjectStore, check_branch_name, project_id
from shared.services import Services

OnConflict = Literal["fail", "ours", "theirs"]
META_FIELDS = ("bpm", "key", "time_signature", "duration_s", "loudness_lufs", "tags")
MAX_AUDIO_DIFFS = 12  # decoding is the costly part of a diff; beyond this, hashes only


def three_way(
    base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]
) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """Merge three ``{slot: value}`` maps; returns (merged without conflicts, conflicting
    slots, which side each slot came from)."""
    merged: dict[str, Any] = {}
    conflicts: list[str] = []
    side: dict[str, str] = {}
    for slot in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(slot), ours.get(slot), theirs.get(slot)
        if o == t:
            value, side[slot] = o, "both"
        elif o == b:
            value, side[slot] = t, "theirs"
        elif t == b:
            value, side[slot] = o, "ours"
        else:
            conflicts.append(slot)
            continue
        if value is not None:
            merged[slot] = value
    return merged, conflicts, side


class ProjectHistory(ProjectStore):
    """ProjectStore plus merge, revert, fork and diff."""

    def _merge_base(self, conn, pid: str, a: str, b: str) -> str | None:
        row = conn.execute(
            "with recursive"
            " anc_a(id) as (select %(a)s::uuid union select p from commits c join anc_a"
            "   on c.project_id = %(pid)s and c.id = anc_a.id, unnest(c.parent_ids) p),"
            " anc_b(id) as (select %(b)s::uuid union select p from commits c join anc_b"
            "   on c.project_id = %(pid)s and c.id = anc_b.id, unnest(c.parent_ids) p)"
            " select c.id from commits c where c.project_id = %(pid)s"
            " and c.id in (select id from anc_a) and c.id in (select id from anc_b)"
            " order by c.seq desc limit 1",
            {"a": a, "b": b, "pid": pid},
        ).fetchone()
        return str(row["id"]) if row else None

    def _meta(self, conn, pid: str, cid: str | None) -> dict:
        if cid is None:
            return {}
        return conn.execute(
            "select metadata from commits where project_id = %s and id = %s", (pid, cid)
        ).fetchone()["metadata"]

    def _three_way_commit(
        self,
        conn,
        user: User,
        pid: str,
        *,
        branch: str,
        base: str | None,
        theirs: str | None,
        parents_extra: list[str],
        message: str,
        on_conflict: OnConflict,
        code: str,
    ) -> tuple[dict, dict]:
        ours = self._branch_head(conn, pid, branch)
        snaps = [self._snapshot(conn, pid, c) for c in (base, ours, theirs)]
        merged, conflicts, side = three_way(*snaps)
        metas = [self._meta(conn, pid, c) for c in (base, ours, theirs)]
        meta, meta_conflicts, _ = three_way(*metas)
        if conflicts and on_conflict == "fail":
            raise Conflict(
                f"Both sides changed {', '.join(conflicts)}; nothing was written. Choose a "
                "side with on_conflict='ours' or 'theirs'.",
                code=code,
                details={
                    "conflicts": [
                        {
                            "name": n,
                            "base_file_id": snaps[0].get(n),
                            "ours_file_id": snaps[1].get(n),
                            "theirs_file_id": snaps[2].get(n),
                        }
                        for n in conflicts
                    ]
                },
            )
        pick = 2 if on_conflict == "theirs" else 1
        for n in conflicts:
            if snaps[pick].get(n) is not None:
                merged[n] = snaps[pick][n]
            side[n] = "theirs" if pick == 2 else "ours"
        for k in meta_conflicts:
            if metas[pick].get(k) is not None:
                meta[k] = metas[pick][k]
        row = self._write_commit(conn, user, pid, [ours, *parents_extra], message, merged, meta)
        self._move_branch(conn, user, pid, branch, ours, str(row["id"]))
        report = {
            "base": base,
            "ours": ours,
            "theirs": theirs,
            "conflicts": conflicts,
            "metadata_conflicts": meta_conflicts,
            "resolved_with": on_conflict if conflicts else None,
            "taken": side,
        }
        return row, report

    def merge(
        self,
        user: User,
        pid: str,
        source: str,
        target: str | None = None,
        on_conflict: OnConflict = "fail",
        message: str | None = None,
    ) -> tuple[dict, dict]:
        """A merge commit of ``source`` (a branch or any ref) into branch ``target``."""
        pid = project_id(pid)
        with self.db.as_user(user.id) as conn:
            project = self._owned(conn, user.id, pid)
            target = check_branch_name(target or project["default_branch"])
            ours = self._branch_head(conn, pid, target)
            theirs = str(self._resolve(conn, pid, source)["id"])
            base = self._merge_base(conn, pid, ours, theirs)
            if base == theirs:
                raise Conflict(
                    f"'{target}' already contains '{source}'; there is nothing to merge.",
                    code="NOTHING_TO_MERGE",
                )
            return self._three_way_commit(
                conn,
                user,
                pid,
                branch=target,
                base=base,
                theirs=theirs,
                parents_extra=[theirs],
                message=message or f"Merge '{source}' into '{target}'",
                on_conflict=on_conflict,
                code="MERGE_CONFLICT",
            )

    def revert(
        self,
        user: User,
        pid: str,
        ref: str,
        branch: str | None = None,
        on_conflict: OnConflict = "fail",
        message: str | None = None,
    ) -> tuple[dict, dict]:
        """A new commit on ``branch`` that undoes what commit ``ref`` changed."""
        pid = project_id(pid)
        with self.db.as_user(user.id) as conn:
            project = self._owned(conn, user.id, pid)
            branch = check_branch_name(branch or project["default_branch"])
            commit = self._resolve(conn, pid, ref)
            parent = str(commit["parent_ids"][0]) if commit["parent_ids"] else None
            return self._three_way_commit(
                conn,
                user,
                pid,
                branch=branch,
                base=str(commit["id"]),
                theirs=parent,
                parents_extra=[],
                message=message or f'Revert "{commit["message"][:200]}"',
                on_conflict=on_conflict,
                code="REVERT_CONFLICT",
            )

    # -- forks ----------------------------------------------------------------------------------

    def fork(self, user: User, pid: str, name: str | None = None) -> dict:
        """Copy a readable project's history into a new project of ``user``: rows only, the
        commits keep their ids and point at the same stored files (no bytes are copied)."""
        with self.db.as_user(user.id) as conn:
            src = self._readable(conn, pid)  # private + not mine: 404
            wanted = (name or src["name"]).strip()
            taken = {
                r["name"]
                for r in conn.execute(
                    "select name from projects where user_id = %s and name like %s",
                    (user.id, wanted.replace("%", r"\%").replace("_", r"\_") + "%"),
                )
            }
            if name and wanted in taken:
                raise Conflict(
                    f"You already have a project named '{wanted}'.", code="PROJECT_NAME_TAKEN"
                )
            final, n = wanted, 1
            while final in taken:
                n += 1
                final = f"{wanted}-fork" if n == 2 else f"{wanted}-fork-{n - 1}"
            new = conn.execute(
                "insert into projects (user_id, name, description, is_public, default_branch,"
                " forked_from) values (%s, %s, %s, false, %s, %s) returning *",
                (user.id, final[:100], src["description"], src["default_branch"], src["id"]),
            ).fetchone()
            args = (new["id"], user.id, src["id"])
            conn.execute(
                "insert into commits (project_id, id, user_id, author_id, author_email, message,"
                " parent_ids, metadata, created_at)"
                " select %s, id, %s, author_id, author_email, message, parent_ids, metadata,"
                " created_at from commits where project_id = %s order by seq",
                args,
            )
            conn.execute(
                "insert into commit_files (project_id, commit_id, user_id, role, name, file_id)"
                " select %s, commit_id, %s, role, name, file_id from commit_files"
                " where project_id = %s",
                args,
            )
            conn.execute(
                "insert into branches (project_id, name, user_id, head_id)"
                " select %s, name, %s, head_id from branches where project_id = %s",
                args,
            )
            return self._readable(conn, str(new["id"]))

    # -- diff -----------------------------------------------------------------------------------

    def diff(self, user_id: str, pid: str, ref_from: str | None, ref_to: str) -> dict:
        with self.db.as_user(user_id) as conn:
            project = self._readable(conn, pid)
            pid = str(project["id"])
            to = self._resolve(conn, pid, ref_to)
            if ref_from is None:
                if not to["parent_ids"]:
                    raise InvalidInput(
                        "This is the first commit; give 'from' to compare it with another.",
                        code="NO_PARENT",
                        status=400,
                    )
                frm = self._resolve(conn, pid, str(to["parent_ids"][0]))
            else:
                frm = self._resolve(conn, pid, ref_from)
            files = self.commit_files(conn, pid, [str(frm["id"]), str(to["id"])])
        a = {r["slot"]: r for r in files.get(str(frm["id"]), [])}
        b = {r["slot"]: r for r in files.get(str(to["id"]), [])}
        changed = [n for n in sorted(set(a) & set(b)) if a[n]["sha256"] != b[n]["sha256"]]
        out_changed = []
        for i, n in enumerate(changed):
            entry = {"name": n, "from": _file_ref(a[n]), "to": _file_ref(b[n])}
            if i < MAX_AUDIO_DIFFS:
                entry.update(self._difference_loudness(a[n], b[n]))
            out_changed.append(entry)
        stems = lambda m: {n: v for n, v in m.items() if n != MIX}  # noqa: E731
        sa, sb = stems(a), stems(b)
        return {
            "project_id": pid,
            "from_commit": str(frm["id"]),
            "to_commit": str(to["id"]),
            "added": [_file_ref(sb[n], n) for n in sorted(set(sb) - set(sa))],
            "removed": [_file_ref(sa[n], n) for n in sorted(set(sa) - set(sb))],
            "changed": out_changed,
            "unchanged": [n for n in sorted(set(a) & set(b)) if n not in changed],
            "mix_changed": MIX in changed or ((MIX in a) != (MIX in b)),
            "metadata": _meta_delta(frm["metadata"], to["metadata"]),
        }

    def _difference_loudness(self, a: dict, b: dict) -> dict:
        """Loudness (LUFS) and RMS (dBFS) of ``to - from``: how loud what changed is."""
        with tempfile.TemporaryDirectory(prefix="diff-") as tmp:
            try:
                pa = self.services.storage.download(a["bucket"], a["path"], Path(tmp) / "a")
                pb = self.services.storage.download(b["bucket"], b["path"], Path(tmp) / "b")
                lufs, rms_dbfs = self.services.audio.difference_loudness(pa, pb)
            except Exception:  # noqa: BLE001 - an unreadable file still diffs by hash
                return {"difference_lufs": None, "difference_rms_dbfs": None}
        return {
            "difference_lufs": round(lufs, 2) if math.isfinite(lufs) else None,
            "difference_rms_dbfs": round(rms_dbfs, 2) if math.isfinite(rms_dbfs) else None,
        }


def _file_ref(row: dict, name: str | None = None) -> dict:
    return {
        "name": name or row["slot"],
        "filename": row["name"],
        "file_id": str(row["id"]),
        "sha256": row["sha256"],
        "size_bytes": int(row["size_bytes"]),
        "duration_s": row.get("duration_s"),
    }


def _meta_delta(a: dict, b: dict) -> dict:
    out: dict[str, Any] = {}
    for k in META_FIELDS:
        va, vb = a.get(k), b.get(k)
        entry: dict[str, Any] = {"from": va, "to": vb, "changed": va != vb}
        if isinstance(va, int | float) and isinstance(vb, int | float):
            entry["delta"] = round(float(vb) - float(va), 3)
        if k == "tags":
            sa, sb = set(va or []), set(vb or [])
            entry["added"], entry["removed"] = sorted(sb - sa), sorted(sa - sb)
        out[k] = entry
    return out


def open_history(services: Services) -> ProjectHistory:
    return ProjectHistory(services)
