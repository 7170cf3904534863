"""What keeps projects safe: two writers on one branch lose no commit (compare-and-set, 409 for
the loser), private projects are invisible (API and SQL), public ones are read-only to others
(row-level security on the real database), and retention never takes a file a commit holds."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from shared.library_files import FileStore
from tests.conftest import Api
from tests.project_helpers import commit, make_tones, upload_file


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tones(tmp_path_factory.mktemp("tones"))


def _race(fns) -> list:
    """Start the calls together and collect their results."""
    barrier = threading.Barrier(len(fns))
    out = [None] * len(fns)

    def run(i, fn):
        barrier.wait()
        out[i] = fn()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_concurrent_commits_lose_nothing(api, tones):
    pid = api.post("/api/v1/projects", json={"name": "race"}).json()["id"]
    ids = [upload_file(api, tones[n]) for n in ("mix_a", "drums_a", "drums_b", "drums_c", "vox_a")]
    first = commit(api, pid, "base", {"mix": {"file": ids[0]}})
    assert first.status_code == 201
    head = first.json()["id"]

    # Both writers saw the same head: exactly one lands, the other gets BRANCH_MOVED.
    results = _race(
        [
            lambda fid=fid: commit(
                api, pid, f"take {fid[:6]}", {"stems": {"drums": {"file": fid}}}, expected_head=head
            )
            for fid in ids[1:3]
        ]
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409], [r.text for r in results]
    loser = next(r for r in results if r.status_code == 409)
    assert loser.json()["code"] == "BRANCH_MOVED"

    # Without expected_head, writers racing on one branch: every 201 is in the history, and
    # no commit exists that the branch does not reach (a loser leaves nothing behind).
    results = _race(
        [
            lambda fid=fid: commit(api, pid, f"free {fid[:6]}", {"stems": {"vox": {"file": fid}}})
            for fid in ids[2:5]
        ]
    )
    assert all(r.status_code in (201, 409) for r in results), [r.text for r in results]
    made = {r.json()["id"] for r in results if r.status_code == 201}
    assert made
    log = api.get(f"/api/v1/projects/{pid}/log", params={"limit": 100}).json()
    in_log = {c["id"] for c in log["items"]}
    assert made <= in_log
    tree = api.get(f"/api/v1/projects/{pid}/tree").json()
    assert {c["id"] for c in tree["commits"]} == in_log
    assert tree["commits"] and log["total"] == len(tree["commits"])


def test_private_project_is_404_everywhere(client, new_user, tones):
    alice, bob = Api(client, new_user()["headers"]), Api(client, new_user()["headers"])
    pid = alice.post("/api/v1/projects", json={"name": "secret"}).json()["id"]
    c = commit(alice, pid, "one", {"mix": {"upload": 0}}, [tones["mix_a"]]).json()
    for method, url, kw in [
        ("get", f"/api/v1/projects/{pid}", {}),
        ("patch", f"/api/v1/projects/{pid}", {"json": {"is_public": True}}),
        ("delete", f"/api/v1/projects/{pid}", {}),
        ("get", f"/api/v1/projects/{pid}/log", {}),
        ("get", f"/api/v1/projects/{pid}/tree", {}),
        ("get", f"/api/v1/projects/{pid}/branches", {}),
        ("get", f"/api/v1/projects/{pid}/commits/main", {}),
        ("get", f"/api/v1/projects/{pid}/commits/{c['id']}/export", {}),
        ("get", f"/api/v1/projects/{pid}/commits/main/files/mix", {}),
        ("get", f"/api/v1/projects/{pid}/diff?to=main", {}),
        ("post", f"/api/v1/projects/{pid}/branches", {"json": {"name": "x"}}),
        ("post", f"/api/v1/projects/{pid}/merge", {"json": {"source": "main"}}),
        ("post", f"/api/v1/projects/{pid}/revert", {"json": {"commit": "main"}}),
        ("post", f"/api/v1/projects/{pid}/fork", {"json": {}}),
        ("post", f"/api/v1/projects/{pid}/commits", {"data": {"message": "x"}}),
    ]:
        r = getattr(bob, method)(url, follow_redirects=False, **kw)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
        assert r.json()["code"] == "PROJECT_NOT_FOUND"
    listed = bob.get("/api/v1/projects", params={"limit": 100}).json()["items"]
    assert pid not in {p["id"] for p in listed}
    assert bob.get("/api/v1/projects", params={"scope": "mine"}).json()["total"] == 0
    # Nor is the committed file in bob's library.
    assert bob.get(f"/api/v1/files/{c['mix']['file_id']}").status_code == 404


def _sql_user(conn) -> str:
    return str(
        conn.execute(
            "insert into auth.users (email) values (%s) returning id",
            (f"{uuid.uuid4().hex[:8]}@example.com",),
        ).fetchone()["id"]
    )


def test_row_level_security_on_projects(services, tones):
    """On the SQL level, as the authenticated role: a private project and its commits, branches
    and files are invisible to others; a public one is readable and still not writable."""
    db = services.db
    with db.service() as conn:
        alice, bob = _sql_user(conn), _sql_user(conn)
    with open(tones["mix_a"], "rb") as fh:
        from shared.library import store_upload

        f, _ = store_upload(services, alice, "mix.wav", fh)
    with db.as_user(alice) as conn:
        pid = conn.execute(
            "insert into projects (user_id, name) values (%s, 'p') returning id", (alice,)
        ).fetchone()["id"]
        cid = conn.execute(
            "insert into commits (project_id, user_id, message) values (%s, %s, 'm') returning id",
            (pid, alice),
        ).fetchone()["id"]
        conn.execute(
            "insert into commit_files (project_id, commit_id, user_id, role, name, file_id)"
            " values (%s, %s, %s, 'mix', 'mix', %s)",
            (pid, cid, alice, f["id"]),
        )
        conn.execute(
            "insert into branches (project_id, name, user_id, head_id) values (%s, 'main', %s, %s)",
            (pid, alice, cid),
        )

    def visible(user) -> dict[str, int]:
        with db.as_user(user) as conn:
            return {
                t: conn.execute(f"select count(*) as n from {t} where {col} = %s", (v,)).fetchone()[
                    "n"
                ]
                for t, col, v in [
                    ("projects", "id", pid),
                    ("commits", "project_id", pid),
                    ("commit_files", "project_id", pid),
                    ("branches", "project_id", pid),
                    ("files", "id", f["id"]),
                ]
            }

    assert set(visible(alice).values()) == {1}
    assert set(visible(bob).values()) == {0}
    with db.service() as conn:
        conn.execute("update projects set is_public = true where id = %s", (pid,))
    assert set(visible(bob).values()) == {1}  # public: readable by every signed-in user
    # ... and not writable: no update, delete or branch move; no commit in someone's project.
    with db.as_user(bob) as conn:
        assert (
            conn.execute(
                "update projects set name = 'mine now' where id = %s returning id", (pid,)
            ).fetchone()
            is None
        )
        assert (
            conn.execute("delete from projects where id = %s returning id", (pid,)).fetchone()
            is None
        )
        assert (
            conn.execute(
                "update branches set head_id = head_id where project_id = %s returning name", (pid,)
            ).fetchone()
            is None
        )
    for owner in (bob, alice):  # bob as himself (not the owner), or pretending to be alice
        with pytest.raises(psycopg.errors.InsufficientPrivilege), db.as_user(bob) as conn:
            conn.execute(
                "insert into commits (project_id, user_id, message) values (%s, %s, 'x')",
                (pid, owner),
            )
    with pytest.raises(psycopg.errors.InsufficientPrivilege), db.as_user(bob) as conn:
        conn.execute("update files set name = 'x' where id = %s", (f["id"],))
    with db.as_user(alice) as conn:
        assert (
            conn.execute("select name from projects where id = %s", (pid,)).fetchone()["name"]
            == "p"
        )


def test_sweeper_keeps_pinned_and_committed_files(api, services, tones):
    from shared.retention import sweep

    me = api.get("/api/v1/auth/me").json()["id"]
    pid = api.post("/api/v1/projects", json={"name": "kept"}).json()["id"]
    committed = upload_file(api, tones["mix_a"])
    pinned = upload_file(api, tones["drums_a"])
    plain = upload_file(api, tones["bass_a"])
    assert commit(api, pid, "keep me", {"mix": {"file": committed}}).status_code == 201
    api.patch(f"/api/v1/files/{pinned}", json={"pinned": True})
    # A job whose retention has passed: the file only it used goes with it.
    job_file = upload_file(api, tones["vox_a"])
    job = api.post(
        "/api/v1/jobs", data={"kind": "test_sleep", "inputs": f'[{{"file": "{job_file}"}}]'}
    )
    assert job.status_code == 202, job.text
    assert api.wait(job.json()["id"])["status"] == "completed"
    store = FileStore(services)
    rows = {fid: store.get(me, fid) for fid in (committed, pinned, plain, job_file)}
    with services.db.service() as conn:  # everything is a month old
        conn.execute(
            "update files set created_at = now() - interval '30 days' where user_id = %s", (me,)
        )
        conn.execute(
            "update storage.objects set created_at = now() - interval '30 days' where owner = %s",
            (me,),
        )
        conn.execute(
            "update jobs set expires_at = now() - interval '1 day' where user_id = %s", (me,)
        )
    removed = sweep(services)
    assert removed.get("library", 0) >= 2
    left = {f["id"] for f in api.get("/api/v1/files", params={"limit": 200}).json()["items"]}
    assert committed in left and pinned in left
    assert plain not in left and job_file not in left
    for fid in (committed, pinned):
        assert services.storage.file_path(rows[fid]["bucket"], rows[fid]["path"]).exists()
    for fid in (plain, job_file):
        assert not services.storage.file_path(rows[fid]["bucket"], rows[fid]["path"]).exists()
    # The commit still exports whole.
    assert api.get(f"/api/v1/projects/{pid}/commits/main/export").status_code == 200
