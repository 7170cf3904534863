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
        [sys.executable, "-m", "cli", *args],
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
    # The command ends quickly (no interpreter teardown) yet still stops its embedded Postgres.
    assert (cli_home / "data" / "pg" / "PG_VERSION").exists()
    assert not (cli_home / "data" / "pg" / "postmaster.pid").exists()


@pytest.mark.parametrize(
    ("main", "code", "stdout", "stderr"),
    [
        ("lambda: (print('piped output'), 3)[1]", 3, "piped output", ""),
        ("lambda: 1 / 0", 1, "", "ZeroDivisionError"),
        ("lambda: sys.exit('a sentence for the user')", 1, "", "a sentence for the user"),
        ("lambda: sys.exit(None)", 0, "", ""),
    ],
)
def test_the_executable_flushes_its_output_and_keeps_exit_codes(
    tmp_path, main, code, stdout, stderr
):
    """``soundstage`` skips the interpreter's teardown: what was printed to a pipe, the exit
    status and an unexpected error's traceback must survive that."""
    script = (
        "import sys, atexit\n"
        "import cli.main as m\n"
        "atexit.register(lambda: print('exit handler ran', file=sys.stderr))\n"
        f"m.main = {main}\n"
        "m.run()\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True
    )
    assert r.returncode == code, r.stderr
    assert stdout in r.stdout and stderr in r.stderr
    assert "exit handler ran" in r.stderr


@pytest.mark.parametrize(
    ("argv", "starts"),
    [
        (["analyze", "song.wav", "--quiet"], True),
        (["--verbose", "jobs"], True),
        (["analyze", "song.wav", "--server", "http://example.org"], False),
        (["analyze", "song.wav", "--server=http://example.org"], False),
        (["analyze", "--help"], False),
        (["login", "--server", "http://example.org"], False),
        (["genres"], False),
        ([], False),
    ],
)
def test_the_embedded_database_starts_early_only_for_local_commands(monkeypatch, argv, starts):
    from cli import job_client

    started = []
    monkeypatch.setattr(job_client, "_start_embedded_postgres", lambda: started.append(True))
    monkeypatch.delenv("SOUNDSTAGE_SERVER", raising=False)
    job_client.start_local_database_early(argv)
    assert bool(started) is starts
    if starts:
        started.clear()
        monkeypatch.setenv("SOUNDSTAGE_SERVER", "http://example.org")
        job_client.start_local_database_early(argv)
        assert not started


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


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """A real `soundstage serve` process on a free port, with its own data folder."""
    tmp = tmp_path_factory.mktemp("server")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=_env(tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
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
    yield url, proc
    proc.terminate()
    proc.wait(20)


def test_server_mode_end_to_end(live_server, tmp_path, song_wav):
    url, _ = live_server
    client_env = _env(tmp_path / "client", SOUNDSTAGE_PASSWORD="a good password")
    r = _cli(["login", "--server", url, "--email", "cli@example.com", "--register"], client_env)
    assert r.returncode == 0, r.stderr
    r = _cli(["analyze", str(song_wav), "--server", url, "--json"], client_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["key"] == "A minor"
    assert "audio_analysis" in r.stderr  # the per-stage progress bar
    r = _cli(["jobs", "--server", url], client_env)
    assert r.returncode == 0 and "analyze" in r.stderr


def test_a_large_upload_never_sits_whole_in_memory(live_server, tmp_path):
    """A 45 MB upload streams through the server: its resident memory grows by a fraction of
    the file (multipart parts spool to disk, storage copies and the audio check go in blocks)."""
    import threading

    import numpy as np
    import psutil

    from functions.audio_io import Audio, save_audio

    url, proc = live_server
    seconds = 255  # 16-bit stereo 44.1 kHz: ~45 MB
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal((2, 44100 * seconds)) * 0.1).astype(np.float32)
    big = tmp_path / "big.wav"
    save_audio(big, Audio(noise, 44100), "wav")
    del noise
    size_mb = big.stat().st_size / 1e6
    assert 40 < size_mb < 50
    token = httpx.post(
        f"{url}/api/v1/auth/register",
        json={"email": "big@example.com", "password": "a good password"},
    ).json()["access_token"]

    def upload(path: Path) -> httpx.Response:
        with open(path, "rb") as fh:
            return httpx.post(
                f"{url}/api/v1/jobs",
                headers={"Authorization": f"Bearer {token}"},
                data={"kind": "convert", "params": json.dumps({"output_format": "flac"})},
                files={"files": (path.name, fh, "audio/wav")},
                timeout=120,
            )

    # A small upload first, so one-off costs (lazy imports, pools) are not counted.
    small = tmp_path / "small.wav"
    save_audio(small, Audio((rng.standard_normal((2, 44100 * 3)) * 0.1).astype(np.float32), 44100))
    assert upload(small).status_code == 202
    time.sleep(1.0)
    server = psutil.Process(proc.pid)
    base = server.memory_info().rss
    peak = base
    stop = threading.Event()

    def watch():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, server.memory_info().rss)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        r = upload(big)
    finally:
        stop.set()
        watcher.join()
    assert r.status_code == 202, r.text
    grew_mb = (peak - base) / 1e6
    assert grew_mb < size_mb / 4, f"server grew by {grew_mb:.0f} MB for a {size_mb:.0f} MB upload"
