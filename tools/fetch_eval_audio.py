"""Fetch real, annotated, freely licensed recordings for ``bench/analysis_real.py``.

    python tools/fetch_eval_audio.py OUT_FOLDER [--no-variants] [--fixture DIR]

Everything comes from Debian's package archive through ``apt-get download`` (run
``apt-get update`` once first) and is unpacked with ``dpkg-deb``; nothing is added to the
repository. OUT_FOLDER receives FLAC files, an ``annotations.json`` in the bench's format and
``licences/`` with each package's copyright file (attribution the licences ask for).

What is fetched (the only real music with annotations found on PyPI, npm and Debian):

- ``fretsonfire-songs-sectoid`` (4 songs, composed and performed by Sectoid, MIT-style
  licence) and ``fretsonfire-songs-muldjord`` (4 songs by the band Muldjord, CC BY-SA 3.0).
  Each song is a backing stem and a guitar stem (Ogg Vorbis, 44.1 kHz stereo); we sum them into
  the full mix. Its game chart ``notes.mid`` was made by the authors on the song's own tempo
  grid: the tempo comes from the chart's tempo map, beats are its quarter-note grid.
- ``sonic-pi-samples``: ``loop_drone_g_97`` (CC0, freesound), 97 BPM by its author's file
  name (8 beats long at that tempo).

How annotations are derived, also written into each file's ``notes``:

- The chart's grid starts at the audio's first sample but lags or leads the recording by a few
  tens of ms (encoder and render delays). One offset per song is fitted: the shift, within a
  quarter of a beat either way (so never onto the off-beat eighth), that puts the grid on the
  strongest onsets (librosa's onset strength, not any beat tracker).
- Beats are kept from the first to the last second with sound (RMS within 40 dB of the
  song's loudest second), and not past the chart's end.
- ``time_signature`` only where the chart declares one; downbeats are left out (the chart's bar
  grid is not checked against the music, and one chart's notes sit a beat off it).
- No key is annotated for any of these.

With variants (the default) two songs are also written resampled, one as 22.05 kHz mono and
one as 48 kHz stereo, so the bench covers those rates and mono input on real music.

``--fixture DIR`` also writes the test fixture ``tests/fixtures/real`` holds: 12 s of Sectoid's
"Escape from chaosland" (MIT-style licence, so it may travel with the tests) from 30 s on, as
Ogg Vorbis (~170 KB), with the chart's beats over those 12 s and the song's licence text.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

OFFSET_STEP_S = 0.002
SILENCE_DB = 40.0
FOF_SONGS = "usr/share/games/fretsonfire/data/songs"
SONIC_PI_SAMPLES = "usr/share/sonic-pi/samples"


@dataclass(frozen=True)
class ChartSong:
    package: str
    folder: str  # inside the package's songs folder
    out_name: str
    title: str
    licence: str


SONGS = (
    ChartSong(
        "fretsonfire-songs-sectoid",
        "sectoid/Escape from chaosland",
        "sectoid_escape.flac",
        "Sectoid - Escape from chaosland",
        "MIT-style (c) 2006/2007 Carlos Viola Iborra",
    ),
    ChartSong(
        "fretsonfire-songs-sectoid",
        "sectoid/Feelings",
        "sectoid_feelings.flac",
        "Sectoid - Feelings",
        "MIT-style (c) 2006/2007 Carlos Viola Iborra",
    ),
    ChartSong(
        "fretsonfire-songs-sectoid",
        "sectoid/Metal madness",
        "sectoid_metal_madness.flac",
        "Sectoid - Metal madness",
        "MIT-style (c) 2006/2007 Carlos Viola Iborra",
    ),
    ChartSong(
        "fretsonfire-songs-sectoid",
        "sectoid/War of freedom",
        "sectoid_war_of_freedom.flac",
        "Sectoid - War of freedom",
        "MIT-style (c) 2006/2007 Carlos Viola Iborra",
    ),
    ChartSong(
        "fretsonfire-songs-muldjord",
        "muldjord/armygeddon",
        "muldjord_armygeddon.flac",
        "Muldjord - Armygeddon",
        "CC BY-SA 3.0, Muldjord (El Senator), www.muldjord.com",
    ),
    ChartSong(
        "fretsonfire-songs-muldjord",
        "muldjord/chaos_god",
        "muldjord_chaos_god.flac",
        "Muldjord - Chaos God",
        "CC BY-SA 3.0, Muldjord (El Senator), www.muldjord.com",
    ),
    ChartSong(
        "fretsonfire-songs-muldjord",
        "muldjord/internal_degeneration",
        "muldjord_internal_degeneration.flac",
        "Muldjord - Internal Degeneration",
        "CC BY-SA 3.0, Muldjord (El Senator), www.muldjord.com",
    ),
    ChartSong(
        "fretsonfire-songs-muldjord",
        "muldjord/mutilated_mime",
        "muldjord_mutilated_mime.flac",
        "Muldjord - Mutilated Mime",
        "CC BY-SA 3.0, Muldjord (El Senator), www.muldjord.com",
    ),
)
# (source file name, new name, sample rate, mono)
VARIANTS = (
    ("sectoid_feelings.flac", "sectoid_feelings_22k_mono.flac", 22050, True),
    ("sectoid_war_of_freedom.flac", "sectoid_war_of_freedom_48k.flac", 48000, False),
)
PACKAGES = ("fretsonfire-songs-sectoid", "fretsonfire-songs-muldjord", "sonic-pi-samples")
# (song, first second, length in seconds) of the test fixture; the song's licence allows it.
FIXTURE = ("sectoid_escape.flac", 30.0, 12.0)


def fetch_packages(names: tuple[str, ...], into: Path) -> Path:
    """``apt-get download`` each package into ``into`` and unpack them all into ``into/root``."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        sys.exit("needs apt-get and dpkg-deb (a Debian or Ubuntu machine)")
    done = subprocess.run(
        ["apt-get", "download", *names], cwd=into, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"apt-get download failed (run 'apt-get update' first?):\n{done.stderr}")
    root = into / "root"
    for deb in sorted(into.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def chart_beats_s(midi_path: Path) -> tuple[np.ndarray, list[float], str | None]:
    """Quarter-note grid of a MIDI chart in seconds, its tempi (BPM) and declared metre."""
    import mido

    midi = mido.MidiFile(str(midi_path))
    tpb = midi.ticks_per_beat
    tempi, metres, end_tick = {0: 500_000}, [], 0  # MIDI's default is 120 BPM until set
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempi[tick] = msg.tempo
            elif msg.type == "time_signature":
                metres.append(f"{msg.numerator}/{msg.denominator}")
        end_tick = max(end_tick, tick)
    changes = sorted(tempi.items())

    def seconds_at(tick: int) -> float:
        total = 0.0
        for i, (start, tempo) in enumerate(changes):
            stop = changes[i + 1][0] if i + 1 < len(changes) else tick
            total += mido.tick2second(max(0, min(stop, tick) - start), tpb, tempo)
            if stop >= tick:
                break
        return total

    beats = np.array([seconds_at(k * tpb) for k in range(end_tick // tpb + 1)])
    bpms = sorted({round(mido.tempo2bpm(t), 3) for start, t in changes if start < end_tick})
    metre = metres[0] if len(set(metres)) == 1 else None
    return beats, bpms, metre


def fitted_offset_s(mono: np.ndarray, sr: int, beats: np.ndarray) -> float:
    """The shift within a quarter beat that puts the grid on the strongest onsets."""
    import librosa

    hop = 128
    env = librosa.onset.onset_strength(y=mono.astype(np.float32), sr=sr, hop_length=hop)
    quarter = float(np.median(np.diff(beats))) / 4
    best, best_offset = -1.0, 0.0
    for offset in np.arange(-quarter, quarter + 1e-9, OFFSET_STEP_S):
        frames = np.round((beats + offset) * sr / hop).astype(int)
        frames = frames[(frames >= 0) & (frames < len(env))]
        score = float(env[frames].mean())
        if score > best:
            best, best_offset = score, float(offset)
    return best_offset


def sounding_span_s(mono: np.ndarray, sr: int) -> tuple[float, float]:
    """First and last second whose RMS is within SILENCE_DB of the loudest second."""
    n = len(mono) // sr
    rms = np.sqrt(np.mean(mono[: n * sr].reshape(n, sr) ** 2, axis=1)) + 1e-12
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > -SILENCE_DB)
    return float(loud[0]), float(loud[-1] + 1)


def write_song(song: ChartSong, root: Path, out: Path) -> dict:
    import soundfile as sf

    folder = root / FOF_SONGS / song.folder
    backing, sr = sf.read(folder / "song.ogg", always_2d=True)
    guitar, sr_guitar = sf.read(folder / "guitar.ogg", always_2d=True)
    assert sr == sr_guitar, "stems at different rates"
    n = min(len(backing), len(guitar))
    mix = backing[:n] + guitar[:n]
    peak = float(np.abs(mix).max())
    scale = 0.99 / peak if peak > 0.99 else 1.0  # summed stems can clip: scale, don't clip
    sf.write(out / song.out_name, mix * scale, sr, subtype="PCM_16")

    mono = mix.mean(axis=1)
    grid, bpms, metre = chart_beats_s(folder / "notes.mid")
    offset = fitted_offset_s(mono, sr, grid)
    start, stop = sounding_span_s(mono, sr)
    beats = grid + offset
    beats = beats[(beats >= start) & (beats <= min(stop, n / sr))]
    notes = [
        f"{n / sr:.1f} s, {mix.shape[1]} ch, {sr} Hz; backing and guitar stems summed"
        + (f" and scaled by {scale:.3f}" if scale < 1 else ""),
        f"beats: the chart's quarter-note grid shifted by {offset * 1000:+.0f} ms (fitted to"
        f" onsets), kept over {start:.0f}-{min(stop, n / sr):.0f} s",
    ]
    entry: dict = {
        "source": f"Debian package {song.package}: {song.title} (song.ogg + guitar.ogg, notes.mid)",
        "licence": song.licence,
    }
    if len(bpms) == 1:
        entry["tempo_bpm"] = bpms[0]
        notes.append("tempo: the chart's tempo map (one tempo)")
    else:
        entry["tempo_bpm"] = round(60.0 / float(np.median(np.diff(beats))), 3)
        notes.append(f"tempo: median beat interval; the chart changes tempo ({bpms})")
    entry["beats_s"] = [round(float(b), 4) for b in beats]
    if metre:
        entry["time_signature"] = metre
        notes.append("time signature declared by the chart; downbeats not annotated")
    else:
        notes.append("the chart declares no time signature; metre and downbeats not annotated")
    entry["notes"] = "; ".join(notes)
    return entry


def write_sonic_pi_drone(root: Path, out: Path) -> dict:
    import soundfile as sf

    name = "sonicpi_loop_drone_g_97.flac"
    samples, sr = sf.read(root / SONIC_PI_SAMPLES / "loop_drone_g_97.flac", always_2d=True)
    sf.write(out / name, samples, sr, subtype="PCM_16")
    return {
        "source": "Debian package sonic-pi-samples: loop_drone_g_97 (freesound.org sound 415570"
        " by hullum)",
        "licence": "CC0 1.0",
        "tempo_bpm": 97.0,
        "notes": f"{len(samples) / sr:.2f} s, {samples.shape[1]} ch, {sr} Hz; tempo from its"
        " author's file name (the loop is 8 beats at 97 BPM); the name says G but not the mode,"
        " so no key is annotated",
    }


def write_variant(out: Path, source: str, name: str, rate: int, mono: bool, entry: dict) -> dict:
    import soundfile as sf
    from scipy.signal import resample_poly

    samples, sr = sf.read(out / source, always_2d=True)
    if mono:
        samples = samples.mean(axis=1, keepdims=True)
    g = gcd(rate, sr)
    samples = resample_poly(samples, rate // g, sr // g, axis=0)
    sf.write(out / name, np.clip(samples, -1.0, 1.0), rate, subtype="PCM_16")
    variant = dict(entry)
    variant["notes"] = (
        f"{source} resampled to {rate} Hz" + (" and mixed to mono" if mono else "") + "; "
    ) + entry["notes"]
    return variant


def write_fixture(out: Path, annotations: dict[str, dict], licences: Path, dest: Path) -> None:
    """The excerpt ``FIXTURE`` names as Ogg Vorbis, its beats and tempo, and its licence."""
    import soundfile as sf

    name, start_s, length_s = FIXTURE
    samples, sr = sf.read(out / name, always_2d=True)
    excerpt = samples[int(start_s * sr) : int((start_s + length_s) * sr)]
    dest.mkdir(parents=True, exist_ok=True)
    audio_name = f"{Path(name).stem}_{start_s:.0f}s.ogg"
    sf.write(dest / audio_name, excerpt, sr, format="OGG", subtype="VORBIS")
    note = annotations[name]
    beats = np.asarray(note["beats_s"])
    beats = beats[(beats >= start_s) & (beats < start_s + length_s)] - start_s
    fixture = {
        "file": audio_name,
        "source": note["source"] + f", {start_s:.0f}-{start_s + length_s:.0f} s",
        "licence": note["licence"] + " (see LICENSE-sectoid.txt)",
        "tempo_bpm": note["tempo_bpm"],
        "beats_s": [round(float(b), 4) for b in beats],
        "notes": f"excerpt {start_s:.0f}-{start_s + length_s:.0f} s of {name}, which is: "
        + note["notes"],
    }
    (dest / f"{Path(name).stem}_{start_s:.0f}s.json").write_text(
        json.dumps(fixture, indent=1) + "\n"
    )
    copyright_text = (licences / "fretsonfire-songs-sectoid").read_text()
    songs_part = copyright_text[
        copyright_text.index("Copyright:") : copyright_text.index("Packaging:")
    ]
    header = (
        f'{audio_name} is an excerpt of "Escape from chaosland", composed and performed by'
        " Sectoid\n(Carlos Viola Iborra), as packaged by Debian (fretsonfire-songs-sectoid),"
        " under these terms:\n\n"
    )
    (dest / "LICENSE-sectoid.txt").write_text(header + songs_part.strip() + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write the recordings and annotations.json")
    ap.add_argument("--no-variants", action="store_true", help="skip the resampled copies")
    ap.add_argument("--fixture", type=Path, help="also write the test fixture excerpt here")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    annotations: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="eval-audio-") as tmp:
        root = fetch_packages(PACKAGES, Path(tmp))
        for song in SONGS:
            print(f"{song.out_name} ...", flush=True)
            annotations[song.out_name] = write_song(song, root, args.out)
        annotations["sonicpi_loop_drone_g_97.flac"] = write_sonic_pi_drone(root, args.out)
        licences = args.out / "licences"
        licences.mkdir(exist_ok=True)
        for package in PACKAGES:
            shutil.copy(root / "usr/share/doc" / package / "copyright", licences / package)
        readme = root / FOF_SONGS / "muldjord/armygeddon/readme.txt"  # the author asks for it
        shutil.copy(readme, licences / "muldjord-readme.txt")
    if not args.no_variants:
        for source, name, rate, mono in VARIANTS:
            print(f"{name} ...", flush=True)
            annotations[name] = write_variant(
                args.out, source, name, rate, mono, annotations[source]
            )
    (args.out / "annotations.json").write_text(json.dumps(annotations, indent=1) + "\n")
    if args.fixture:
        write_fixture(args.out, annotations, args.out / "licences", args.fixture)
    print(f"wrote {len(annotations)} recordings and annotations.json to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
