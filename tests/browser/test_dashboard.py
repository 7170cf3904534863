"""The jobs dashboard: newest first, paged, live, with cancel and delete; a queued job's page."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect


def _create(studio, kind: str, path) -> str:
    with studio.server.api(studio.token()) as c, open(path, "rb") as fh:
        r = c.post("/api/v1/jobs", data={"kind": kind}, files={"files": (path.name, fh)})
        assert r.status_code == 202, r.text
        return r.json()["id"]


def _wait_done(studio, ids: list[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    with studio.server.api(studio.token()) as c:
        for job_id in ids:
            while c.get(f"/api/v1/jobs/{job_id}").json()["status"] not in ("completed", "failed"):
                assert time.monotonic() < deadline
                time.sleep(0.2)


def test_dashboard_pages_updates_live_cancels_and_deletes(studio, tracks):
    studio.sign_up()
    page = studio.page
    quick = [_create(studio, "analyze", tracks["short"]) for _ in range(11)]
    _wait_done(studio, quick)
    # Two long jobs keep both workers busy, so the third waits in the queue.
    running = [_create(studio, "stems", tracks["long"]) for _ in range(2)]
    queued = _create(studio, "stems", tracks["long"])

    studio.goto(f"/jobs/{queued}")
    expect(page.locator(".queue")).to_contain_text(re.compile(r"position \d+"))
    studio.shot("queued")
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("section.job")).to_have_attribute("data-status", "canceled")

    studio.goto("/")
    rows = page.locator("li.job-row")
    expect(rows).to_have_count(10)
    expect(page.locator(".pager")).to_contain_text("1–10 of 14")
    # Newest first: the canceled stems job, then the two running ones.
    expect(rows.nth(0)).to_have_attribute("data-status", "canceled")
    expect(rows.nth(1).locator(".job-kind")).to_have_text("stems")
    studio.shot("dashboard")
    # Live: the running jobs finish (or are canceled) without a reload.
    rows.nth(1).get_by_role("button", name="Cancel stems job").click()
    for i in (1, 2):
        expect(rows.nth(i)).to_have_attribute(
            "data-status", re.compile("completed|canceled"), timeout=90_000
        )
    page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(4)
    expect(page.locator(".pager")).to_contain_text("11–14 of 14")
    rows.nth(0).get_by_role("button", name="Delete analyze job").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.locator(".pager")).to_contain_text("11–13 of 13")
    with studio.server.api(studio.token()) as c:
        assert c.get("/api/v1/jobs?limit=1").json()["total"] == 13
        statuses = {c.get(f"/api/v1/jobs/{j}").json()["status"] for j in running}
    assert statuses <= {"completed", "canceled"}
    studio.shot("after-delete")
