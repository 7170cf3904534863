"""The mashup's decisions in detail: the report a user reads, the pair costs behind the choice
of base and vocals, tempo level matching, stem choices, phrase landing and the notes. Every
expected figure is worked out here by hand from the rules the module states (key and tempo
costs weighted 0.3, vocals and energy 0.2; a bar of 4 beats at 60/BPM s; a stretched track
takes 1/factor of its time), not read back from the planner."""

from __future__ import annotations

import dataclasses
import math

import pytest

from functions.mashup import (
    VIBES,
    TempoMatch,
    match_tempo,
    pair_cost,
    plan_mashup,
)
from functions.mix import MIX_PROFILES
from functions.stems import FOUR_STEMS
from shared.errors import InvalidInput
from tests.functions.test_mashup import _info


def _energy(bpm: float, drum_share: float) -> float:
    return 0.5 * (bpm - 70) / 90 + 0.5 * drum_share / 0.6


def _part(plan, index):
    return next(p for p in plan.parts if p.index == index)


def test_the_report_states_every_decision_with_its_figures():
    # A singer in B minor at 100 BPM over a band in C major at 104 BPM: 4 % apart, so only the
    # singer moves; B minor goes down 2 semitones to A minor, C major's relative minor.
    singer = _info(0, 100.0, "B minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 104.0, "C major", vocal_share=0.02, drum_share=0.5)
    report = plan_mashup([singer, band], "energetic").report()
    bar_104 = 4 * 60.0 / 104.0
    assert report == {
        "vibe": "energetic",
        "vibe_description": "drums forward, bright, loud",
        "base_track": 1,
        "vocal_track": 0,
        "target_tempo_bpm": 104.0,
        "target_key": "C major",
        "parts": [
            {
                "track": 1,
                "filename": "t1.wav",
                "role": "base",
                "stems": ["drums", "bass", "other"],
                "tempo_bpm": 104.0,
                "tempo_change": "104.0 -> 104.0 BPM",
                "stretch_factor": 1.0,
                "key": "C major",
                "time_signature": "4/4",
                "pitch_shift_semitones": 0,
                "key_change": "C major -> C major",
                "offset_s": 0.0,
                "energy": band.energy,
                "vocal_share": 0.02,
                "drum_share": 0.5,
                "notes": ["sets the key and timeline", "tempo: the base's tempo"],
            },
            {
                "track": 0,
                "filename": "t0.wav",
                "role": "vocals",
                "stems": ["vocals"],
                "tempo_bpm": 100.0,
                "tempo_change": "100.0 -> 104.0 BPM",
                "stretch_factor": 1.04,
                "key": "B minor",
                "time_signature": "4/4",
                "pitch_shift_semitones": -2,
                "key_change": "B minor -> A minor",
                # The voice enters in bar 3: its phrase (from bar 1, at 0 s) lands on the
                # base's bar 5, four 104 BPM bars in.
                "offset_s": round(4 * bar_104, 3),
                "energy": singer.energy,
                "vocal_share": 0.35,
                "drum_share": 0.1,
                "notes": ["phrase alignment: bar 1 (voice enters in bar 3) on base bar 5"],
            },
        ],
        "pair_costs": [
            {
                "vocals": 0,
                "base": 1,
                # 0.3 * 2/6 + 0.3 * log(1.04)/log(1.12^2) + 0.2 * 0 + 0.2 * (1 - 0.6056)
                "cost": 0.2308,
                "pitch_shift_semitones": -2,
                "stretch_factor": 1.04,
                "fifths_distance": 2,  # B minor sits with D major, two fifths from C
                "key_cost": 0.333,
                "tempo_cost": 0.173,
                "vocals_cost": 0.0,
                "energy_cost": 0.394,
            },
            {
                "vocals": 1,
                "base": 0,
                # 0.3 * 2/6 + 0.3 * 0.173 + 0.2 * (1 - 0.02/0.3) + 0.2 * (1 - 0.25)
                "cost": 0.4886,
                "pitch_shift_semitones": 2,
                "stretch_factor": 0.9615,
                "fifths_distance": 2,
                "key_cost": 0.333,
                "tempo_cost": 0.173,
                "vocals_cost": 0.933,
                "energy_cost": 0.75,
            },
        ],
        "left_out": [],
        "mix": {
            "profile": "bright",
            "stem_gain_db": {"vocals": 0.0, "drums": 2.0, "bass": 1.0, "other": -1.0},
        },
        "master_target_lufs": -9.0,
    }
    assert singer.energy == pytest.approx(0.25) and band.energy == pytest.approx(_energy(104, 0.5))


def test_a_calm_vibe_prefers_a_calm_base():
    singer = _info(0, 100.0, "B minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 104.0, "C major", vocal_share=0.02, drum_share=0.5)
    costs = plan_mashup([singer, band], "chill").pair_costs
    # Chill counts the base's energy as a cost (not its lack): 0.606 for the band, 0.25 for
    # the singer's track.
    assert [(c["energy_cost"], c["cost"]) for c in costs] == [(0.606, 0.273), (0.25, 0.3886)]


def test_vibes_keep_the_promises_of_their_descriptions():
    gains = {name: v.stem_gain_db for name, v in VIBES.items()}
    assert gains["energetic"]["drums"] == max(gains["energetic"].values()) > 0  # drums forward
    assert gains["upbeat"]["vocals"] == max(gains["upbeat"].values()) > 0  # vocal-led
    assert gains["chill"]["drums"] == min(gains["chill"].values()) < 0  # soft drums
    assert gains["dark"]["bass"] > 0 > gains["dark"]["other"]  # low end up, instruments back
    loud = {name: v.master_lufs for name, v in VIBES.items()}
    assert loud["energetic"] > loud["upbeat"] > loud["dark"] > loud["chill"]  # chill: dynamic
    assert [VIBES[n].wants_energy for n in ("energetic", "upbeat", "chill", "dark")] == [
        True,
        True,
        False,
        False,
    ]


# The four vibes as the product defines them: mix profile, stem gains (dB), master target
# (LUFS). Changing how a vibe sounds is a product decision that changes this table on purpose.
VIBE_TABLE = {
    "energetic": ("bright", (0.0, 2.0, 1.0, -1.0), -9.0, "drums forward, bright, loud"),
    "upbeat": ("bright", (1.0, 1.0, 0.0, 0.0), -10.0, "vocal-led, bright, lively"),
    "chill": ("warm", (0.0, -4.0, -1.0, 1.0), -14.0, "soft drums, warm, dynamic"),
    "dark": ("bass-heavy", (-1.0, 0.0, 2.0, -2.0), -12.0, "heavy low end, instruments pulled back"),
}


@pytest.mark.parametrize("vibe", list(VIBE_TABLE))
def test_each_vibe_reports_its_mix_and_master_target(vibe):
    profile, gains, lufs, description = VIBE_TABLE[vibe]
    band = _info(0, 104.0, "C major", vocal_share=0.02, drum_share=0.5)
    report = plan_mashup([band], vibe).report()
    assert report["mix"] == {
        "profile": profile,
        "stem_gain_db": dict(zip(FOUR_STEMS, gains, strict=True)),
    }
    assert (report["master_target_lufs"], report["vibe_description"]) == (lufs, description)
    # Every stem is named as the separator names it (a misspelt one would be ignored) and the
    # profile is one the mixer has.
    assert list(report["mix"]["stem_gain_db"]) == list(FOUR_STEMS)
    assert profile in MIX_PROFILES


def test_the_shared_tables_cannot_be_changed_by_a_job():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VIBES["chill"].master_lufs = -5.0  # type: ignore[misc]
    match = match_tempo(_info(0, 100.0, "C major", 0.3, 0.1), _info(1, 104.0, "C major", 0.0, 0.5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        match.factor = 1.0  # type: ignore[misc]


def test_a_pairing_that_cannot_fit_or_crosses_metres_pays_for_it():
    vocal = _info(0, 100.0, "C major", vocal_share=0.3, drum_share=0.1)
    base = _info(1, 130.0, "C major", vocal_share=0.0, drum_share=0.6, beats_per_bar=3)
    cost = pair_cost(vocal, base, VIBES["energetic"])
    # 30 % is past 1.12^2: tempo cost capped at 1 (0.3), energy 1 - 0.833 (0.033), +1 unfit,
    # +0.5 for 3/4 under 4/4.
    assert cost["tempo_cost"] == 1.0 and cost["vocals_cost"] == 0.0
    assert cost["energy_cost"] == pytest.approx(1 - _energy(130, 0.6), abs=1e-3)
    assert cost["cost"] == pytest.approx(0.3 + 0.2 * (1 - _energy(130, 0.6)) + 1.0 + 0.5, abs=1e-4)
    same_metre = _info(1, 130.0, "C major", vocal_share=0.0, drum_share=0.6)
    assert pair_cost(vocal, same_metre, VIBES["energetic"])["cost"] == pytest.approx(
        cost["cost"] - 0.5, abs=1e-4
    )
    # Within 1.12^2 (1.2544) no penalty: 100 -> 125 BPM costs its tempo share only.
    near = _info(1, 125.0, "C major", vocal_share=0.0, drum_share=0.6)
    expected = 0.3 * math.log2(1.25) / math.log2(1.12**2) + 0.2 * (1 - _energy(125, 0.6))
    assert pair_cost(vocal, near, VIBES["energetic"])["cost"] == pytest.approx(expected, abs=1e-4)


def test_equally_close_tempo_pairings_go_to_the_confident_one():
    # 100 and 200 BPM are each half an octave from 141.4 BPM: the track's own tempo
    # (confidence 1) beats its weaker double (0.4).
    track = _info(0, 100.0, "C major", 0.3, 0.1, candidates=[(100.0, 0.6), (200.0, 0.4)])
    base = _info(1, 100.0 * 2**0.5, "C major", 0.0, 0.5)
    assert match_tempo(track, base).src_bpm == 100.0


def test_the_base_keeps_its_own_beat_even_when_its_double_fits_better():
    # A 195 BPM track (half: 97.5) over a 100 BPM base whose double, 200, is a candidate: the
    # base stays at 100 and the track comes down to 97.5.
    track = _info(0, 195.0, "C major", 0.3, 0.1, candidates=[(97.5, 0.5)])
    base = _info(1, 100.0, "C major", 0.0, 0.5, candidates=[(200.0, 0.9)])
    assert match_tempo(track, base) == TempoMatch(100.0 / 97.5, 97.5, 100.0)


def test_unknown_vibe_and_track_are_named_in_the_error():
    a, b = _info(0, 100.0, "C major", 0.3, 0.1), _info(1, 102.0, "C major", 0.0, 0.5)
    with pytest.raises(InvalidInput) as err:
        plan_mashup([a, b], "sleepy")
    assert err.value.code == "BAD_VIBE"
    assert err.value.message == "Unknown vibe 'sleepy'; choose from energetic, upbeat, chill, dark."
    with pytest.raises(InvalidInput) as err:
        plan_mashup([a, b], "dark", stem_choice={2: ["vocals"]})
    assert err.value.code == "BAD_TRACK"
    assert err.value.message == "There is no track 2; tracks are numbered 0-1."


def test_stem_choices_pick_the_drums_as_the_groove_else_the_first_giver():
    a, b, c = (
        _info(0, 100.0, "C major", 0.1, 0.3),
        _info(1, 101.0, "C major", 0.1, 0.3),
        _info(2, 102.0, "C major", 0.4, 0.1),
    )
    plan = plan_mashup([a, b, c], "chill", stem_choice={0: ["bass"], 1: ["drums"], 2: ["vocals"]})
    assert (plan.base.index, plan.vocals.index) == (1, 2)
    assert [(p.index, p.role, p.stems) for p in plan.parts] == [
        (0, "layer", ["bass"]),
        (1, "base", ["drums"]),
        (2, "vocals", ["vocals"]),
    ]
    # No drums chosen: a track giving an instrument is the base, not one giving its voice only.
    plan = plan_mashup([a, b, c], "chill", stem_choice={0: ["vocals"], 1: ["bass"]})
    assert (plan.base.index, plan.vocals.index) == (1, 0)
    # Only voices chosen: the first giver is the base, the other one sings.
    plan = plan_mashup([a, b, c], "chill", stem_choice={0: ["vocals"], 1: [], 2: ["vocals"]})
    assert (plan.base.index, plan.vocals.index) == (0, 2)
    assert {p.index for p in plan.parts} == {0, 2}  # an empty choice gives nothing


def test_a_chosen_base_and_a_single_track():
    singer = _info(0, 100.0, "B minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 104.0, "C major", vocal_share=0.02, drum_share=0.5)
    plan = plan_mashup([singer, band], "energetic", base_track=0)
    assert (plan.base.index, plan.vocals.index) == (0, 1)
    assert _part(plan, 1).pitch_shift_semitones == 2  # C major up to D major, B minor's relative
    alone = plan_mashup([band], "chill")
    assert alone.vocals is None and alone.report()["vocal_track"] is None
    assert [(p.index, p.role, p.stems, p.stretch_factor) for p in alone.parts] == [
        (1, "base", ["drums", "bass", "other", "vocals"], 1.0)
    ]
    assert alone.target_tempo_bpm == 104.0 and alone.base_stretch == 1.0


def test_further_tracks_layer_their_other_stem_up_to_twelve_percent_away():
    singer = _info(0, 118.0, "A minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 120.0, "C major", vocal_share=0.02, drum_share=0.5)
    far = _info(2, 106.0, "C major", vocal_share=0.05, drum_share=0.3)  # 13.2 % from 120
    near = _info(3, 107.2, "G major", vocal_share=0.05, drum_share=0.3)  # 11.9 %
    plan = plan_mashup([singer, band, far, near], "upbeat")  # one left out, the next kept
    layer = _part(plan, 3)
    assert (layer.role, layer.stems) == ("layer", ["other"])
    assert layer.stretch_factor == pytest.approx(120.0 / 107.2)
    assert layer.pitch_shift_semitones == 5  # G up a fourth to C
    assert plan.skipped == [{"track": 2, "reason": "106 BPM is too far to stretch"}]


def test_a_voice_too_far_at_every_octave_is_fitted_two_beats_against_three():
    # 90 and 124 BPM: 37.8 % apart (124 / 90), 31 % at half time; even half-way each would
    # move 17 %. Two beats of the voice against three of the band: 124 * 2 / 3 = 82.7 BPM, a
    # 8.1 % stretch of the voice alone, within the 12 % that keeps it sounding like itself.
    singer = _info(0, 90.0, "D major", 0.3, 0.1)
    band = _info(1, 124.0, "D major", 0.0, 0.5)
    plan = plan_mashup([singer, band], "energetic")
    voice, base = _part(plan, 0), _part(plan, 1)
    assert (plan.base.index, voice.role) == (1, "vocals")
    assert voice.stretch_factor == pytest.approx(124.0 * 2 / 3 / 90.0)
    assert base.stretch_factor == 1.0 and plan.target_tempo_bpm == pytest.approx(124.0)
    assert voice.notes[1] == (
        "metric relation 2:3: at every octave 90.0 and the base's 124.0 BPM are 37.8 % apart, "
        "too far to stretch; so two of its beats span three of the base's (its 4-bar phrases "
        "span 6 of the base's bars)"
    )
    # The voice's phrase lands on a bar of the base, on the output timeline.
    entry_bar = voice.offset_s + 2 * (4 * 60.0 / 90.0) / voice.stretch_factor
    assert min(abs(entry_bar - b) for b in plan.base.downbeats_s) < 1e-6


def test_a_faster_voice_is_fitted_three_beats_against_two_and_both_meet_half_way():
    # 130 over 100 BPM: 30 % apart at the nearest octave. Three beats of the voice against two
    # of the band: 100 * 3 / 2 = 150 BPM, still 15.4 % from 130, over the comfortable 12 %:
    # both move half-way, 7.4 % up for the voice and 6.9 % down for the band.
    singer = _info(0, 130.0, "D major", 0.3, 0.1)
    band = _info(1, 100.0, "D major", 0.0, 0.5)
    plan = plan_mashup([singer, band], "energetic")
    voice, base = _part(plan, 0), _part(plan, 1)
    assert voice.stretch_factor == pytest.approx((150.0 / 130.0) ** 0.5)
    assert base.stretch_factor == pytest.approx((130.0 / 150.0) ** 0.5)
    assert voice.stretch_factor * 130.0 == pytest.approx(1.5 * base.stretch_factor * 100.0)
    assert base.notes[1] == (
        "tempo: 130.0 and 100.0 BPM are more than 12.0 % apart even at a 3:2 relation: both "
        "move half-way (6.9 % each) rather than one by 15.4 %"
    )
    assert voice.notes[1] == (
        "metric relation 3:2: at every octave 130.0 and the base's 100.0 BPM are 23.1 % apart, "
        "too far to stretch; so three of its beats span two of the base's (its 4-bar phrases "
        "span 2.67 of the base's bars)"
    )


@pytest.mark.parametrize(("vocal_bpm", "base_bpm"), [(95.0, 135.0), (135.0, 95.0), (71.0, 100.0)])
def test_any_two_tempi_meet_within_the_comfortable_stretch(vocal_bpm, base_bpm):
    # Half an octave apart at their nearest octaves is the worst case octaves leave; with
    # two-against-three neither track moves more than 12 %.
    singer = _info(0, vocal_bpm, "A minor", 0.3, 0.1)
    band = _info(1, base_bpm, "A minor", 0.0, 0.5)
    plan = plan_mashup([singer, band], "chill", stem_choice={1: ["drums"], 0: ["vocals"]})
    for part in plan.parts:
        assert abs(math.log2(part.stretch_factor)) <= math.log2(1.12) + 1e-9


def test_a_layer_too_far_from_the_base_is_refused_when_asked_for():
    # Layers follow the base at an octave only: asked for by name, one 13.2 % away is refused.
    singer = _info(0, 118.0, "A minor", 0.35, 0.1)
    band = _info(1, 120.0, "A minor", 0.0, 0.5)
    far = _info(2, 106.0, "A minor", 0.05, 0.3)
    with pytest.raises(InvalidInput) as err:
        plan_mashup(
            [singer, band, far], "dark", stem_choice={1: ["drums"], 0: ["vocals"], 2: ["other"]}
        )
    assert err.value.code == "TEMPO_MISMATCH"
    assert err.value.message == (
        "Track 2 (106 BPM) is too far from the base's 120 BPM: fitting it would stretch it by "
        "13.2 % (at most 12.0 % keeps it sounding like itself); choose other tracks or stems."
    )


def test_the_half_way_tempo_is_explained_and_set_by_an_instrumental_lead_too():
    singer = _info(0, 100.0, "A minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 124.0, "C major", vocal_share=0.02, drum_share=0.5)
    base_notes = _part(plan_mashup([singer, band], "energetic"), 1).notes
    # The base slows by 1 - 1/sqrt(1.24) = 10.2 %, instead of the voice speeding up 24 %.
    assert base_notes[1] == (
        "tempo: 100.0 and 124.0 BPM are more than 12.0 % apart at any octave: both move "
        "half-way (10.2 % each) rather than one by 24.0 %"
    )
    # No voice: the other instrumental sets the meeting point with the base.
    plan = plan_mashup([singer, band], "dark", stem_choice={0: ["drums"], 1: ["bass"]})
    assert plan.vocals is None and plan.base.index == 0
    assert plan.base_stretch == pytest.approx(1.24**0.5)
    assert plan.target_tempo_bpm == pytest.approx(100.0 * 1.24**0.5)
    assert _part(plan, 1).stretch_factor == pytest.approx(1.24**-0.5)


def test_notes_name_the_tempo_octave_and_the_metre():
    fast = _info(0, 199.8, "A minor", 0.35, 0.1, candidates=[(99.9, 0.45)])
    slow = _info(0, 50.0, "A minor", 0.35, 0.1, candidates=[(100.0, 0.5)])
    base = _info(1, 100.0, "A minor", 0.02, 0.5)
    choice = {1: ["drums"], 0: ["vocals"]}
    assert _part(plan_mashup([fast, base], "dark", stem_choice=choice), 0).notes[1] == (
        "matched at half time (99.9 BPM), the octave closest to 100.0 BPM"
    )
    assert _part(plan_mashup([slow, base], "dark", stem_choice=choice), 0).notes[1] == (
        "matched at double time (100.0 BPM), the octave closest to 100.0 BPM"
    )
    waltz = _info(0, 100.0, "A minor", 0.35, 0.1, beats_per_bar=3)
    assert _part(plan_mashup([waltz, base], "dark", stem_choice=choice), 0).notes == [
        "phrase alignment: bar 1 (voice enters in bar 3) on base bar 5",
        "metre: this track is in 3/4 and the base in 4/4; its bars do not line up with the "
        "base's beyond the first downbeat",
    ]


@pytest.mark.parametrize(
    ("entry_before_bar5_s", "phrase_bar"),
    [(0.03, 4), (0.5, 0)],  # a 30 ms pickup belongs to bar 5; half a second early does not
)
def test_a_voice_a_hair_before_a_downbeat_belongs_to_that_bar(entry_before_bar5_s, phrase_bar):
    singer = _info(0, 120.0, "A minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 120.0, "A minor", vocal_share=0.02, drum_share=0.5)
    singer.vocal_entry_s = 4 * 2.0 - entry_before_bar5_s  # 2 s bars at 120 BPM
    plan = plan_mashup([singer, band], "energetic")
    assert _part(plan, 0).offset_s == pytest.approx(4 * 2.0 - phrase_bar * 2.0)


@pytest.mark.parametrize(("base_bars", "landing_bar"), [(8, 0), (9, 4)])
def test_a_base_of_two_phrases_or_less_takes_the_voice_from_its_first_bar(base_bars, landing_bar):
    singer = _info(0, 120.0, "A minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 120.0, "A minor", vocal_share=0.02, drum_share=0.5)
    band.downbeats_s = band.downbeats_s[:base_bars]
    part = _part(plan_mashup([singer, band], "energetic"), 0)
    assert part.offset_s == pytest.approx(landing_bar * 2.0)
    assert part.notes[0].endswith(f"on base bar {landing_bar + 1}")


def test_a_track_without_downbeats_starts_with_the_base():
    singer = _info(0, 120.0, "A minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 120.0, "A minor", vocal_share=0.02, drum_share=0.5)
    singer.downbeats_s = []
    assert _part(plan_mashup([singer, band], "energetic"), 0).offset_s == 0.0


def test_confidence_only_breaks_near_ties_between_octaves():
    # 100 BPM (confidence 1) is 0.536 octave from 145; its double 200 (confidence 0.4) only
    # 0.464: the closer level wins, confidence weighs a hundredth per unit.
    track = _info(0, 100.0, "C major", 0.3, 0.1, candidates=[(200.0, 0.4)])
    base = _info(1, 145.0, "C major", 0.0, 0.5)
    assert match_tempo(track, base).src_bpm == 200.0


def test_report_figures_are_rounded_for_reading():
    singer = _info(0, 100.123, "A minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 104.567, "A minor", vocal_share=0.02, drum_share=0.5)
    report = plan_mashup([singer, band], "energetic").report()
    vocals = next(p for p in report["parts"] if p["role"] == "vocals")
    assert (vocals["tempo_bpm"], vocals["stretch_factor"]) == (100.12, 1.0444)  # 104.567/100.123
    assert report["target_tempo_bpm"] == 104.57
    # Half-way between 100 and 124 BPM: 124 / sqrt(1.24) = 111.355 BPM.
    far = _info(1, 124.0, "A minor", vocal_share=0.02, drum_share=0.5)
    assert (
        plan_mashup([_info(0, 100.0, "A minor", 0.35, 0.1), far], "energetic").report()[
            "target_tempo_bpm"
        ]
        == 111.36
    )


def test_a_voice_before_the_first_downbeat_is_in_bar_one():
    # A pickup: the voice starts 0.2 s in, the first downbeat is at 1 s.
    singer = _info(0, 120.0, "A minor", vocal_share=0.35, drum_share=0.1)
    band = _info(1, 120.0, "A minor", vocal_share=0.02, drum_share=0.5)
    singer.downbeats_s = [1.0 + 2.0 * i for i in range(16)]
    singer.vocal_entry_s = 0.2
    part = _part(plan_mashup([singer, band], "energetic"), 0)
    assert part.notes[0] == "phrase alignment: bar 1 (voice enters in bar 1) on base bar 5"
    assert part.offset_s == pytest.approx(4 * 2.0 - 1.0)  # its bar 1 on the base's bar 5


def test_the_vocal_track_sets_the_meeting_tempo_even_when_a_layer_is_listed_first():
    # The layer (122 BPM) is near the base (124); the voice (100) is 24 % away: base and voice
    # meet half-way, at 124 / sqrt(1.24) = 111.4 BPM, and the layer follows.
    base = _info(0, 124.0, "A minor", 0.02, 0.5)
    voice = _info(1, 100.0, "A minor", 0.35, 0.1)
    layer = _info(2, 122.0, "A minor", 0.05, 0.3)
    choice = {2: ["bass"], 0: ["drums"], 1: ["vocals"]}
    plan = plan_mashup([base, voice, layer], "dark", stem_choice=choice)
    assert plan.target_tempo_bpm == pytest.approx(124.0 / 1.24**0.5)
    assert _part(plan, 1).stretch_factor == pytest.approx(1.24**0.5)


def test_tracks_exactly_twelve_percent_each_from_the_middle_still_meet():
    # 100 and 125.44 BPM are 1.12^2 apart: each moves exactly 12 %, the most allowed.
    plan = plan_mashup(
        [_info(0, 100.0, "A minor", 0.35, 0.1), _info(1, 125.44, "A minor", 0.02, 0.5)],
        "energetic",
    )
    assert sorted(round(p.stretch_factor, 6) for p in plan.parts) == [round(1 / 1.12, 6), 1.12]
