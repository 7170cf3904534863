"""The project tree route on 1,000 commits and 10 branches, against one plain query of the same
rows, in the same run on the embedded Postgres.

    .venv/bin/python bench/project_tree.py [--commits 1000] [--branches 10] [--runs 20]

The route does everything a client gets: token check, RLS-scoped transaction, the project
read, the commits and branches, pydantic validation and JSON over HTTP (in-process ASGI). The
baseline is the bare ``select`` of the same commit and branch rows as the service role, fetched
into Python. Printed: medians and the ratio route / baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psycopg.types.json import Jsonb  # noqa: E402


def build_history(services, user_id: str, pid: str, n_commits: int, n_branches: int) -> None:
    """A DAG like a real project's: a main line, branches off it, work on each, merges back."""
    import hashlib

    with services.db.service() as conn:
        fids = []
        for i in range(3):
            sha = hashlib.sha256(f"bench-{pid}-{i}".encode()).hexdigest()
            fids.append(
                conn.execute(
                    "insert into files (user_id, name, kind, content_type, bucket, path,"
                    " size_bytes, sha256) values (%s, %s, 'audio', 'audio/wav', 'audio-uploads',"
                    " %s, 1000, %s) returning id",
                    (user_id, f"f{i}.wav", f"{user_id}/bench/{i}.wav", sha),
                ).fetchone()["id"]
            )
    heads = {"main": None}
    names = ["main"] + [f"branch-{i}" for i in range(1, n_branches)]
    commits, files = [], []
    for i in range(n_commits):
        branch = names[i % len(names)] if i >= len(names) else "main"
        if branch not in heads or heads[branch] is None:
            heads[branch] = heads["main"]
        parents = [heads[branch]] if heads[branch] else []
        if branch == "main" and i % 50 == 0 and i > 0:  # merge a branch back now and then
            other = names[1 + (i // 50) % (len(names) - 1)]
            if heads.get(other) and heads[other] != heads["main"]:
                parents.append(heads[other])
        cid = str(uuid.uuid4())
        commits.append(
            (pid, cid, user_id, user_id, "bench@example.com", f"commit {i} on {branch}", parents,
             Jsonb({"bpm": 120 + i % 10, "key": "A minor", "tags": ["bench"]}))
        )  # fmt: skip
        files += [(pid, cid, user_id, "mix" if k == 0 else "stem", n, fids[k])
                  for k, n in enumerate(("mix", "drums", "bass"))]  # fmt: skip
        heads[branch] = cid
    with services.db.service() as conn, conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into commits (project_id, id, user_id, author_id, author_email, message,"
            " parent_ids, metadata) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            commits,
        )
        cur.executemany(
            "insert into commit_files (project_id, commit_id, user_id, role, name, file_id)"
            " values (%s, %s, %s, %s, %s, %s)",
            files,
        )
        cur.executemany(
            "insert into branches (project_id, name, user_id, head_id) values (%s, %s, %s, %s)",
            [(pid, b, user_id, h) for b, h in heads.items() if h],
        )


def plain_query(services, pid: str) -> tuple[list, list]:
    with services.db.service() as conn:
        commits = conn.execute(
            "select id, parent_ids, message, author_email, created_at, metadata"
            " from commits where project_id = %s order by seq",
            (pid,),
        ).fetchall()
        branches = conn.execute(
            "select name, head_id, created_at, updated_at from branches where project_id = %s",
            (pid,),
        ).fetchall()
    return commits, branches


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--branches", type=int, default=10)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()

    from fastapi.testclient import TestClient

    from functions.audio_tools import AUDIO_TOOLS
    from shared.db import Database
    from shared.services import open_services
    from tests.conftest import make_settings
    from web.app import create_app

    with tempfile.TemporaryDirectory(prefix="bench-tree-") as tmp:
        url = Database.embedded_url(Path(tmp) / "pg", cleanup_mode="delete")
        services = open_services(
            make_settings(Path(tmp) / "data", database_url=url), audio=AUDIO_TOOLS
        )
        try:
            tokens = services.auth.register("bench@example.com", "a long bench password")
            user = services.auth.verifier.verify(tokens.access_token)
            from shared.projects import ProjectStore

            pid = str(ProjectStore(services).create(user, "bench")["id"])
            build_history(services, user.id, pid, a.commits, a.branches)
            app = create_app(services, runner=object(), start_runner=False)
            headers = {"Authorization": f"Bearer {tokens.access_token}"}
            with TestClient(app) as client:
                route, base = [], []
                for i in range(a.runs + 2):  # two warm-up rounds, not counted
                    t = time.perf_counter()
                    r = client.get(f"/api/v1/projects/{pid}/tree", headers=headers)
                    dt_route = time.perf_counter() - t
                    assert r.status_code == 200, r.text
                    body = r.json()
                    t = time.perf_counter()
                    commits, branches = plain_query(services, pid)
                    dt_base = time.perf_counter() - t
                    if i >= 2:
                        route.append(dt_route)
                        base.append(dt_base)
            assert len(body["commits"]) == len(commits) == a.commits
            assert len(body["branches"]) == len(branches) == a.branches
        finally:
            services.close()
            Database.stop_embedded()
    r_ms, b_ms = statistics.median(route) * 1000, statistics.median(base) * 1000
    print(f"project tree: {a.commits} commits, {a.branches} branches, {a.runs} runs (median)")
    print(f"  plain query (service role, fetch rows)      {b_ms:8.1f} ms")
    print(f"  GET /api/v1/projects/{{id}}/tree (HTTP+RLS)  {r_ms:8.1f} ms")
    print(f"  ratio route / plain query                   {r_ms / b_ms:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
