"""Accounts, keyboard-only use, a phone-sized screen and the weight of the first page."""

from __future__ import annotations

import gzip

from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD

NEW_PASSWORD = "a brand new passphrase"


def test_sign_up_log_out_log_in_reset_and_survive_a_reload(studio):
    page = studio.page
    email = studio.sign_up()
    # The session survives a reload (and no token is ever in the address bar).
    page.reload()
    expect(page.get_by_role("heading", name="Your jobs")).to_be_visible()
    assert "token" not in page.url
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    # Signed out: a private page sends you to log in, then back where you were going.
    studio.goto("/new/analyze")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("reset your password")
    studio.shot("wrong-password")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send recovery").click()
    expect(page.get_by_role("status")).to_contain_text("recovery code")
    code = studio.server.recovery_token(email)
    page.get_by_label("Recovery code").fill(code)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    studio.shot("reset")
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("heading", name="Your jobs")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your jobs")).to_be_visible()
    assert PASSWORD != NEW_PASSWORD


def _tab_to(page, predicate_js: str, limit: int = 60) -> None:
    """Press Tab until the focused element satisfies ``predicate_js`` (an arrow function)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"({predicate_js})(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached: {predicate_js}")


def _arrived(page, heading: str) -> None:
    """The page named ``heading`` is shown and holds the focus, where a keyboard user starts."""
    h1 = page.get_by_role("heading", name=heading, level=1)
    expect(h1).to_be_visible()
    expect(h1).to_be_focused()


def test_whole_flow_by_keyboard(studio, tracks):
    page = studio.page
    studio.goto("/signup")
    _arrived(page, "Create your account")
    _tab_to(page, "el => el.id === 'auth-email'")
    page.keyboard.type("kbd-" + __import__("uuid").uuid4().hex[:8] + "@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    _arrived(page, "Your jobs")
    _tab_to(page, "el => el.textContent.trim() === 'Start a new job'")
    page.keyboard.press("Enter")
    _arrived(page, "Start a new job")
    _tab_to(page, "el => el.getAttribute('href') === '/new/analyze'")
    page.keyboard.press("Enter")
    _arrived(page, "New analyze job")
    # The file input is reachable by Tab; the OS file dialog it opens is outside the page, so
    # the chosen file is handed to the focused input the way that dialog would.
    _tab_to(page, "el => el.type === 'file'")
    page.locator("input[type=file]:focus").set_input_files(str(tracks["short"]))
    _tab_to(page, "el => el.textContent.trim() === 'Start analyze'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/jobs/*")
    # The job page's heading comes after the job loads; the focus still moves to it.
    expect(page.locator("h1")).to_be_focused()
    studio.wait_status("completed")
    wave = page.locator(".analysis figure.wave")
    expect(wave).to_have_attribute("data-ready", "true")
    _tab_to(page, "el => (el.getAttribute('aria-label') || '').startsWith('Play ')")
    page.keyboard.press("Enter")
    expect(wave).to_have_attribute("data-playing", "true")
    # A visible focus ring on the focused control.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")  # pause
    expect(wave).to_have_attribute("data-playing", "false")
    # Seeking without a mouse: the position slider follows the arrow keys and End.
    _tab_to(page, "el => (el.getAttribute('aria-label') || '').startsWith('Position in ')")
    page.keyboard.press("End")
    expect(wave.locator(".time")).to_have_text("0:08")
    studio.shot("keyboard-played")


def _no_horizontal_scroll(page) -> None:
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px viewport"


def test_phone_width_has_no_horizontal_scroll(studio_factory, tracks):
    studio = studio_factory(viewport={"width": 375, "height": 740})
    page = studio.page
    studio.sign_up()
    _no_horizontal_scroll(page)
    for kind in ("beat", "mix", "mashup", "video"):
        studio.goto(f"/new/{kind}")
        page.get_by_role("heading", name=f"New {kind} job").wait_for()
        if kind in ("mix", "mashup"):
            page.locator("input[type=file]").set_input_files([str(tracks["short"])] * 2)
        page.locator("form.job-form").wait_for()
        _no_horizontal_scroll(page)
        studio.shot(f"{kind}-form")
    studio.start_job("stems", [tracks["short"]])
    studio.wait_status("completed")
    expect(page.locator("section.stems")).to_have_attribute("data-ready", "true")
    _no_horizontal_scroll(page)
    studio.shot("job-page")
    studio.goto("/")
    page.locator("li.job-row").first.wait_for()
    _no_horizontal_scroll(page)
    studio.shot("dashboard")


def test_video_prompt_counts_characters_live(studio):
    studio.sign_up()
    studio.goto("/new/video")
    page = studio.page
    prompt = page.get_by_label("Prompt")
    prompt.fill("neon city at night")
    count = page.locator("#f-prompt-count")
    expect(count).to_contain_text("18 / 500 characters (at least 50)")
    expect(count).to_contain_text("32 more to go")
    prompt.fill("x" * 60)
    expect(count).to_have_text("60 / 500 characters (at least 50)")
    studio.shot("video-form")


def test_first_page_loads_under_300_kb_of_gzipped_javascript(studio):
    scripts: dict[str, bytes] = {}

    def keep(response):
        if response.request.resource_type == "script":
            scripts[response.url] = response.body()

    studio.page.on("response", keep)
    studio.goto("/login")
    expect(studio.page.get_by_role("heading", name="Log in")).to_be_visible()
    studio.page.wait_for_load_state("networkidle")
    assert scripts, "no script was loaded"
    gz_bytes = sum(len(gzip.compress(body, 9)) for body in scripts.values())
    assert gz_bytes < 300 * 1024, f"{gz_bytes / 1024:.0f} KB gzipped"
