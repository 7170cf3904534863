"""The score renderer's annotations: beats, bars and tempo read off a MIDI file's tempo map."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from tools.fetch_eval_scores import annotate, excerpt_ticks, read_grid

TPB = 480


def _midi(path, numerator, denominator, tempi_bpm, first_note_tick, last_tick):
    """One track: a time signature, tempo changes ``{tick: bpm}``, a count-in click on the drum
    channel at tick 0 and pitched quarter notes from ``first_note_tick`` to ``last_tick``."""
    events = [(0, mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator))]
    events += [
        (t, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(b))) for t, b in tempi_bpm.items()
    ]
    events += [(0, mido.Message("note_on", channel=9, note=37, velocity=90))]
    events += [(TPB // 4, mido.Message("note_off", channel=9, note=37))]
    for tick in range(first_note_tick, last_tick, TPB):
        events += [(tick, mido.Message("note_on", note=60, velocity=80))]
        events += [(tick + TPB, mido.Message("note_off", note=60))]
    track, now = mido.MidiTrack(), 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(ticks_per_beat=TPB)
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def test_a_waltz_slowing_down_keeps_its_bars_and_skips_the_count_in(tmp_path):
    # 3/4 at 120 BPM, halving to 60 BPM after two bars; the first bar is a drum count-in.
    bar = 3 * TPB
    path = _midi(tmp_path / "w.mid", 3, 4, {0: 120.0, 2 * bar: 60.0}, bar, 6 * bar)
    grid = read_grid(path)
    start, stop = excerpt_ticks(grid, length_s=60.0)
    assert (start, stop) == (bar, 6 * bar)
    note = annotate(grid, start, stop)
    assert note["time_signature"] == "3/4"
    # Bar 2 at 0.5 s a beat (1.5 s), then four bars at 1 s a beat.
    assert note["beats_s"] == pytest.approx([0, 0.5, 1.0] + [1.5 + k for k in range(12)])
    assert note["downbeats_s"] == pytest.approx([0.0, 1.5, 4.5, 7.5, 10.5])
    assert note["tempo_bpm"] == pytest.approx(60.0)  # the median beat interval
    assert "changes" in note["tempo_note"]


def test_an_excerpt_ends_on_the_last_bar_line_within_its_length(tmp_path):
    path = _midi(tmp_path / "f.mid", 4, 4, {0: 120.0}, 0, 40 * 4 * TPB)  # 2 s bars
    grid = read_grid(path)
    start, stop = excerpt_ticks(grid, length_s=7.0)
    note = annotate(grid, start, stop)
    assert (start, stop) == (0, 3 * 4 * TPB)
    assert note["downbeats_s"] == pytest.approx([0.0, 2.0, 4.0])
    assert note["tempo_bpm"] == pytest.approx(120.0)


def test_a_compound_metre_counts_its_eighth_notes(tmp_path):
    path = _midi(tmp_path / "j.mid", 6, 8, {0: 90.0}, 0, 8 * 3 * TPB)
    note = annotate(grid := read_grid(path), *excerpt_ticks(grid, length_s=60.0))
    assert note["time_signature"] == "6/8"
    assert note["tempo_bpm"] == pytest.approx(180.0)  # eighths at twice the quarter's tempo
    assert np.diff(note["downbeats_s"]) == pytest.approx([2.0] * 7)


def test_a_file_that_changes_metre_is_refused(tmp_path):
    path = _midi(tmp_path / "m.mid", 4, 4, {0: 120.0}, 0, 8 * TPB)
    midi = mido.MidiFile(str(path))
    midi.tracks[0].insert(-1, mido.MetaMessage("time_signature", numerator=3, denominator=4))
    midi.save(str(path))
    with pytest.raises(ValueError, match="one time signature"):
        read_grid(path)
