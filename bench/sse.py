"""N live SSE streams on one API process: delivery latency and server memory.

Starts `soundstage serve` on embedded defaults (a fresh data folder, no worker threads), makes
6 running jobs for one user, opens N event streams spread over them, then writes events into
`job_events` from this process (as a worker would) and measures, per delivered event, the time
from its insert to its arrival at the client. Prints p50/p95/p99 against the 250 ms goal and the
server's memory before the streams, with them open, and after they closed.

    .venv/bin/python bench/sse.py [--streams 1000] [--jobs 6] [--rounds 20] [--interval 0.5]

The load generator shares the machine with the server: on a small machine its own scheduling
is part of the latency measured.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 1024 / 1024


async def _stream(
    port: int,
    path: str,
    token: str,
    opened: asyncio.Event,
    counter: dict,
    latencies: list[float],
    stop: asyncio.Event,
) -> None:
    # A bare asyncio client: an HTTP client library's per-chunk work, times a thousand streams
    # on the same small machine, would be measured as the server's latency.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    try:
        status = await reader.readline()
        if b" 200 " not in status:
            counter["refused"] += 1
            return
        counter["open"] += 1
        if counter["open"] >= counter["want"]:
            opened.set()
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data:"):
                now = time.time()
                sent = json.loads(line[5:]).get("sent_at")
                if sent is not None and sent >= counter["since"]:  # not an earlier wave's backlog
                    latencies.append(now - sent)
    finally:
        writer.close()


async def run(args, port: int, token: str, job_ids: list[str], store, server_pid: int) -> dict:
    latencies: list[float] = []
    counter = {"open": 0, "refused": 0, "want": args.streams, "since": time.time()}
    opened, stop = asyncio.Event(), asyncio.Event()
    rss_before = _rss_mb(server_pid)
    t0 = time.monotonic()
    tasks = []
    for i in range(args.streams):
        path = f"/api/v1/jobs/{job_ids[i % len(job_ids)]}/events"
        tasks.append(
            asyncio.create_task(_stream(port, path, token, opened, counter, latencies, stop))
        )
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # a burst of connections, not a SYN flood
    try:
        await asyncio.wait_for(opened.wait(), 180)
    except TimeoutError:
        pass
    connect_s = time.monotonic() - t0
    await asyncio.sleep(1.0)
    rss_open = _rss_mb(server_pid)
    jobs = [store.load(j) for j in job_ids]
    import psutil

    server = psutil.Process(server_pid)
    cpu0 = sum(server.cpu_times()[:2])
    wall0 = time.monotonic()
    for n in range(args.rounds):
        for job in jobs:
            # The latency clock starts at the insert, as a worker's progress update would.
            await asyncio.to_thread(
                store.event, job, "progress", {"progress": n, "sent_at": time.time()}
            )
        await asyncio.sleep(args.interval)
    await asyncio.sleep(2.0)
    cpu_s = sum(server.cpu_times()[:2]) - cpu0
    wall_s = time.monotonic() - wall0
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(3.0)
    gc.collect()
    rss_after = _rss_mb(server_pid)
    return {
        "latencies": latencies,
        "expected": counter["open"] * args.rounds,
        "open": counter["open"],
        "refused": counter["refused"],
        "connect_s": connect_s,
        "rss": (rss_before, rss_open, rss_after),
        "cpu_s": cpu_s,
        "wall_s": wall_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.5)
    args = ap.parse_args()

    import httpx

    from shared.db import Database
    from shared.jobs import JobStore

    data = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    big = str(10**9)
    env = {
        **os.environ,
        "SOUNDSTAGE_DATA_DIR": str(data),
        "SOUNDSTAGE_WORKERS": "0",
        "SOUNDSTAGE_ADDRESS_LIMIT_PER_MIN": big,
        "SOUNDSTAGE_USER_LIMIT_PER_MIN": big,
        "SOUNDSTAGE_LOG_LEVEL": "WARNING",
    }
    env.pop("SOUNDSTAGE_DATABASE_URL", None)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        r = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"email": "sse-bench@example.com", "password": "bench bench bench"},
        )
        token = r.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        user_id = httpx.get(f"{base}/api/v1/auth/me", headers=headers).json()["id"]
        db = Database(Database.embedded_url(data, cleanup_mode=None))
        store = JobStore(db)
        job_ids = []
        for _ in range(args.jobs):
            job_id = str(uuid.uuid4())
            store.create(
                job_id=job_id,
                user_id=user_id,
                kind="beat",
                params={},
                inputs=[],
                stages=["generating"],
                idempotency_key=None,
                estimated_duration_s=60.0,
                estimated_cost_usd=0.0,
                budget_usd=None,
            )
            store.claim("bench-worker", job_id)  # running, as a worker would have it
            job_ids.append(job_id)
        out = asyncio.run(run(args, port, token, job_ids, store, proc.pid))
        # A second wave on the same process: memory that was returned to the process is reused,
        # so the peak does not grow with every wave (a leak would).
        again = asyncio.run(run(args, port, token, job_ids, store, proc.pid))
        lat_ms = [x * 1000 for x in out["latencies"]]
        before, during, after = out["rss"]
        print(
            f"streams: {out['open']} open ({out['refused']} refused) over {args.jobs} jobs, "
            f"all connected in {out['connect_s']:.1f} s"
        )
        print(
            f"events: {len(lat_ms)} delivered of {out['expected']} expected "
            f"({args.rounds} rounds x {args.jobs} jobs, every {args.interval} s)"
        )
        print(
            f"delivery latency ms: p50 {_pct(lat_ms, 0.5):.0f}  p95 {_pct(lat_ms, 0.95):.0f}  "
            f"p99 {_pct(lat_ms, 0.99):.0f}  max {max(lat_ms, default=float('nan')):.0f}  "
            f"(goal p99 < 250; p99/goal = {_pct(lat_ms, 0.99) / 250:.2f})"
        )
        print(
            f"server memory MB: before {before:.0f}  streams open {during:.0f}  "
            f"after close {after:.0f}  (after/before = {after / before:.2f}); second wave: "
            f"open {again['rss'][1]:.0f}  after close {again['rss'][2]:.0f}  "
            f"(p99 {_pct([x * 1000 for x in again['latencies']], 0.99):.0f} ms)"
        )
        per_us = out["cpu_s"] / max(1, len(lat_ms)) * 1e6
        print(
            f"server CPU while events flowed: {out['cpu_s']:.1f} s in {out['wall_s']:.1f} s wall "
            f"({per_us:.0f} us per delivered event; machine load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
        db.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
