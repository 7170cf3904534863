"""The token ``soundstage login`` saved per server, and an HTTP client that sends it (and
refreshes it once when the server says it expired)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cli.console import console

if TYPE_CHECKING:  # httpx loads when a command talks to a server, not for local commands
    import httpx


def config_dir() -> Path:
    return Path(os.environ.get("SOUNDSTAGE_CONFIG_DIR") or Path.home() / ".config" / "soundstage")


def load_credentials(server: str) -> dict | None:
    path = config_dir() / "credentials.json"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get(server.rstrip("/"))


def save_credentials(server: str, tokens: dict) -> None:
    path = config_dir() / "credentials.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[server.rstrip("/")] = tokens
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)


def open_client(server: str) -> httpx.Client:
    import httpx

    creds = load_credentials(server)
    headers = {"Authorization": f"Bearer {creds['access_token']}"} if creds else {}
    return httpx.Client(
        base_url=server.rstrip("/"), headers=headers, timeout=httpx.Timeout(30, read=180)
    )


def refresh(server: str, client: httpx.Client) -> bool:
    creds = load_credentials(server)
    if not creds or not creds.get("refresh_token"):
        return False
    import httpx

    r = httpx.post(
        f"{server.rstrip('/')}/api/v1/auth/refresh",
        json={"refresh_token": creds["refresh_token"]},
        timeout=30,
    )
    if r.status_code != 200:
        return False
    save_credentials(server, r.json())
    client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return True


def request(server: str, client: httpx.Client, method: str, url: str, **kw) -> httpx.Response:
    r = client.request(method, url, **kw)
    if r.status_code == 401 and refresh(server, client):
        r = client.request(method, url, **kw)
    if r.status_code == 401:
        console.print("[red]Not signed in[/red]: run `soundstage login --server URL` first.")
        raise SystemExit(2)
    return r
