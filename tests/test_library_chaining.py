"""The library and job chaining through the HTTP API on the real embedded Postgres: every upload
and output is a file of its owner, stored once per content; jobs take files and earlier jobs'
outputs by reference with no bytes uploaded again; someone else's file or job is a 404."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import Api


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _user_id(services, api: Api) -> str:
    return api.get("/api/v1/auth/me").json()["id"]


def create_refs(api: Api, kind: str, refs: list[dict], params: dict | None = None):
    """POST a job whose inputs are all references (nothing uploaded)."""
    data = {"kind": kind, "inputs": json.dumps(refs)}
    if params is not None:
        data["params"] = json.dumps(params)
    return api.post("/api/v1/jobs", data=data)


def run_refs(api: Api, kind: str, refs: list[dict], params: dict | None = None) -> dict:
    r = create_refs(api, kind, refs, params)
    assert r.status_code == 202, r.text
    return api.wait(r.json()["id"])


def test_beat_to_stems_to_master_without_reupload(api, services):
    """beat -> stems -> master, each step reading the previous step's output by reference."""
    beat = api.run(
        "beat", [], {"genre": "house", "duration_s": 6, "seed": 3, "format": "wav", "stems": False}
    )
    assert beat["status"] == "completed", beat
    track = next(o for o in beat["outputs"] if o["name"] == "track")
    track_bytes = api.fetch(track["url"])
    uid = _user_id(services, api)
    usage_after_beat = services.storage.usage(uid)

    r = api.post(
        "/api/v1/jobs",
        data={
            "kind": "stems",
            "params": json.dumps({"stems": ["drums", "bass"]}),
            "inputs": json.dumps([{"job": beat["id"], "output": "track"}]),
        },
    )
    assert r.status_code == 202, r.text
    stems = api.wait(r.json()["id"])
    assert stems["status"] == "completed", stems
    # The stems job read the very bytes the beat job wrote: same hash, same library file.
    assert stems["inputs"][0]["sha256"] == _sha(track_bytes)
    assert stems["inputs"][0]["file_id"] == track["file_id"]
    assert stems["inputs"][0]["ref"] == {"job": beat["id"], "output": "track"}
    drums = next(o for o in stems["outputs"] if o["name"] == "drums")
    drums_bytes = api.fetch(drums["url"])
    added = services.storage.usage(uid) - usage_after_beat
    stems_out = sum(o["size_bytes"] for o in stems["outputs"])
    assert added == stems_out  # the input was not stored a second time

    master = run_refs(api, "master", [{"job": stems["id"], "output": "drums"}])
    assert master["status"] == "completed", master
    assert master["inputs"][0]["sha256"] == _sha(drums_bytes)
    assert master["result"]["target_lufs"] == -14
    assert {o["name"] for o in master["outputs"]} == {"master"}

    # Library: all of it is there, each content once, with the job that made it.
    files = api.get("/api/v1/files", params={"limit": 200}).json()
    shas = [f["sha256"] for f in files["items"]]
    assert len(shas) == len(set(shas))
    by_sha = {f["sha256"]: f for f in files["items"]}
    assert by_sha[_sha(track_bytes)]["job_id"] == beat["id"]
    assert by_sha[_sha(track_bytes)]["source"] == "output"
    assert by_sha[_sha(drums_bytes)]["kind"] == "audio"
    assert by_sha[_sha(drums_bytes)]["duration_s"] == pytest.approx(6, abs=0.1)


def test_same_bytes_are_stored_once_and_counted_once(api, services, song_wav):
    uid = _user_id(services, api)
    first = api.run("test_sleep", [song_wav])
    usage = services.storage.usage(uid)
    second = api.run("test_sleep", [song_wav])
    assert first["inputs"][0]["sha256"] == second["inputs"][0]["sha256"]
    # The second upload went into the existing file: no new bytes stored (quota counts once).
    assert services.storage.usage(uid) == usage
    audio = api.get("/api/v1/files", params={"kind": "audio"}).json()
    assert audio["total"] == 1
    assert audio["items"][0]["name"] == song_wav.name
    # Deleting the first job keeps the file the second still uses.
    assert api.delete(f"/api/v1/jobs/{first['id']}").status_code == 200
    assert api.get("/api/v1/files", params={"kind": "audio"}).json()["total"] == 1
    assert api.delete(f"/api/v1/jobs/{second['id']}").status_code == 200
    assert api.get("/api/v1/files", params={"kind": "audio"}).json()["total"] == 0
    assert services.storage.usage(uid) == 0


def test_files_list_filter_search_page_rename_pin_delete(api, song_wav, tmp_path):
    from functions.audio_io import Audio, save_audio
    from tests.synth import synth_song

    other = tmp_path / "other-take.wav"
    audio, _ = synth_song(bpm=100, key="C major", duration_s=3.0)
    save_audio(other, Audio(audio.samples[:, : 44100 * 3], audio.sample_rate), "wav")
    for path in (song_wav, other):
        with open(path, "rb") as fh:
            r = api.post("/api/v1/files", files={"file": (path.name, fh, "audio/wav")})
        assert r.status_code == 201, r.text
    with open(song_wav, "rb") as fh:  # the same bytes again: the existing file, 200
        again = api.post("/api/v1/files", files={"file": ("copy.wav", fh, "audio/wav")})
    assert again.status_code == 200
    page = api.get("/api/v1/files", params={"limit": 1}).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["next_offset"] == 1
    found = api.get("/api/v1/files", params={"q": "other"}).json()["items"]
    assert [f["name"] for f in found] == ["other-take.wav"]
    assert found[0]["duration_s"] == pytest.approx(3.0, abs=0.01)
    assert found[0]["sample_rate"] == 44100 and found[0]["channels"] == 2
    assert api.get("/api/v1/files", params={"kind": "midi"}).json()["total"] == 0
    fid = found[0]["id"]
    r = api.patch(f"/api/v1/files/{fid}", json={"name": "best take.wav", "pinned": True})
    assert r.status_code == 200 and r.json()["name"] == "best take.wav" and r.json()["pinned"]
    bad = api.patch(f"/api/v1/files/{fid}", json={"name": "a/b"})
    assert bad.status_code == 400 and bad.json()["code"] == "BAD_NAME"
    dl = api.get(f"/api/v1/files/{fid}/download", follow_redirects=False)
    assert dl.status_code == 302
    assert api.fetch(dl.headers["location"]) == other.read_bytes()
    assert api.delete(f"/api/v1/files/{fid}").status_code == 200
    assert api.get(f"/api/v1/files/{fid}").status_code == 404
    r = api.client.get(dl.headers["location"].replace("http://testserver", ""))
    assert r.status_code == 410


def test_someone_elses_file_or_job_is_404(client, new_user, song_wav):
    alice, bob = Api(client, new_user()["headers"]), Api(client, new_user()["headers"])
    job = alice.run("test_sleep", [song_wav])
    fid = alice.get("/api/v1/files", params={"kind": "audio"}).json()["items"][0]["id"]
    for method, url in [
        ("get", f"/api/v1/files/{fid}"),
        ("get", f"/api/v1/files/{fid}/download"),
        ("patch", f"/api/v1/files/{fid}"),
        ("delete", f"/api/v1/files/{fid}"),
    ]:
        kw = {"json": {"pinned": True}} if method == "patch" else {}
        r = getattr(bob, method)(url, follow_redirects=False, **kw)
        assert r.status_code == 404 and r.json()["code"] == "FILE_NOT_FOUND", (url, r.text)
    assert bob.get("/api/v1/files").json()["total"] == 0
    for ref, code in [
        ({"file": fid}, "FILE_NOT_FOUND"),
        ({"job": job["id"], "output": "note"}, "JOB_NOT_FOUND"),
    ]:
        r = create_refs(bob, "test_sleep", [ref])
        assert r.status_code == 404 and r.json()["code"] == code, r.text
    assert alice.get(f"/api/v1/files/{fid}").status_code == 200


def test_bad_references_are_4xx_with_codes(api, song_wav):
    job = api.run("test_sleep", [song_wav])
    cases = [
        ("not json", 400, "BAD_INPUTS_JSON"),
        (json.dumps({"file": "x"}), 400, "BAD_INPUTS_JSON"),
        (json.dumps([{"file": "x", "job": "y"}]), 400, "BAD_INPUT_REF"),
        (json.dumps([{"upload": 3}]), 400, "BAD_INPUT_REF"),
        (json.dumps([{"job": job["id"], "output": "nope"}]), 404, "OUTPUT_NOT_FOUND"),
        # a text output is not audio: a master job refuses it like an upload of text
        (json.dumps([{"job": job["id"], "output": "note"}]), 422, "NOT_AUDIO"),
    ]
    for raw, status, code in cases:
        r = api.post("/api/v1/jobs", data={"kind": "master", "inputs": raw})
        assert r.status_code == status and r.json()["code"] == code, (raw, r.text)
    running = api.create_job("test_sleep", [], {"seconds": 5}).json()
    r = create_refs(api, "master", [{"job": running["id"]}])
    assert r.status_code == 409 and r.json()["code"] == "JOB_NOT_COMPLETED"
    api.post(f"/api/v1/jobs/{running['id']}/cancel")


def test_references_mix_with_uploads_in_order(api, song_wav):
    first = api.run("test_sleep", [song_wav])
    fid = api.get("/api/v1/files", params={"kind": "audio"}).json()["items"][0]["id"]
    with open(song_wav, "rb") as fh:
        r = api.post(
            "/api/v1/jobs",
            data={
                "kind": "test_sleep",
                "inputs": json.dumps([{"file": fid}, {"upload": 0}]),
            },
            files=[("files", ("again.wav", fh, "audio/wav"))],
        )
    assert r.status_code == 202, r.text
    job = api.wait(r.json()["id"])
    assert job["status"] == "completed"
    assert [i.get("ref") for i in job["inputs"]] == [{"file": fid}, None]
    # The upload had the same bytes: both inputs are the one library file.
    assert job["inputs"][1]["file_id"] == fid
    assert job["result"]["sizes"] == [song_wav.stat().st_size] * 2
    assert first["status"] == "completed"
    # The files a job read and wrote: the one input file (used twice) and its note.
    used = api.get("/api/v1/files", params={"job_id": job["id"]}).json()["items"]
    assert sorted(f["kind"] for f in used) == ["audio", "text"]
    assert next(f for f in used if f["kind"] == "audio")["id"] == fid
    bad = api.get("/api/v1/files", params={"job_id": "nope"})
    assert bad.status_code == 400 and bad.json()["code"] == "BAD_JOB_ID"
