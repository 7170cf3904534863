"""The CLI through its real entry point: locally on embedded defaults, and against a running
`soundstage serve` with --server (login, upload, SSE progress, result)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, **extra) -> dict:
    return {
        **os.environ,
        "SOUNDSTAGE_DATA_DIR": str(tmp_path / "data"),
        "SOUNDSTAGE_CONFIG_DIR": str(tmp_path / "config"),
        "SOUNDSTAGE_LOG_LEVEL": "WARNING",
        **extra,
    }


def _cli(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


def test_analyze_locally_prints_json_and_reuses_the_cache(cli_home, song_wav):
    env = _env(cli_home)
    first = _cli(["analyze", str(song_wav), "--json", "--quiet"], env)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert abs(result["tempo_bpm"] - 120) < 1.0
    assert result["key"] == "A minor"
    second = _cli(["analyze", str(song_wav), "--json", "--quiet"], env)
    assert json.loads(second.stdout).get("cached") is True
    summary = _cli(["analyze", str(song_wav)], env)
    assert summary.returncode == 0 and "BPM" in summary.stderr and "A minor" in summary.stderr


def test_cli_errors_are_sentences_with_codes(cli_home, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not audio at all\n" * 10)
    r = _cli(["analyze", str(bad), "--quiet"], _env(cli_home))
    assert r.returncode == 2
    assert "UNSUPPORTED_FORMAT" in r.stderr and "not a recognised audio format" in r.stderr
    r = _cli(["analyze", str(tmp_path / "missing.wav")], _env(cli_home))
    assert r.returncode == 2 and "no such file" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_mode_end_to_end(tmp_path, song_wav):
    port = _free_port()
    server_env = _env(tmp_path / "server")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        client_env = _env(tmp_path / "client", SOUNDSTAGE_PASSWORD="a good password")
        r = _cli(["login", "--server", url, "--email", "cli@example.com", "--register"], client_env)
        assert r.returncode == 0, r.stderr
        r = _cli(["analyze", str(song_wav), "--server", url, "--json"], client_env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["key"] == "A minor"
        assert "analyzing" in r.stderr  # the per-stage progress bar
        r = _cli(["jobs", "--server", url], client_env)
        assert r.returncode == 0 and "analyze" in r.stderr
    finally:
        proc.terminate()
        proc.wait(20)
