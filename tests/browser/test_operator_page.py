"""The operator's page (/admin): another user's canceled job, found by filter, retried and
canceled again by an operator granted with the real CLI; a non-operator sees "operators only"."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, ROOT


def _canceled_stems_job(studio, path) -> str:
    """A stems job on the long song, canceled at once (it stops at its next check)."""
    with studio.server.api(studio.token()) as c, open(path, "rb") as fh:
        r = c.post("/api/v1/jobs", data={"kind": "stems"}, files={"files": (path.name, fh)})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert c.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
        deadline = time.monotonic() + 60
        while c.get(f"/api/v1/jobs/{job_id}").json()["status"] != "canceled":
            assert time.monotonic() < deadline, "the job was not canceled"
            time.sleep(0.2)
    return job_id


def _grant_admin(server, email: str) -> None:
    """`soundstage admin grant EMAIL` against the live server's embedded database."""
    env = {**os.environ, "SOUNDSTAGE_DATA_DIR": str(server.log.parent)}
    env.pop("SOUNDSTAGE_DATABASE_URL", None)
    cli = Path(sys.executable).with_name("soundstage")
    done = subprocess.run(
        [str(cli), "admin", "grant", email],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # rich writes to stderr and wraps lines
    assert f"{email} is now an admin" in " ".join((done.stdout + done.stderr).split())


def _log_in_again(studio) -> None:
    """The role arrives with the next login."""
    page = studio.page
    studio.goto("/")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Email").fill(studio.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Your jobs").wait_for()


def test_operator_finds_retries_and_cancels_another_users_job(studio_factory, tracks):
    user = studio_factory()
    user_email = user.sign_up()
    job_id = _canceled_stems_job(user, tracks["long"])

    op = studio_factory()
    page = op.page
    op.sign_up()
    # Not an operator yet: no link, and the page says so in a sentence (the API's 403).
    expect(page.get_by_role("link", name="Operator")).to_have_count(0)
    op.goto("/admin")
    expect(page.get_by_role("heading", name="Operators only")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("for operators only")
    expect(page.get_by_role("alert")).to_contain_text(f"soundstage admin grant {op.email}")
    expect(page.locator("table")).to_have_count(0)
    op.shot("operators-only")

    _grant_admin(op.server, op.email)
    _log_in_again(op)
    page.get_by_role("link", name="Operator").click()
    expect(page.get_by_role("heading", name="Operator view")).to_be_visible()
    expect(page.get_by_role("heading", name="Failures in the last 7 days")).to_be_visible()

    # The other user's canceled job, found through the filters (keyboard: labels and Enter).
    page.get_by_label("Status").select_option("canceled")
    page.get_by_label("Kind").select_option("stems")
    page.get_by_label("Error code").fill("canceled")
    page.get_by_label("Error code").press("Enter")
    row = page.locator(f"tr[data-job-id='{job_id}']")
    expect(row).to_have_attribute("data-status", "canceled")
    expect(row).to_contain_text(user_email)
    expect(row).to_contain_text("CANCELED")
    statuses = page.locator("table.admin-jobs tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    assert set(statuses) == {"canceled"}
    op.shot("filtered")

    page.get_by_role("button", name=f"Retry stems job of {user_email}").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Queued again: the stems job of {user_email}"
    )
    # Out of the "canceled" list; with any status it is back in the queue.
    expect(row).to_have_count(0)
    page.get_by_role("button", name="Clear").click()
    expect(row).to_have_attribute("data-status", re.compile("queued|processing|completed"))
    expect(row.locator(".code")).to_have_count(0)
    op.shot("retried")
    with user.server.api(user.token()) as c:
        assert c.get(f"/api/v1/jobs/{job_id}").json()["status"] != "canceled"

    # Cancel it again from the operator's page (it would otherwise hold a worker).
    cancel = page.get_by_role("button", name=f"Cancel stems job of {user_email}")
    # The job may finish between a look and a click: then there is nothing left to cancel.
    if cancel.count():
        try:
            cancel.click(timeout=5000)
        except PlaywrightTimeout:
            assert not cancel.count(), "the cancel button stayed but could not be clicked"
        else:
            expect(page.get_by_role("status")).to_contain_text(re.compile("Cancel(ed| requested)"))

    # A phone: the tables become labelled cards, nothing scrolls sideways.
    page.set_viewport_size({"width": 375, "height": 740})
    expect(row).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    op.shot("phone")
