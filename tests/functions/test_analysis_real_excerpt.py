"""Analysis on a real recording, not a synthesised one: 12 s of a freely licensed rock song.

``tests/fixtures/real/sectoid_escape_30s.ogg`` is an excerpt of Sectoid's "Escape from
chaosland" (MIT-style licence, LICENSE-sectoid.txt beside it; made by
``tools/fetch_eval_audio.py --fixture``). Its tempo and beats come from the song's game chart,
which its author made on the song's own tempo grid, not from any beat tracker. Drums, distorted
guitars and bass together are what synthesised test songs lack.
"""

from __future__ import annotations

import json
from pathlib import Path

import mir_eval
import numpy as np
import pytest

from functions.analysis import analyze_audio
from functions.audio_io import load_audio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real"


@pytest.fixture(scope="module")
def excerpt() -> tuple[dict, dict]:
    note = json.loads((FIXTURES / "sectoid_escape_30s.json").read_text())
    return note, analyze_audio(load_audio(FIXTURES / note["file"]))


def test_tempo_is_the_charted_tempo_on_a_real_recording(excerpt):
    note, result = excerpt
    assert abs(result["tempo_bpm"] / note["tempo_bpm"] - 1) <= 0.04


def test_beats_land_on_the_charted_beats_of_a_real_recording(excerpt):
    note, result = excerpt
    reference = np.asarray(note["beats_s"])
    f = mir_eval.beat.f_measure(reference, np.asarray(result["beats_s"]), f_measure_threshold=0.07)
    # Beats on the off-beats at the right tempo score 0 here, as do beats that drift.
    assert f >= 0.8
