"""Projects through the HTTP API on the real embedded Postgres: the full life of a project
(commits, branches, diff, merge with and without a conflict, revert, export, fork by another
user), refs, and the errors a person can cause."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from tests.conftest import Api
from tests.project_helpers import commit, make_tones


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tones(tmp_path_factory.mktemp("tones"))


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _slots(c: dict) -> dict[str, str]:
    out = {s["slot"]: s["sha256"] for s in c["stems"]}
    if c["mix"]:
        out["mix"] = c["mix"]["sha256"]
    return out


def test_full_life_of_a_project(client, new_user, tones):
    alice, bob = Api(client, new_user()["headers"]), Api(client, new_user()["headers"])
    r = alice.post("/api/v1/projects", json={"name": "night drive", "description": "synthwave"})
    assert r.status_code == 201, r.text
    p = r.json()
    pid = p["id"]
    assert p["is_owner"] and not p["is_public"] and p["commit_count"] == 0

    # First commit: a mix and two stems uploaded in one request.
    r = commit(
        alice,
        pid,
        "first sketch",
        {"mix": {"upload": 0}, "stems": {"drums": {"upload": 1}, "bass": {"upload": 2}}},
        [tones["mix_a"], tones["drums_a"], tones["bass_a"]],
        metadata={"bpm": 120, "key": "A minor", "time_signature": "4/4", "tags": ["demo"]},
    )
    assert r.status_code == 201, r.text
    c1 = r.json()
    assert c1["parents"] == [] and c1["mix"]["sha256"] == _sha(tones["mix_a"])
    assert {s["slot"] for s in c1["stems"]} == {"drums", "bass"}
    meta = c1["metadata"]
    assert meta["bpm"] == 120 and meta["duration_s"] == pytest.approx(2.0, abs=0.01)
    # a 0.3-amplitude stereo sine: -0.691 + 10 log10(2 * 0.045) = -11.2 LUFS before K-weighting
    assert meta["loudness_lufs"] == pytest.approx(-11.2, abs=1.0)

    # A branch to try another drum take; main moves on with vocals.
    r = alice.post(f"/api/v1/projects/{pid}/branches", json={"name": "remix"})
    assert r.status_code == 201 and r.json()["head"] == c1["id"]
    r = commit(
        alice,
        pid,
        "harder drums",
        {"stems": {"drums": {"upload": 0}}},
        [tones["drums_b"]],
        metadata={"bpm": 128},
        branch="remix",
    )
    assert r.status_code == 201, r.text
    c_remix = r.json()
    assert c_remix["parents"] == [c1["id"]] and c_remix["metadata"]["key"] == "A minor"
    r = commit(alice, pid, "add vocals", {"stems": {"vox": {"upload": 0}}}, [tones["vox_a"]])
    assert r.status_code == 201, r.text
    c_main = r.json()
    assert _slots(c_main) == {**_slots(c1), "vox": _sha(tones["vox_a"])}

    # Diff: the changed stem by content, its difference loudness, the bpm delta.
    d = alice.get(f"/api/v1/projects/{pid}/diff", params={"from": "main~1", "to": "remix"})
    assert d.status_code == 200, d.text
    d = d.json()
    assert [c["name"] for c in d["changed"]] == ["drums"]
    assert d["added"] == [] and d["removed"] == [] and set(d["unchanged"]) == {"mix", "bass"}
    assert d["changed"][0]["from"]["sha256"] == _sha(tones["drums_a"])
    # two equal-level sines of different pitch (-13.5 dBFS RMS each): their difference is
    # 3 dB louder than either, -10.5 dBFS
    assert d["changed"][0]["difference_lufs"] is not None
    assert d["changed"][0]["difference_rms_dbfs"] == pytest.approx(-10.5, abs=0.3)
    assert d["metadata"]["bpm"]["delta"] == 8 and not d["metadata"]["key"]["changed"]
    d2 = alice.get(f"/api/v1/projects/{pid}/diff", params={"to": "main"}).json()
    assert [a["name"] for a in d2["added"]] == ["vox"] and d2["changed"] == []

    # Merge without a conflict: drums from remix, vocals from main, bpm from remix.
    r = alice.post(f"/api/v1/projects/{pid}/merge", json={"source": "remix"})
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["commit"]["parents"] == [c_main["id"], c_remix["id"]]
    assert _slots(m["commit"])["drums"] == _sha(tones["drums_b"])
    assert _slots(m["commit"])["vox"] == _sha(tones["vox_a"])
    assert m["commit"]["metadata"]["bpm"] == 128
    assert m["report"]["conflicts"] == [] and m["report"]["taken"]["drums"] == "theirs"
    assert "three-way" in m["rule"]
    again = alice.post(f"/api/v1/projects/{pid}/merge", json={"source": "remix"})
    assert again.status_code == 409 and again.json()["code"] == "NOTHING_TO_MERGE"

    # Both sides change the drums: a conflict, reported, nothing written; then resolved.
    assert (
        commit(
            alice, pid, "drums c", {"stems": {"drums": {"upload": 0}}}, [tones["drums_c"]]
        ).status_code
        == 201
    )
    r = commit(
        alice,
        pid,
        "drums a again",
        {"stems": {"drums": {"upload": 0}}},
        [tones["drums_a"]],
        branch="remix",
    )
    assert r.status_code == 201, r.text
    head_before = alice.get(f"/api/v1/projects/{pid}/commits/main").json()["id"]
    r = alice.post(f"/api/v1/projects/{pid}/merge", json={"source": "remix"})
    assert r.status_code == 409 and r.json()["code"] == "MERGE_CONFLICT", r.text
    conflict = r.json()["details"]["conflicts"]
    assert [c["name"] for c in conflict] == ["drums"]
    assert alice.get(f"/api/v1/projects/{pid}/commits/main").json()["id"] == head_before
    r = alice.post(
        f"/api/v1/projects/{pid}/merge", json={"source": "remix", "on_conflict": "theirs"}
    )
    assert r.status_code == 201, r.text
    assert _slots(r.json()["commit"])["drums"] == _sha(tones["drums_a"])
    assert r.json()["report"]["resolved_with"] == "theirs"

    # Refs: branch~N, id prefix; log and tree.
    log = alice.get(f"/api/v1/projects/{pid}/log").json()
    assert log["total"] == 7 and log["items"][0]["message"] == "Merge 'remix' into 'main'"
    assert alice.get(f"/api/v1/projects/{pid}/commits/main~1").json()["message"] == "drums c"
    assert alice.get(f"/api/v1/projects/{pid}/commits/{c1['id'][:8]}").json()["id"] == c1["id"]
    bad = alice.get(f"/api/v1/projects/{pid}/commits/main~99")
    assert bad.status_code == 404 and bad.json()["code"] == "REF_NOT_FOUND"
    tree = alice.get(f"/api/v1/projects/{pid}/tree").json()
    assert len(tree["commits"]) == 7 and {b["name"] for b in tree["branches"]} == {"main", "remix"}
    seen: set[str] = set()
    for c in tree["commits"]:  # parents always come before their children
        assert set(c["parents"]) <= seen
        seen.add(c["id"])

    # Revert the vocals commit: a new commit without them, later changes kept.
    r = alice.post(f"/api/v1/projects/{pid}/revert", json={"commit": c_main["id"]})
    assert r.status_code == 201, r.text
    reverted = r.json()["commit"]
    assert "vox" not in _slots(reverted) and _slots(reverted)["drums"] == _sha(tones["drums_a"])

    # Export: a zip of the mix, the stems and a manifest whose hashes match the bytes.
    r = alice.get(f"/api/v1/projects/{pid}/commits/main/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["commit"]["id"] == reverted["id"]
    assert sorted(zf.namelist()) == [
        "manifest.json",
        "mix.wav",
        "stems/bass.wav",
        "stems/drums.wav",
    ]
    for f in manifest["files"]:
        assert hashlib.sha256(zf.read(f["path"])).hexdigest() == f["sha256"]

    # Private: invisible to bob. Public: readable, forkable, not writable.
    assert bob.get(f"/api/v1/projects/{pid}").status_code == 404
    assert bob.post(f"/api/v1/projects/{pid}/fork", json={}).status_code == 404
    assert alice.patch(f"/api/v1/projects/{pid}", json={"is_public": True}).status_code == 200
    assert pid in [
        x["id"] for x in bob.get("/api/v1/projects", params={"scope": "public"}).json()["items"]
    ]
    r = commit(bob, pid, "sneaky", {"stems": {"vox": {"upload": 0}}}, [tones["vox_b"]])
    assert r.status_code == 403 and r.json()["code"] == "NOT_PROJECT_OWNER"
    assert bob.delete(f"/api/v1/projects/{pid}").status_code == 403
    r = bob.post(f"/api/v1/projects/{pid}/fork", json={})
    assert r.status_code == 201, r.text
    fork = r.json()
    assert fork["is_owner"] and fork["forked_from"] == pid and fork["name"] == "night drive"
    assert fork["commit_count"] == 8 and not fork["is_public"]
    ftree = bob.get(f"/api/v1/projects/{fork['id']}/tree").json()
    assert [c["id"] for c in ftree["commits"]] == [
        c["id"] for c in alice.get(f"/api/v1/projects/{pid}/tree").json()["commits"]
    ]
    fmain = bob.get(f"/api/v1/projects/{fork['id']}/commits/main").json()
    assert fmain["mix"]["file_id"] == reverted["mix"]["file_id"]  # the same stored file
    assert bob.fetch(fmain["stems"][0]["url"])
    r = commit(bob, fork["id"], "my vocals", {"stems": {"vox": {"upload": 0}}}, [tones["vox_b"]])
    assert r.status_code == 201, r.text
    assert alice.get(f"/api/v1/projects/{pid}/commits/main").json()["id"] == reverted["id"]
    # A file that a commit holds cannot be deleted from the library.
    fid = c1["stems"][0]["file_id"]
    r = alice.delete(f"/api/v1/files/{fid}")
    assert r.status_code == 409 and r.json()["code"] == "FILE_IN_COMMIT"


def test_commit_from_a_job_with_its_stems(api, song_wav):
    """Commit a beat job's result in one request: its track as the mix, its stems as stems."""
    beat = api.run("beat", [], {"genre": "trap", "duration_s": 5, "seed": 1, "format": "wav"})
    assert beat["status"] == "completed", beat
    pid = api.post("/api/v1/projects", json={"name": "from a beat"}).json()["id"]
    r = commit(api, pid, "generated", {"from_job": beat["id"]})
    assert r.status_code == 201, r.text
    c = r.json()
    out = {o["name"]: o for o in beat["outputs"]}
    assert c["mix"]["file_id"] == out["track"]["file_id"]
    assert {s["slot"] for s in c["stems"]} == {
        o["name"] for o in beat["outputs"] if o["bucket"] == "stems"
    }
    assert c["metadata"]["bpm"] == beat["result"]["bpm"]
    assert c["metadata"]["key"] == beat["result"]["key"]


def test_bad_requests_are_4xx_with_codes(api, tones):
    pid = api.post("/api/v1/projects", json={"name": "errors"}).json()["id"]
    assert (
        api.post("/api/v1/projects", json={"name": "errors"}).json()["code"] == "PROJECT_NAME_TAKEN"
    )
    cases = [
        ({"snapshot": "{"}, 400, "BAD_JSON"),
        ({"snapshot": json.dumps({"mix": {"file": "a", "upload": 0}})}, 422, "BAD_SNAPSHOT"),
        ({"snapshot": json.dumps({"stems": {"mix": {"upload": 0}}})}, 400, "BAD_STEM_NAME"),
        ({"snapshot": json.dumps({"mix": {"upload": 2}})}, 400, "BAD_SNAPSHOT"),
        ({"snapshot": json.dumps({})}, 422, "EMPTY_COMMIT"),
        ({"metadata": json.dumps({"bpm": 9000})}, 422, "BAD_METADATA"),
    ]
    for form, status, code in cases:
        r = api.post(f"/api/v1/projects/{pid}/commits", data={"message": "x", **form})
        assert r.status_code == status and r.json()["code"] == code, (form, r.text)
    assert api.get("/api/v1/files").json()["total"] == 0  # nothing was left behind
    r = api.post(f"/api/v1/projects/{pid}/branches", json={"name": "b"})
    assert r.status_code == 409 and r.json()["code"] == "EMPTY_PROJECT"
    assert commit(api, pid, "ok", {"mix": {"upload": 0}}, [tones["mix_a"]]).status_code == 201
    r = api.post(f"/api/v1/projects/{pid}/branches", json={"name": "has space"})
    assert r.status_code == 400 and r.json()["code"] == "BAD_BRANCH_NAME"
    r = api.delete(f"/api/v1/projects/{pid}/branches/main")
    assert r.status_code == 409 and r.json()["code"] == "DEFAULT_BRANCH"
    r = commit(api, pid, "x", {"mix": {"upload": 0}}, [tones["mix_b"]], branch="nope")
    assert r.status_code == 404 and r.json()["code"] == "BRANCH_NOT_FOUND"
    assert api.get("/api/v1/projects/not-a-uuid").json()["code"] == "PROJECT_NOT_FOUND"
