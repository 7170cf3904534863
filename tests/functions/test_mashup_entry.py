"""Where a late voice lands: the phrase holding a voice that enters in bar 10 starts in bar 9 of
its track, and must sound on the base's bar 5 of the output. The expected times are computed
here from the tempi alone (a bar is 4 beats of 60/BPM seconds; a track sped up by ``f`` takes
``1/f`` of the time), not from the planner's downbeat arithmetic."""

from __future__ import annotations

import pytest

from functions.mashup import plan_mashup
from tests.functions.test_mashup import _info


@pytest.mark.parametrize("entry_bar", [10, 13])
def test_a_voice_entering_late_lands_its_phrase_on_base_bar_five(entry_bar):
    singer = _info(0, 100.0, "A minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 124.0, "C major", vocal_share=0.02, drum_share=0.5)
    singer.vocal_entry_s = (entry_bar - 1) * 4 * 60.0 / 100.0 + 0.3  # just after that downbeat
    plan = plan_mashup([singer, band], "energetic")
    vocals = next(p for p in plan.parts if p.role == "vocals")
    base = next(p for p in plan.parts if p.role == "base")
    # The phrase (4 bars) holding the entry starts on bar 9 for bar 10, on bar 13 for bar 13.
    phrase_bar = (entry_bar - 1) // 4 * 4  # 0-based
    phrase_start_out_s = phrase_bar * 2.4 / vocals.stretch_factor  # 2.4 s bars at 100 BPM
    base_bar5_out_s = 4 * (4 * 60.0 / 124.0) / base.stretch_factor
    assert vocals.offset_s + phrase_start_out_s == pytest.approx(base_bar5_out_s, abs=1e-3)
    # Seen from the song's own clock: the phrase starts 19.2 s (or 28.8 s) into the singer's
    # track, which plays 11.4 % fast.
    assert phrase_start_out_s == pytest.approx(phrase_bar * 2.4 / 1.24**0.5, abs=1e-6)
    assert f"voice enters in bar {entry_bar}" in str(plan.report())
