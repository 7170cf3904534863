"""Every job kind can be started from its generated form, and the controls a person sets are
the params the job records."""

from __future__ import annotations

import pytest

PROMPT = "A night drive through a neon city, rain on the windscreen, slow camera moves, warm light."


def _fill_mix(page):
    gains = page.get_by_label("Gain (dB)")
    gains.nth(1).fill("-6")
    page.get_by_label("Mute").nth(1).check()
    page.get_by_label("Pan").nth(0).fill("-0.5")
    page.get_by_label("Profile").select_option("warm")


def _fill_mashup(page):
    page.get_by_role("group", name="Stems of song-short.wav").first.get_by_label("vocals").check()
    page.get_by_label("Vibe").select_option("chill")


KINDS = {
    "convert": (
        ["short"],
        lambda p: p.get_by_label("Output format").select_option("flac"),
        {"output_format": "flac"},
    ),
    "mix": (
        ["short", "short"],
        _fill_mix,
        {
            "profile": "warm",
            "tracks": [
                {"gain_db": 0, "pan": -0.5, "mute": False, "offset_s": 0},
                {"gain_db": -6, "pan": 0, "mute": True, "offset_s": 0},
            ],
        },
    ),
    "mashup": (
        ["short", "long"],
        _fill_mashup,
        {"vibe": "chill", "stems": [{"track": 0, "stems": ["vocals"]}]},
    ),
    "blend": (
        ["short", "long"],
        lambda p: p.get_by_label("Mode").select_option("crossfade"),
        {"mode": "crossfade"},
    ),
    "hum": (
        ["short"],
        lambda p: p.get_by_label("Genre", exact=True).select_option("house"),
        {"genre": "house"},
    ),
    "video": (
        ["long"],  # a music video needs a song of at least 12 s (refused at submit time)
        lambda p: p.get_by_label("Prompt").fill(PROMPT),
        {"prompt": PROMPT},
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_starts_from_its_form(studio, tracks, kind):
    files, fill, expected = KINDS[kind]
    if studio.email == "":
        studio.sign_up()
    job_id = studio.start_job(kind, [tracks[f] for f in files], fill)
    with studio.server.api(studio.token()) as c:
        job = c.get(f"/api/v1/jobs/{job_id}").json()
        # Only what the person set is sent; the server fills in the rest.
        for key, value in expected.items():
            assert job["params"][key] == value, (key, job["params"])
        assert len(job["inputs"]) == len(files)
        c.post(f"/api/v1/jobs/{job_id}/cancel")  # the form is what is tested, not the engine
    studio.shot("started")
