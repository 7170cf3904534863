"""Browser journeys: one live server (its own process and embedded Postgres) per test session,
Debian's Chromium driven by Playwright, a screenshot of every page under tests/artifacts/.

Chromium is found at ``$SOUNDSTAGE_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on PATH;
without one these tests are skipped (CI installs it: see .ci/run).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
DIST = ROOT / "web" / "client" / "dist"
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str | None:
    env = os.environ.get("SOUNDSTAGE_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_binary() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium on this machine (CI installs Debian's chromium)")
    return path


@pytest.fixture(scope="session")
def built_client() -> Path:
    """The built client, rebuilt by make when its sources changed (`make test` already did)."""
    subprocess.run(["make", "--no-print-directory", "client"], cwd=ROOT, check=True, timeout=600)
    assert (DIST / "index.html").exists()
    return DIST


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def recovery_token(self, email: str, timeout_s: float = 10) -> str:
        import re

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.findall(
                rf"recovery token for {re.escape(email)}: ([A-Za-z0-9_-]+)", self.log.read_text()
            )
            if found:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"no recovery token for {email} in the server log")


@pytest.fixture(scope="session")
def live_server(built_client) -> Iterator[LiveServer]:
    port = _free_port()
    # A folder of its own (not pytest's numbered temp dirs, which concurrent runs may rotate).
    data = Path(tempfile.mkdtemp(prefix="soundstage-browser-"))
    log = data / "server.log"
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SOUNDSTAGE_DATA_DIR": str(data),
        "SOUNDSTAGE_PUBLIC_URL": url,
        "SOUNDSTAGE_WEB_CLIENT_DIR": str(built_client),
        "SOUNDSTAGE_WORKERS": "2",
        "SOUNDSTAGE_RATE_LIMIT_PER_HOUR": "1000",
        "SOUNDSTAGE_SIGNING_SECRET": "browser-test-secret",
        "SOUNDSTAGE_TEST_STREAM_MAX_S": "3",
    }
    env.pop("SOUNDSTAGE_DATABASE_URL", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.browser.live_server", str(port), str(data)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"live server exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"live server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield LiveServer(url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(chromium_binary) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_binary, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Studio:
    """One browser tab on the live server, with the steps every journey shares."""

    def __init__(self, page, server: LiveServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name
        self.shots = 0
        self.csp_violations: list[str] = []
        self.email = ""
        page.on(
            "console",
            lambda m: (
                self.csp_violations.append(m.text) if "Content Security Policy" in m.text else None
            ),
        )

    def goto(self, path: str) -> None:
        self.page.goto(self.server.url + path)

    def shot(self, label: str) -> Path:
        """A screenshot of the whole page, saved under tests/artifacts/browser/."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = ARTIFACTS / f"{self.name}-{self.shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_up(self) -> str:
        self.email = f"web-{uuid.uuid4().hex[:10]}@example.com"
        self.goto("/signup")
        self.page.get_by_label("Email").fill(self.email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.shot("signup")
        self.page.get_by_role("button", name="Sign up").click()
        self.page.get_by_role("heading", name="Your jobs").wait_for()
        return self.email

    def token(self) -> str:
        return self.page.evaluate(
            "JSON.parse(localStorage.getItem('soundstage.session')).access_token"
        )

    def start_job(self, kind: str, files: list[Path] = (), fill=None) -> str:
        """Open the kind's form, add files, let ``fill(page)`` set controls, start; returns
        the job id once the job page shows."""
        self.goto(f"/new/{kind}")
        self.page.get_by_role("heading", name=f"New {kind} job").wait_for()
        if files:
            self.page.locator("input[type=file]").set_input_files([str(f) for f in files])
        if fill:
            fill(self.page)
        self.shot(f"{kind}-form")
        self.page.get_by_role("button", name=f"Start {kind}").click()
        self.page.wait_for_url("**/jobs/*")
        return self.page.url.rsplit("/", 1)[-1]

    def wait_status(self, status: str = "completed", timeout_s: float = 120) -> None:
        self.page.locator(f"section.job[data-status={status}]").wait_for(timeout=timeout_s * 1000)

    def api_events(self, job_id: str) -> list[int]:
        """Every event id of the job, read from the API's stream (for comparing with the log)."""
        ids = []
        with self.server.api(self.token()) as c:
            with c.stream("GET", f"/api/v1/jobs/{job_id}/events") as r:
                for line in r.iter_lines():
                    if line.startswith("id:"):
                        ids.append(int(line[3:].strip()))
        return ids

    def log_ids(self) -> list[int]:
        return [
            int(x)
            for x in self.page.locator("ol.log li").evaluate_all(
                "els => els.map(e => e.dataset.eventId)"
            )
        ]


@pytest.fixture
def studio_factory(browser, live_server, request):
    contexts = []
    studios: list[Studio] = []

    def make(viewport: dict | None = None) -> Studio:
        ctx = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        ctx.set_default_timeout(30_000)
        contexts.append(ctx)
        name = request.node.name.removeprefix("test_") + (f"-{len(studios)}" if studios else "")
        s = Studio(ctx.new_page(), live_server, name)
        studios.append(s)
        return s

    yield make
    for ctx in contexts:
        ctx.close()
    violations = [v for s in studios for v in s.csp_violations]
    assert not violations, f"the page broke the Content-Security-Policy: {violations}"


@pytest.fixture
def studio(studio_factory) -> Studio:
    return studio_factory()


@pytest.fixture(scope="session")
def tracks() -> Iterator[dict[str, Path]]:
    """Short synthesized songs: 8 s (most journeys) and 16 s (long enough to watch a job run)."""
    from functions.audio_io import save_audio
    from tests.synth import synth_song

    folder = Path(tempfile.mkdtemp(prefix="soundstage-browser-audio-"))
    out = {}
    for name, seconds in (("short", 8.0), ("long", 16.0)):
        audio, _ = synth_song(bpm=120, key="A minor", duration_s=seconds)
        out[name] = folder / f"song-{name}.wav"
        save_audio(out[name], audio, "wav")
    not_audio = folder / "notes.wav"
    not_audio.write_text("these are my lyrics, not a recording\n" * 50)
    out["not_audio"] = not_audio
    yield out
    shutil.rmtree(folder, ignore_errors=True)
