"""MIDI export (mido): the notes the procedural engine played, one track per part.

``write_midi(path, parts, bpm, key=...)`` writes a type-1 Standard MIDI File: a conductor track
(tempo, 4/4, key signature) and a track per part with a General MIDI program; drums go on
channel 10 with General MIDI drum numbers. ``read_midi_notes(path)`` reads notes back as
``(start_s, duration_s, pitch, channel)`` (used to check exports and by the CLI).
"""

from __future__ import annotations

from pathlib import Path

from functions.music.compose import NoteEvent
from functions.music.theory import Key

TICKS_PER_BEAT = 480
# General MIDI programs (0-based) per engine voice.
GM_PROGRAMS = {
    "808": 38, "sub": 38, "saw": 38, "reese": 38, "rumble": 38, "wobble": 39, "upright": 32,
    "picked": 33, "pad": 89, "strings": 48, "epiano": 4, "piano": 0, "stab": 81, "supersaw": 81,
    "guitar": 29, "organ": 16, "bell": 9, "pluck": 45, "saw_lead": 81, "square": 80, "sine": 73,
    "vibes": 11,
}  # fmt: skip
DRUM_CHANNEL = 9  # MIDI channel 10


def _ticks(seconds: float, bpm: float) -> int:
    return int(round(seconds * bpm / 60.0 * TICKS_PER_BEAT))


def write_midi(
    path: str | Path,
    parts: dict[str, list[NoteEvent]],
    bpm: float,
    *,
    key: Key | None = None,
    programs: dict[str, str] | None = None,
) -> Path:
    """Write ``parts`` (name -> notes) as a type-1 MIDI file; ``programs`` maps part -> voice."""
    import mido  # off module load: the job registry imports this

    path = Path(path)
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    if key is not None:
        conductor.append(mido.MetaMessage("key_signature", key=_midi_key(key), time=0))
    mid.tracks.append(conductor)
    channel = 0
    for name, events in parts.items():
        if not events:
            continue
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        if name == "drums":
            ch = DRUM_CHANNEL
        else:
            ch = channel
            channel += 1 if channel + 1 != DRUM_CHANNEL else 2
            voice = (programs or {}).get(name, "")
            track.append(
                mido.Message(
                    "program_change", channel=ch, program=GM_PROGRAMS.get(voice, 0), time=0
                )
            )
        messages = []
        for e in events:
            on = _ticks(e.start_s, bpm)
            off = max(on + 1, _ticks(e.start_s + e.duration_s, bpm))
            vel = max(1, min(127, int(round(e.velocity * 127))))
            # Offs sort before ons at the same tick so repeated notes retrigger cleanly.
            messages.append(
                (on, 1, mido.Message("note_on", channel=ch, note=int(e.pitch), velocity=vel))
            )
            messages.append(
                (off, 0, mido.Message("note_off", channel=ch, note=int(e.pitch), velocity=0))
            )
        messages.sort(key=lambda m: (m[0], m[1]))
        now = 0
        for tick, _, msg in messages:
            track.append(msg.copy(time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(str(path))
    return path


def _midi_key(key: Key) -> str:
    import mido

    # mido spells key signatures like "Cm", "F#", "Bb"; enharmonics it lacks fall back to flats.
    valid = set(mido.midifiles.meta._key_signature_encode)  # mido's own table of names
    name = key.short
    if name in valid:
        return name
    flats = {
        "C#": "Db",
        "D#": "Eb",
        "G#": "Ab",
        "A#": "Bb",
        "Gb": "F#",
        "Db": "C#",
        "Ab": "G#",
        "Eb": "D#",
        "Bb": "A#",
    }
    alt = flats.get(key.tonic_name, key.tonic_name) + ("m" if key.mode == "minor" else "")
    return alt if alt in valid else ("Am" if key.mode == "minor" else "C")


def read_midi_notes(path: str | Path) -> list[tuple[float, float, int, int]]:
    """``(start_s, duration_s, pitch, channel)`` of every note, in time order."""
    import mido

    mid = mido.MidiFile(str(path))
    notes, active = [], {}
    now = 0.0
    for msg in mid:  # iterating a MidiFile yields messages with delta times in seconds
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            active[(msg.channel, msg.note)] = now
        elif msg.type in ("note_off", "note_on"):
            start = active.pop((msg.channel, msg.note), None)
            if start is not None:
                notes.append((start, now - start, msg.note, msg.channel))
    return sorted(notes)
