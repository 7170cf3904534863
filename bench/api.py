"""Authenticated status reads against a hello-world FastAPI app, in the same run.

Starts `soundstage serve` on embedded defaults (a fresh data folder) and a one-route FastAPI app
on uvicorn, then loads each with wrk (100 connections; a Python load generator when wrk is not
installed) and prints requests per second and the ratio. The goal: authenticated
``GET /api/v1/jobs/{id}`` at >= 50 % of hello-world.

    .venv/bin/python bench/api.py [--seconds 10] [--connections 100]

Request limits are raised for the run (they would otherwise answer most of the load with 429).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI

ROOT = Path(__file__).resolve().parent.parent
hello_app = FastAPI()


@hello_app.get("/")
def hello() -> dict:
    return {"hello": "world"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout_s: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


def _wrk(url: str, seconds: int, connections: int, headers: dict) -> tuple[float, int]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


def _python_load(url: str, seconds: int, connections: int, headers: dict) -> tuple[float, int]:
    import httpx

    async def run() -> tuple[int, int]:
        done, bad = 0, 0
        stop = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:

            async def worker() -> None:
                nonlocal done, bad
                while time.monotonic() < stop:
                    r = await client.get(url)
                    done += 1
                    bad += r.status_code >= 300

            await asyncio.gather(*(worker() for _ in range(connections)))
        return done, bad

    done, bad = asyncio.run(run())
    return done / seconds, bad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=100)
    args = ap.parse_args()
    load = _wrk if shutil.which("wrk") else _python_load
    data = Path(tempfile.mkdtemp(prefix="bench-api-"))
    big = str(10**9)
    env = {
        **os.environ,
        "SOUNDSTAGE_DATA_DIR": str(data),
        "SOUNDSTAGE_ADDRESS_LIMIT_PER_MIN": big,
        "SOUNDSTAGE_USER_LIMIT_PER_MIN": big,
        "SOUNDSTAGE_AUTH_LIMIT_PER_MIN": big,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("SOUNDSTAGE_DATABASE_URL", None)
    app_port, hello_port = _free_port(), _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from cli.main import main; main()",
                "serve",
                "--port",
                str(app_port),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(ROOT / "bench"),
                "api:hello_app",
                "--port",
                str(hello_port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        import httpx

        base = f"http://127.0.0.1:{app_port}"
        _wait_http(f"{base}/health")
        _wait_http(f"http://127.0.0.1:{hello_port}/")
        r = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"email": "bench@example.com", "password": "bench bench bench"},
        )
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = httpx.post(
            f"{base}/api/v1/jobs",
            data={"kind": "beat", "params": '{"genre": "house", "duration_s": 8}'},
            headers=auth,
        )
        job_id = r.json()["id"]
        for _ in range(600):
            if httpx.get(f"{base}/api/v1/jobs/{job_id}", headers=auth).json()["status"] in (
                "completed",
                "failed",
            ):
                break
            time.sleep(0.5)
        rows = []
        hello_rps, _ = load(f"http://127.0.0.1:{hello_port}/", args.seconds, args.connections, {})
        rows.append(("hello-world FastAPI (baseline)", hello_rps, 0))
        rps, bad = load(f"{base}/health", args.seconds, args.connections, {})
        rows.append(("GET /health (one query)", rps, bad))
        rps, bad = load(f"{base}/api/v1/jobs/{job_id}", args.seconds, args.connections, auth)
        rows.append(("GET /api/v1/jobs/{id} (signed in)", rps, bad))
        print(
            f"load: {load.__name__.strip('_')}, {args.connections} connections, {args.seconds} s each"
        )
        print(f"{'route':40} {'req/s':>9} {'vs hello':>9} {'non-2xx':>8}")
        for name, rps, bad in rows:
            print(f"{name:40} {rps:9.0f} {rps / hello_rps:9.1%} {bad:8d}")
        ratio = rows[-1][1] / hello_rps
        print(f"authenticated status reads: {ratio:.1%} of hello-world (goal >= 50%)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
