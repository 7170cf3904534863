"""Render freely licensed scores (MIDI) into an annotated folder for ``bench/analysis_real.py``.

    python tools/fetch_eval_scores.py OUT_FOLDER [--excerpt-s 45] [--no-variants] [--soundfont SF2]

These are RENDERED FROM SCORES, not recordings: each piece is a MIDI file from a Debian package,
played by FluidSynth with a General MIDI soundfont of sampled instruments (Debian's
``fluidsynth`` and ``fluid-soundfont-gm``: ``apt-get install fluidsynth fluid-soundfont-gm``).
What they offer that the recordings don't: exact beats, downbeats and metre from the score, and
a key, and so they measure metre (3/4 against 4/4), downbeats and key on real compositions. The
packages come through ``apt-get download`` and ``dpkg-deb`` (run ``apt-get update`` once first);
nothing is added to the repository. OUT_FOLDER receives FLAC excerpts, ``annotations.json`` in
the bench's format (every entry's ``kind`` is "rendered from score") and ``licences/``.

What is rendered:

- ``pianobooster``: seven arrangements of traditional tunes made for PianoBooster (piano parts
  written in ABC, accompaniment by MMA), CC-BY per the package's copyright file. Four in 3/4:
  Lavender's Blue, Scarborough Fair, Greensleeves, Amazing Grace; three in 4/4.
- ``openttd-openmsx``: five pieces by Jim Redfarn from the OpenMSX music set, GPL v2; one in
  3/4 (Boogi Marabi), four in 4/4.

How annotations are derived, also written into each file's ``notes``:

- Beats are the time signature's beat unit (the quarter note here) on the file's tempo map,
  downbeats its bars, both counted from tick 0 where every file declares its one time
  signature. Each piece was checked to put its bass and kick notes on those downbeats.
- The excerpt starts at the first bar with a pitched note (skipping count-in bars) and ends on
  the last bar line within ``--excerpt-s`` seconds, or at the last note.
- The tempo is the tempo map's over the excerpt (its median beat interval where it changes).
- The key is given only where the score settles it: the key signature (when the file carries
  one) together with the tonic the piece ends on, written per piece below with that evidence;
  blues-inflected pieces whose mode the score leaves open get none.

With variants (the default) each piece is also rendered with its drum channel muted
(``*_nodrums.flac``, same annotations): the arrangements' kick and hi-hat mark the bar, and
without them metre and downbeats rest on the bass and the harmony alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_eval_audio import fetch_packages  # noqa: E402

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 44100
RENDER_GAIN = 0.5
DRUM_CHANNEL = 9  # General MIDI's percussion channel (10, counted from 1)
KIND = "rendered from score"
BOOSTER = "usr/share/doc/pianobooster/courses/BoosterMusic"
OPENMSX = "usr/share/games/openttd/baseset/openmsx"
BOOSTER_LICENCE = "CC-BY (PianoBooster music, per the package's copyright file)"
OPENMSX_LICENCE = "GPL-2 (OpenMSX music set, (C) 2010-2021 OpenMSX Authors; by Jim Redfarn)"


@dataclass(frozen=True)
class ScorePiece:
    package: str
    path: str  # inside the unpacked package; ``.gz`` is unpacked
    out_name: str
    title: str
    licence: str
    key: str | None
    key_evidence: str


PIECES = (
    ScorePiece(
        "pianobooster",
        f"{BOOSTER}/01-ClairDeLaLune.mid",
        "score_clair_de_la_lune.flac",
        "Au clair de la lune (traditional)",
        BOOSTER_LICENCE,
        "C major",
        "no accidentals; ends on C over C",
    ),
    ScorePiece(
        "pianobooster",
        f"{BOOSTER}/02-LavendersBlue.mid",
        "score_lavenders_blue.flac",
        "Lavender's Blue (traditional)",
        BOOSTER_LICENCE,
        "C major",
        "no accidentals; ends on a C-G fifth; C, E, G most played",
    ),
    ScorePiece(
        "pianobooster",
        f"{BOOSTER}/03-SkipToMyLoo.mid.gz",
        "score_skip_to_my_lou.flac",
        "Skip to My Lou (traditional)",
        BOOSTER_LICENCE,
        "C major",
        "key signature C; ends on a C major chord over C",
    ),
    ScorePiece(
        "pianobooster",
        f"{BOOSTER}/04-FrereJacques.mid",
        "score_frere_jacques.flac",
        "Frere Jacques (traditional)",
        BOOSTER_LICENCE,
        "C major",
        "no accidentals; ends on a C major chord",
    ),
    ScorePiece(
        "pianobooster",
        f"{BOOSTER}/05-ScarboroughFair.mid.gz",
        "score_scarborough_fair.flac",
        "Scarborough Fair (traditional)",
        BOOSTER_LICENCE,
        "D minor",
        "D Dorian (key signature without flats, B natural); ends on D-A over D, minor third F;"
        " scored as D minor",
    ),
    ScorePiece(
        "pianobooster",
        f"{BOOSTER}/06-Greensleeves.mid.gz",
        "score_greensleeves.flac",
        "Greensleeves (traditional)",
        BOOSTER_LICENCE,
        "E minor",
        "key signature one sharp; ends on E-B over E",
    ),
    ScorePiece(
        "pianobooster",
        f"{BOOSTER}/07-AmazingGrace.mid.gz",
        "score_amazing_grace.flac",
        "Amazing Grace (J. Newton, traditional tune)",
        BOOSTER_LICENCE,
        "F major",
        "B flat throughout; ends on an F major chord over F",
    ),
    ScorePiece(
        "openttd-openmsx",
        f"{OPENMSX}/boogi_marabi_redfarn.mid",
        "score_boogi_marabi.flac",
        "Jim Redfarn - Boogi Marabi",
        OPENMSX_LICENCE,
        "C major",
        "key signature C; ends on C7 over C (the dominant-seventh colour of the style)",
    ),
    ScorePiece(
        "openttd-openmsx",
        f"{OPENMSX}/city_blues_redfarn.mid",
        "score_city_blues.flac",
        "Jim Redfarn - City Blues",
        OPENMSX_LICENCE,
        None,
        "a G blues: key signature G but B flat throughout, so major or minor is not settled",
    ),
    ScorePiece(
        "openttd-openmsx",
        f"{OPENMSX}/moo_redfarn.mid",
        "score_moo.flac",
        "Jim Redfarn - Moo",
        OPENMSX_LICENCE,
        "G major",
        "key signature G; ends over G; G, D, E, C, B most played",
    ),
    ScorePiece(
        "openttd-openmsx",
        f"{OPENMSX}/slow_neasy_redfarn.mid",
        "score_slow_n_easy.flac",
        "Jim Redfarn - Slow 'n' Easy",
        OPENMSX_LICENCE,
        "F major",
        "key signature F; ends over F; F, A, C most played",
    ),
    ScorePiece(
        "openttd-openmsx",
        f"{OPENMSX}/no_work_song_redfarn.mid",
        "score_no_work_song.flac",
        "Jim Redfarn - No Work Song",
        OPENMSX_LICENCE,
        "C minor",
        "key signature C minor; ends on C; C, E flat, F, G most played",
    ),
)
PACKAGES = ("pianobooster", "openttd-openmsx")
LICENCE_FILES = {
    "pianobooster": "usr/share/doc/pianobooster/copyright",
    "openttd-openmsx": "usr/share/doc/openttd-openmsx/copyright",
}


@dataclass(frozen=True)
class ScoreGrid:
    """A MIDI file's metrical grid: what its time signature and tempo map say, in ticks."""

    ticks_per_beat: int  # MIDI's quarter note
    beats_per_bar: int
    beat_ticks: int  # the time signature's beat unit
    tempi: tuple[tuple[int, int], ...]  # (tick, microseconds per quarter), from tick 0
    pitched_onsets: np.ndarray  # ticks of note-ons outside the drum channel
    last_tick: int  # the last note-off

    @property
    def time_signature(self) -> str:
        return f"{self.beats_per_bar}/{4 * self.ticks_per_beat // self.beat_ticks}"

    def seconds_at(self, ticks: np.ndarray) -> np.ndarray:
        """Seconds of each tick on the tempo map."""
        ticks = np.asarray(ticks, dtype=np.float64)
        starts = np.array([t for t, _ in self.tempi], dtype=np.float64)
        per_tick = np.array([us for _, us in self.tempi]) / 1e6 / self.ticks_per_beat
        at_start = np.concatenate([[0.0], np.cumsum(np.diff(starts) * per_tick[:-1])])
        i = np.searchsorted(starts, ticks, side="right") - 1
        return at_start[i] + (ticks - starts[i]) * per_tick[i]


def read_grid(midi_path: Path) -> ScoreGrid:
    """The grid of a MIDI file that declares one time signature, at tick 0."""
    import mido

    midi = mido.MidiFile(str(midi_path))
    tempi, metres, onsets, last = {0: 500_000}, set(), [], 0  # 120 BPM until set
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempi[tick] = msg.tempo
            elif msg.type == "time_signature":
                metres.add((tick, msg.numerator, msg.denominator))
            elif msg.type == "note_on" and msg.velocity > 0 and msg.channel != DRUM_CHANNEL:
                onsets.append(tick)
            if msg.type in ("note_on", "note_off"):
                last = max(last, tick)
    signatures = {(n, d) for _, n, d in metres}
    if len(signatures) != 1 or min(t for t, _, _ in metres) != 0:
        raise ValueError(f"{midi_path.name}: wants one time signature at tick 0, has {metres}")
    ((numerator, denominator),) = signatures
    return ScoreGrid(
        ticks_per_beat=midi.ticks_per_beat,
        beats_per_bar=numerator,
        beat_ticks=midi.ticks_per_beat * 4 // denominator,
        tempi=tuple(sorted(tempi.items())),
        pitched_onsets=np.sort(np.asarray(onsets)),
        last_tick=last,
    )


def excerpt_ticks(grid: ScoreGrid, length_s: float) -> tuple[int, int]:
    """From the first bar with a pitched note to the last bar line within ``length_s``."""
    bar = grid.beats_per_bar * grid.beat_ticks
    start = int(grid.pitched_onsets[0]) // bar * bar
    bars = np.arange(start, grid.last_tick + bar, bar)
    seconds = grid.seconds_at(bars) - grid.seconds_at(np.array([start]))[0]
    inside = bars[(seconds <= length_s) & (bars <= grid.last_tick)]
    stop = int(inside[-1]) if len(inside) > 1 else grid.last_tick
    return start, stop


def annotate(grid: ScoreGrid, start: int, stop: int) -> dict:
    """Beats, downbeats, tempo and metre of the excerpt ``[start, stop)`` in its own seconds."""
    t0 = float(grid.seconds_at(np.array([start]))[0])
    beat_ticks = np.arange(start, stop, grid.beat_ticks)
    bar_ticks = beat_ticks[:: grid.beats_per_bar]
    beats = grid.seconds_at(beat_ticks) - t0
    at_start = [us for tick, us in grid.tempi if tick <= start][-1]
    in_span = {us for tick, us in grid.tempi if start < tick < stop} | {at_start}
    beats_per_quarter = grid.ticks_per_beat / grid.beat_ticks  # 2 in x/8, 1/2 in x/2
    if len(in_span) == 1:
        tempo = 60e6 / in_span.pop() * beats_per_quarter
        tempo_note = "the tempo map's one tempo over the excerpt"
    else:
        tempo = 60.0 / float(np.median(np.diff(beats)))
        tempo_note = "median beat interval (the tempo map changes within the excerpt)"
    return {
        "tempo_bpm": round(float(tempo), 3),
        "beats_s": [round(float(b), 4) for b in beats],
        "downbeats_s": [round(float(b), 4) for b in grid.seconds_at(bar_ticks) - t0],
        "time_signature": grid.time_signature,
        "tempo_note": tempo_note,
        "start_s": t0,
        "length_s": float(grid.seconds_at(np.array([stop]))[0]) - t0,
    }


def render(midi_path: Path, soundfont: Path, wav_path: Path) -> None:
    subprocess.run(
        ["fluidsynth", "-ni", "-q", "-g", str(RENDER_GAIN), "-r", str(SAMPLE_RATE)]
        + ["-F", str(wav_path), str(soundfont), str(midi_path)],
        check=True,
        capture_output=True,
    )


def without_drums(midi_path: Path) -> None:
    """Silence every note on the General MIDI percussion channel, in place."""
    import mido

    midi = mido.MidiFile(str(midi_path))
    for track in midi.tracks:
        for i, msg in enumerate(track):
            if msg.type == "note_on" and msg.channel == DRUM_CHANNEL:
                track[i] = msg.copy(velocity=0)
    midi.save(str(midi_path))


def write_piece(
    piece: ScorePiece, root: Path, out: Path, soundfont: Path, length_s: float, drums: bool
) -> tuple[str, dict]:
    """Render ``piece`` (with or without its drums) into ``out``: its file name and entry."""
    import gzip

    import soundfile as sf

    source = root / piece.path
    midi_path = out / ".render.mid"
    midi_path.write_bytes(
        gzip.decompress(source.read_bytes()) if source.suffix == ".gz" else source.read_bytes()
    )
    out_name = piece.out_name if drums else piece.out_name.replace(".flac", "_nodrums.flac")
    try:
        grid = read_grid(midi_path)
        start, stop = excerpt_ticks(grid, length_s)
        note = annotate(grid, start, stop)
        wav_path = out / ".render.wav"
        if not drums:
            without_drums(midi_path)
        render(midi_path, soundfont, wav_path)
        samples, sr = sf.read(wav_path, always_2d=True)
    finally:
        midi_path.unlink(missing_ok=True)
        (out / ".render.wav").unlink(missing_ok=True)
    first = int(round(note.pop("start_s") * sr))
    length = note.pop("length_s")
    excerpt = samples[first : first + int(round(length * sr))]
    peak = float(np.abs(excerpt).max())
    scale = 0.9 / peak if peak > 0.9 else 1.0
    sf.write(out / out_name, excerpt * scale, sr, subtype="PCM_16")
    notes = [
        f"RENDERED FROM SCORE, not a recording: {Path(piece.path).name} played by FluidSynth"
        f" with {soundfont.name}{'' if drums else ', drum channel muted'}; {length:.1f} s from"
        f" {first / sr:.1f} s, 2 ch, {sr} Hz",
        f"beats and downbeats: the score's {grid.time_signature} grid on its tempo map",
        f"tempo: {note.pop('tempo_note')}",
        f"key: {piece.key_evidence}" if piece.key else f"no key: {piece.key_evidence}",
    ]
    entry = {
        "kind": KIND,
        "source": f"Debian package {piece.package}: {piece.title} ({Path(piece.path).name})",
        "licence": piece.licence,
    } | note
    if piece.key:
        entry["key"] = piece.key
    entry["notes"] = "; ".join(notes)
    return out_name, entry


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write the renders and annotations.json")
    ap.add_argument("--excerpt-s", type=float, default=45.0, help="longest excerpt (seconds)")
    ap.add_argument("--no-variants", action="store_true", help="skip the renders without drums")
    ap.add_argument("--soundfont", type=Path, default=DEFAULT_SOUNDFONT)
    args = ap.parse_args()
    if shutil.which("fluidsynth") is None or not args.soundfont.exists():
        sys.exit(
            "needs FluidSynth and a GM soundfont: apt-get install fluidsynth fluid-soundfont-gm"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    annotations: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="eval-scores-") as tmp:
        root = fetch_packages(PACKAGES, Path(tmp))
        for drums in (True,) if args.no_variants else (True, False):
            for piece in PIECES:
                name, entry = write_piece(
                    piece, root, args.out, args.soundfont, args.excerpt_s, drums
                )
                print(f"{name} ...", flush=True)
                annotations[name] = entry
        licences = args.out / "licences"
        licences.mkdir(exist_ok=True)
        for package, path in LICENCE_FILES.items():
            shutil.copy(root / path, licences / package)
    (args.out / "annotations.json").write_text(json.dumps(annotations, indent=1) + "\n")
    print(
        f"wrote {len(annotations)} renders of {len(PIECES)} scores and annotations.json to {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
