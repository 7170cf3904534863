"""What a person does in the studio, in a real Chromium against a live server."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_new_user_analyzes_a_track_and_sees_it_drawn(studio, tracks):
    studio.sign_up()
    studio.shot("dashboard-empty")
    job_id = studio.start_job("analyze", [tracks["short"]])
    studio.wait_status("completed")
    page = studio.page
    # The synthesized song is 120 BPM in A minor, 4/4.
    expect(page.locator(".facts .tempo")).to_have_text(re.compile(r"^1(19\.\d|20\.\d) BPM$"))
    expect(page.locator(".facts .key")).to_contain_text("A minor")
    expect(page.locator(".facts .meter")).to_have_text("4/4")
    expect(page.locator(".facts .lufs")).to_contain_text("LUFS")
    wave = page.locator(".analysis figure.wave")
    expect(wave).to_have_attribute("data-ready", "true")
    # Beat grid (~2 beats/s over 8 s), downbeats every bar, and at least one section region.
    assert int(wave.get_attribute("data-beats")) >= 12
    assert int(wave.get_attribute("data-downbeats")) >= 3
    assert int(wave.get_attribute("data-sections")) >= 1
    # The markers and regions are really in the waveform's DOM (wavesurfer's shadow root).
    drawn = wave.locator(".wave-box > div").evaluate(
        'host => host.shadowRoot.querySelectorAll(\'[part~="region"], [part~="marker"]\').length'
    )
    assert drawn >= 12 + 1
    # Every stage shows its status, time and engine.
    row = page.locator("table.stages tr[data-stage=audio_analysis]")
    expect(row).to_have_attribute("data-status", "completed")
    expect(row.locator("td").nth(2)).not_to_have_text("—")
    studio.shot("job-page")
    # The log holds every event the API has, once each, in order.
    expect(page.locator("ol.log li[data-type=completed]")).to_have_count(1)
    assert studio.log_ids() == studio.api_events(job_id)


def test_master_compares_before_and_after(studio, tracks):
    studio.sign_up()

    def preset(page):
        page.get_by_label("Preset").select_option("streaming")

    studio.start_job("master", [tracks["short"]], preset)
    studio.wait_status("completed")
    page = studio.page
    table = page.locator("table.loudness")
    before = table.locator("tr[data-measure=integrated_lufs] td.before").inner_text()
    after = table.locator("tr[data-measure=integrated_lufs] td.after").inner_text()
    # The synthesized song sits near -17.6 LUFS; the streaming preset brings it to -14.
    assert float(before.split()[0]) < -16.0
    assert abs(float(after.split()[0]) + 14.0) <= 0.5
    true_peak_after = table.locator("tr[data-measure=true_peak_dbtp] td.after").inner_text()
    assert float(true_peak_after.split()[0]) <= -1.0
    waves = page.locator(".results figure.wave")
    expect(waves).to_have_count(2)
    expect(waves.nth(0)).to_contain_text("Before")
    expect(waves.nth(1)).to_contain_text("After")
    for i in range(2):
        expect(waves.nth(i)).to_have_attribute("data-ready", "true")
    studio.shot("before-after")


def test_stems_play_together_and_drums_solo(studio, tracks):
    studio.sign_up()
    studio.start_job("stems", [tracks["short"]])
    studio.wait_status("completed")
    page = studio.page
    player = page.locator("section.stems")
    expect(player).to_have_attribute("data-ready", "true")
    names = player.locator(".stem").evaluate_all("els => els.map(e => e.dataset.stem)")
    assert set(names) == {"vocals", "drums", "bass", "other"}
    page.get_by_role("button", name="Solo drums").click()
    # The audio elements themselves: only the drums are audible (expect() waits for the render).
    for name in names:
        expect(player.locator(f".stem[data-stem={name}]")).to_have_attribute(
            "data-muted", "false" if name == "drums" else "true"
        )
    page.get_by_role("button", name="Play all stems").click()
    expect(player).to_have_attribute("data-playing", "true")
    expect(player.locator(".transport .time")).not_to_have_text("0:00", timeout=10_000)
    studio.shot("drums-solo")
    page.get_by_role("button", name="Pause all stems").click()
    # Un-solo: every stem audible again.
    page.get_by_role("button", name="Solo drums").click()
    expect(player.locator(".stem[data-muted=true]")).to_have_count(0)
    # A download button per stem, through the signed-URL redirect.
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download drums").click()
    assert dl.value.suggested_filename.endswith("-drums.wav")


def test_beat_from_the_genre_picker_plays(studio):
    studio.sign_up()

    def trap(page):
        page.get_by_label("Genre", exact=True).select_option("trap")
        expect(page.locator("#f-genre-about")).to_contain_text("140–160 BPM")
        expect(page.get_by_label("Tempo (BPM)", exact=True)).to_have_attribute("min", "140")
        page.get_by_label("Mood", exact=True).select_option("dark")
        page.get_by_label("Key note").select_option("C")
        page.get_by_label("Duration (s)").fill("6")

    studio.start_job("beat", [], trap)
    studio.wait_status("completed")
    page = studio.page
    expect(page.locator(".results")).to_contain_text("procedural")
    track = page.locator(".results figure.wave").first
    expect(track).to_have_attribute("data-ready", "true")
    track.get_by_role("button", name=re.compile("^Play")).click()
    expect(track).to_have_attribute("data-playing", "true")
    expect(track.locator(".time")).not_to_have_text("0:00", timeout=10_000)
    studio.shot("beat-playing")
    # The procedural engine also writes the MIDI of what it played: downloadable like the rest.
    midi = page.locator("ul.downloads li", has_text=".mid").get_by_role("button")
    with page.expect_download() as dl:
        midi.first.click()
    assert dl.value.suggested_filename.endswith(".mid")
    assert dl.value.path().read_bytes()[:4] == b"MThd"


def test_upload_shows_its_progress(studio, tracks):
    studio.sign_up()
    page = studio.page
    # Slow the upload down (Chrome DevTools network emulation) so its progress can be watched.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 400_000},
    )
    studio.goto("/new/analyze")
    page.locator("input[type=file]").set_input_files(str(tracks["short"]))
    page.get_by_role("button", name="Start analyze").click()
    bar = page.get_by_label("Upload progress")
    seen = set()
    for _ in range(600):  # at most a minute
        if "/jobs/" in page.url:
            break
        # One read that does not wait: the bar can go between a count and a read.
        seen.update(bar.evaluate_all("els => els.map(e => e.getAttribute('value'))"))
        page.wait_for_timeout(100)
    between = {float(v) for v in seen if v} - {0.0, 100.0}
    assert between, f"no upload progress between 0 and 100 was shown: {seen}"
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    studio.wait_status("completed")


def test_sse_progress_arrives_and_resumes_without_gaps(studio, tracks):
    studio.sign_up()
    job_id = studio.start_job("stems", [tracks["long"]])
    page = studio.page
    # The connection drops for a moment (network offline), then comes back.
    page.locator("ol.log li").first.wait_for()
    page.context.set_offline(True)
    expect(page.locator(".stream-state")).to_have_attribute("data-state", "reconnecting")
    page.wait_for_timeout(1500)
    page.context.set_offline(False)
    seen = set()
    # Sample the progress bar while the job runs: values arrive over the stream.
    bar = page.locator("section.job > .progress progress")
    for _ in range(400):
        # Read without waiting: the bar goes away when the job ends, maybe between two reads.
        seen.update(bar.evaluate_all("bars => bars.map(b => b.getAttribute('value'))"))
        if page.locator("section.job[data-status=completed]").count():
            break
        page.wait_for_timeout(100)
    studio.wait_status("completed")
    intermediate = {float(v) for v in seen if v is not None} - {0.0, 100.0}
    assert intermediate, f"no progress between 0 and 100 was shown: {seen}"
    # The server ends every stream after 3 s here (120 s in production): the page reconnected
    # with Last-Event-ID and its log is exactly the API's event list.
    connects = int(page.locator(".stream-state").get_attribute("data-connects"))
    assert connects >= 2
    assert studio.log_ids() == studio.api_events(job_id)
    studio.shot("streamed")


def test_reload_mid_job_picks_up_where_it_was(studio, tracks):
    studio.sign_up()
    job_id = studio.start_job("stems", [tracks["long"]])
    page = studio.page
    page.locator("table.stages tr[data-status=running]").wait_for()
    before = studio.log_ids()
    page.reload()
    expect(page.get_by_role("heading", name=re.compile("^stems"))).to_be_visible()
    studio.shot("after-reload")
    studio.wait_status("completed")
    after = studio.log_ids()
    assert after[: len(before)] == before
    assert after == studio.api_events(job_id)
    assert len(after) == len(set(after))


def test_second_user_cannot_open_first_users_job(studio_factory, tracks):
    first = studio_factory()
    first.sign_up()
    job_id = first.start_job("analyze", [tracks["short"]])
    second = studio_factory()
    second.sign_up()
    second.goto(f"/jobs/{job_id}")
    expect(second.page.get_by_role("heading", name="Job not found")).to_be_visible()
    expect(second.page.get_by_role("alert")).to_contain_text("another account")
    second.shot("not-found")


def test_refused_upload_says_what_to_do(studio, tracks):
    studio.sign_up()
    studio.goto("/new/analyze")
    page = studio.page
    # The limits are on the page before anything is sent.
    expect(page.locator("#files-limits")).to_contain_text("50 MB")
    page.locator("input[type=file]").set_input_files(str(tracks["not_audio"]))
    page.get_by_role("button", name="Start analyze").click()
    alert = page.locator("#submit-error")
    expect(alert).to_have_attribute("data-code", "UNSUPPORTED_FORMAT")
    expect(alert).to_contain_text("not a recognised audio format")
    expect(alert).to_contain_text("Export the track as MP3, WAV or FLAC")
    assert "/new/analyze" in page.url
    studio.shot("refused")
