"""Upload caps hold while bytes arrive, against a real uvicorn server on a socket: an over-size
Content-Length is refused before any body is sent, a chunked body is cut off at the per-file
and per-request caps (not read to the end), and the partial temp files are gone afterwards."""

from __future__ import annotations

import os
import select
import socket
import tempfile
import threading
import time
import uuid

import httpx
import pytest

from tests.conftest import make_settings

MB = 1024 * 1024
BOUNDARY = "soundstage-test-boundary"


@pytest.fixture(scope="module")
def live(pg_url, tmp_path_factory):
    import uvicorn

    from functions.audio_tools import AUDIO_TOOLS
    from shared.services import open_services
    from tests.kinds import TEST_KINDS
    from web.app import create_app

    svc = open_services(
        make_settings(
            tmp_path_factory.mktemp("live"), database_url=pg_url, max_upload_mb=2, max_files=2
        ),
        kinds=TEST_KINDS,
        audio=AUDIO_TOOLS,
    )
    app = create_app(svc, start_runner=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    email = f"up-{uuid.uuid4().hex[:8]}@example.com"
    r = httpx.post(
        f"{base}/api/v1/auth/register", json={"email": email, "password": "long enough pw"}
    )
    token = r.json()["access_token"]
    yield {"port": port, "base": base, "token": token, "services": svc}
    server.should_exit = True
    thread.join(timeout=10)
    svc.close()


def _temp_fds() -> int:
    tmp = tempfile.gettempdir()
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(tmp):
                n += 1
        except OSError:
            pass
    return n


def _head(live, extra: str) -> bytes:
    return (
        "POST /api/v1/jobs HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{live['port']}\r\n"
        f"Authorization: Bearer {live['token']}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"{extra}\r\n"
    ).encode()


def _part_head(name: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    sock.settimeout(20)
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _send_chunked(live, parts: list[tuple[bytes, int]], stop_after: int) -> tuple[int, bytes]:
    """Send ``parts`` (head, body size) chunked; stop once the server answers. Returns (body
    bytes sent, the response head)."""
    sock = socket.create_connection(("127.0.0.1", live["port"]))
    sock.settimeout(5)
    sock.sendall(_head(live, "Transfer-Encoding: chunked\r\n"))
    block = b"\x01" * (256 * 1024)
    sent = 0

    def chunk(data: bytes) -> None:
        nonlocal sent
        sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
        sent += len(data)

    try:
        for head, size in parts:
            chunk(head)
            left = size
            while left > 0 and sent < stop_after:
                if select.select([sock], [], [], 0)[0]:
                    raise StopIteration  # the server has answered
                piece = block[: min(left, len(block))]
                chunk(piece)
                left -= len(piece)
            chunk(b"\r\n")
        chunk(f"--{BOUNDARY}--\r\n".encode())
        sock.sendall(b"0\r\n\r\n")
    except (StopIteration, BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    try:
        return sent, _read_response(sock)
    finally:
        sock.close()


def test_oversize_content_length_is_refused_before_the_body(live):
    sock = socket.create_connection(("127.0.0.1", live["port"]))
    try:
        sock.sendall(_head(live, f"Content-Length: {10**12}\r\n"))
        resp = _read_response(sock)  # no body byte was sent: the answer must come anyway
    finally:
        sock.close()
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]


def test_one_huge_file_part_is_cut_off_at_the_file_cap(live):
    before = _temp_fds()
    sent, resp = _send_chunked(live, [(_part_head("big.wav"), 1024 * MB)], stop_after=256 * MB)
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    # The server stopped reading near the 2 MB cap, far from the 1 GB the client meant to send
    # (socket buffers let a few MB more through before the answer is seen).
    assert sent < 64 * MB
    time.sleep(0.2)
    assert _temp_fds() <= before  # the spooled partial file is closed (and so deleted)
    r = httpx.get(f"{live['base']}/health")
    assert r.status_code == 200


def test_many_parts_are_cut_off_at_the_request_cap(live):
    parts = [(_part_head(f"p{i}.wav"), int(1.9 * MB)) for i in range(6)]  # each under 2 MB
    sent, resp = _send_chunked(live, parts, stop_after=256 * MB)
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    assert sent < 64 * MB


def test_content_length_over_the_request_cap(live):
    body = b"x" * (6 * MB)
    r = httpx.post(
        f"{live['base']}/api/v1/jobs",
        content=body,
        headers={
            "Authorization": f"Bearer {live['token']}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )
    assert r.status_code == 413 and r.json()["code"] == "FILE_TOO_LARGE"
