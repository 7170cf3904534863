"""The project commands and job references of the CLI through its real entry point: locally on
embedded defaults (beat -> stems -> master by reference, then kept as commits), and against a
running `soundstage serve` with --server."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
import zipfile

import pytest

from tests.project_helpers import make_tones
from tests.test_cli import ROOT, _env, live_server  # noqa: F401  (the running server)


def _cli(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return r


def _ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, r.stderr
    return r


def _last_job(env: dict, kind: str) -> str:
    listing = _ok(_cli(["jobs", "--limit", "50"], env)).stderr
    return re.findall(rf"([0-9a-f]{{8}})\s+│\s+{kind}\s", listing)[0]


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tones(tmp_path_factory.mktemp("tones"))


def test_chain_and_projects_locally(tmp_path):
    env = _env(tmp_path)

    def run(cmd: str) -> subprocess.CompletedProcess:
        return _ok(_cli(shlex.split(cmd), env))

    run(f"beat --genre house --duration 5 --seed 4 --format wav -o {tmp_path}/beat.wav --quiet")
    beat = _last_job(env, "beat")
    # No file is given again: the stems job reads the beat's track, the master the drums.
    run(f"stems job:{beat}/track --stems drums,bass -o {tmp_path}/stems --quiet")
    stems = _last_job(env, "stems")
    run(f"master job:{stems}/drums -o {tmp_path}/m.wav --quiet")
    master = _last_job(env, "master")
    assert next((tmp_path / "stems").glob("*drums*")).stat().st_size > 0
    assert (tmp_path / "m.wav").stat().st_size > 0

    new = json.loads(run("project new song --json").stdout)
    c1 = json.loads(
        run(
            f"project commit song -m beat --mix job:{beat}/track --stem drums=job:{stems}/drums"
            " --bpm 124 --tag v1 --json"
        ).stdout
    )
    assert c1["metadata"]["bpm"] == 124 and c1["stems"][0]["slot"] == "drums"
    assert c1["mix"]["sha256"] == hashlib.sha256((tmp_path / "beat.wav").read_bytes()).hexdigest()
    run("project branch song mastered")
    c2 = json.loads(
        run(
            f"project commit {new['id']} -m master --branch mastered --mix job:{master}/master"
            " --json"
        ).stdout
    )
    assert c2["parents"] == [c1["id"]]
    merged = json.loads(run("project merge song mastered --json").stdout)
    assert merged["commit"]["mix"]["sha256"] == c2["mix"]["sha256"]
    run(f"project export song -o {tmp_path}/song.zip")
    with zipfile.ZipFile(tmp_path / "song.zip") as zf:
        assert json.loads(zf.read("manifest.json"))["commit"]["id"] == merged["commit"]["id"]
    fork = json.loads(run("project fork song --json").stdout)
    assert fork["name"] == "song-fork" and fork["commit_count"] == 3


def test_project_commands_against_a_server(live_server, tmp_path, tones):  # noqa: F811
    server, _ = live_server
    env = _env(tmp_path, SOUNDSTAGE_PASSWORD="a good password")
    _ok(_cli(["login", "--server", server, "--email", "proj@example.com", "--register"], env))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return _cli([*args, "--server", server], env)

    _ok(cli("project", "new", "remote song", "--public"))
    c1 = json.loads(
        _ok(
            cli(
                "project",
                "commit",
                "remote song",
                "-m",
                "one",
                "--mix",
                str(tones["mix_a"]),
                "--stem",
                f"bass={tones['bass_a']}",
                "--json",
            )  # fmt: skip
        ).stdout
    )
    c2 = json.loads(
        _ok(
            cli(
                "project",
                "commit",
                "remote song",
                "-m",
                "two",
                "--remove",
                "bass",
                "--stem",
                f"vox={tones['vox_a']}",
                "--json",
            )  # fmt: skip
        ).stdout
    )
    assert [st["slot"] for st in c2["stems"]] == ["vox"] and c2["parents"] == [c1["id"]]
    diff = json.loads(_ok(cli("project", "diff", "remote song", "main", "--json")).stdout)
    assert [a["name"] for a in diff["added"]] == ["vox"]
    assert [r["name"] for r in diff["removed"]] == ["bass"]
    assert "remote song" in _ok(cli("project", "list", "--scope", "mine")).stderr
    files = json.loads(_ok(cli("files", "--kind", "audio", "--json")).stdout)["items"]
    assert {f["name"] for f in files} == {"mix_a.wav", "bass_a.wav", "vox_a.wav"}
    # A library file by the short id the listing shows, committed without an upload.
    vox = next(f for f in files if f["name"] == "vox_a.wav")
    c3 = json.loads(
        _ok(
            cli(
                "project",
                "commit",
                "remote song",
                "-m",
                "three",
                "--mix",
                f"file:{vox['id'][:8]}",
                "--json",
            )  # fmt: skip
        ).stdout
    )
    assert c3["mix"]["file_id"] == vox["id"]
    log = _ok(cli("project", "log", "remote song")).stderr
    assert log.index("three") < log.index("two") < log.index("one")
    _ok(cli("project", "export", "remote song", "main~2", "-o", str(tmp_path / "one.zip")))
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "mix.wav", "stems/bass.wav"]
        assert zf.read("stems/bass.wav") == tones["bass_a"].read_bytes()
    bad = cli("project", "merge", "remote song", "nope")
    assert bad.returncode == 2 and "REF_NOT_FOUND" in bad.stderr
    bad = cli("master", "job:ffffffff/master", "-o", str(tmp_path / "x.wav"))
    assert bad.returncode == 2 and "JOB_NOT_FOUND" in bad.stderr
