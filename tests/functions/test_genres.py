"""The genre catalog: one definition, served publicly, read by the engines and the CLI."""

from __future__ import annotations

import pytest

from functions.genres import GENRES, catalog, get_genre
from functions.music.theory import parse_key
from shared.errors import InvalidInput

# The 14 genres and tempo ranges the product promised (design doc 001).
PROMISED = {
    "trap": (140, 160), "lo-fi": (70, 90), "boom bap": (80, 100), "house": (120, 130),
    "drill": (135, 145), "drum and bass": (160, 180), "techno": (125, 135), "hip hop": (85, 95),
    "r&b": (75, 95), "pop": (100, 130), "edm": (125, 130), "dubstep": (135, 145),
    "jazz": (100, 140), "rock": (110, 140),
}  # fmt: skip


def test_catalog_has_the_fourteen_promised_genres_with_their_ranges():
    assert {g["name"]: tuple(g["bpm_range"]) for g in catalog()} == PROMISED
    for g in catalog():
        lo, hi = g["bpm_range"]
        assert lo <= g["default_bpm"] <= hi
        assert len(g["moods"]) >= 3 and len(g["characteristics"]) >= 3
        parse_key(g["default_key"])  # every default key is one the engines can read


def test_every_genre_template_is_playable():
    # The progressions parse in both modes and the voices exist in the engine.
    from functions.music.voices import VOICES

    for genre in GENRES.values():
        for key in ("C minor", "A major"):
            k = parse_key(key)
            chords = [
                k.chord(n)
                for n in (genre.progression_minor if k.mode == "minor" else genre.progression_major)
            ]
            assert chords[0].root_pc == k.tonic_pc, f"{genre.name} should open on its tonic"
        assert genre.chords in VOICES and genre.bass.replace("808-glide", "808") in VOICES


@pytest.mark.parametrize(
    "spelling,name",
    [("lofi", "lo-fi"), ("Lo Fi", "lo-fi"), ("DnB", "drum and bass"), ("drum & bass", "drum and bass"),
     ("rnb", "r&b"), ("Hip-Hop", "hip hop"), ("boombap", "boom bap"), ("  TRAP ", "trap")],
)  # fmt: skip
def test_common_spellings_find_the_genre(spelling, name):
    assert get_genre(spelling).name == name


def test_unknown_genre_is_a_typed_error_listing_the_choices():
    with pytest.raises(InvalidInput) as e:
        get_genre("polka")
    assert e.value.code == "UNKNOWN_GENRE" and e.value.status == 422
    assert "trap" in e.value.message and e.value.details["genres"] == list(GENRES)


def test_genres_endpoint_serves_the_catalog_to_signed_in_users(api):
    assert api.client.get("/api/v1/genres").status_code == 401  # no Authorization header
    r = api.get("/api/v1/genres")
    assert r.status_code == 200
    body = r.json()
    assert [g["name"] for g in body] == list(GENRES)
    trap = body[0]
    assert trap["bpm_range"] == [140, 160] and trap["default_bpm"] == 150
    assert "dark" in trap["moods"] and "hi-hat rolls" in trap["characteristics"]
    assert "feel" not in trap  # engine internals stay internal


def test_cli_lists_genres_as_json(capsys):
    import json

    from cli.main import main

    assert main(["genres", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [g["name"] for g in listed] == list(GENRES)
