"""The mashup's key decisions: distances on the circle of fifths and the key change each part
reports. Expected keys are worked out by hand (a fourth up from A is D; relative keys share a
position on the circle)."""

from __future__ import annotations

import pytest

from functions.mashup import fifths_distance, plan_mashup
from functions.music.theory import parse_key
from tests.functions.test_mashup import _info


@pytest.mark.parametrize(
    ("a", "b", "steps"),
    [
        ("G major", "D major", 1),  # neighbours away from C
        ("E major", "D# major", 5),  # E (4 sharps) to Eb (3 flats)
        ("C major", "F major", 1),  # the short way round: one fifth down, not eleven up
        ("D minor", "F major", 0),  # relative keys share a position
    ],
)
def test_fifths_distance_goes_the_short_way_round_the_circle(a, b, steps):
    assert fifths_distance(parse_key(a), parse_key(b)) == steps
    assert fifths_distance(parse_key(b), parse_key(a)) == steps


def test_a_key_change_that_wraps_past_b_is_named_in_the_base_key():
    # A major over D major goes up a fourth: A + 5 semitones is D (past B, round the octave).
    singer = _info(0, 100.0, "A major", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 102.0, "D major", vocal_share=0.02, drum_share=0.5)
    report = plan_mashup([singer, band], "energetic").report()
    vocals = next(p for p in report["parts"] if p["role"] == "vocals")
    assert (vocals["pitch_shift_semitones"], vocals["key_change"]) == (5, "A major -> D major")


@pytest.mark.parametrize(
    "base_tonic", ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
)
def test_the_key_change_names_every_base_key(base_tonic):
    singer = _info(0, 100.0, "C major", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 102.0, f"{base_tonic} major", vocal_share=0.02, drum_share=0.5)
    report = plan_mashup([singer, band], "dark", stem_choice={1: ["drums"], 0: ["vocals"]}).report()
    vocals = next(p for p in report["parts"] if p["role"] == "vocals")
    assert vocals["key_change"] == f"C major -> {base_tonic} major"
