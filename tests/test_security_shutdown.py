"""The embedded Postgres stops on every graceful exit, SIGTERM included: after `soundstage serve`
and after a test session are sent SIGTERM, no postmaster of theirs is left running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(pred, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_stops_its_embedded_postgres_on_sigterm(tmp_path):
    port = _free_port()
    env = {**os.environ, "SOUNDSTAGE_DATA_DIR": str(tmp_path / "data"), "SOUNDSTAGE_WORKERS": "1"}
    env.pop("SOUNDSTAGE_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(healthy, 120, "the server")
        pid = _postmaster_pid(tmp_path / "data" / "pg")
        assert pid is not None and _alive(pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        _wait_for(lambda: not _alive(pid), 30, "the embedded Postgres to stop")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_test_session_stops_its_embedded_postgres_on_sigterm(tmp_path):
    child = tmp_path / "child"
    child.mkdir()
    ready = tmp_path / "ready"
    (child / "conftest.py").write_text("from tests.conftest import *  # noqa: F401,F403\n")
    (child / "test_hold.py").write_text(
        textwrap.dedent(
            f"""
            import time
            from pathlib import Path

            def test_hold(pg_url):
                Path({str(ready)!r}).write_text("up")
                time.sleep(300)
            """
        )
    )
    basetemp = tmp_path / "bt"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(child / "test_hold.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={basetemp}",
            f"--rootdir={ROOT}",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(ready.exists, 120, "the child session's database")
        pgdata = next(basetemp.glob("pg*/pg"))
        pid = _postmaster_pid(pgdata)
        assert pid is not None and _alive(pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        _wait_for(lambda: not _alive(pid), 30, "the embedded Postgres to stop")
    finally:
        if proc.poll() is None:
            proc.kill()
