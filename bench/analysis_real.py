"""Benchmark: our analysis against librosa on REAL annotated recordings, in the same run.

    python bench/analysis_real.py [FOLDER ...] [--engine dsp|beat_this] [--weights DIR]

Each FOLDER holds audio files and an ``annotations.json`` mapping each file name to what annotators
published for it (every key optional):

    {"song.flac": {"tempo_bpm": 100.2, "beats_s": [...] or "first_beats_s": [...],
                   "downbeats_s": [...], "key": "A minor", "time_signature": "3/4",
                   "kind": "rendered from score"}}

``kind`` says what the audio is (a recording unless given); the count of each kind is printed
per folder, so renders of scores are never mistaken for recordings.

Default FOLDER: ``../shared/eval-audio`` next to the repository, when it exists. Recordings stay
out of the repository (research excerpts are not ours to redistribute); only this script is here.
``tools/fetch_eval_audio.py OUT`` builds a second folder of freely licensed annotated songs, and
``tools/fetch_eval_scores.py OUT`` a third: pieces rendered from scores (MIDI through a soundfont),
with exact beats, downbeats, metre and key, the only ones here that annotate metre and key.

Per file and in total it prints, for us and for librosa (``librosa.beat.beat_track`` with its
defaults; key from the mean ``chroma_cqt`` against the Krumhansl-Kessler profiles):
- tempo and whether it is within 4 % of the annotation (the usual "Accuracy 1" of MIREX), or
  only at another metrical level (x2, /2, x3, /3: "Accuracy 2", marked in the ok column);
- beat F-measure (mir_eval, 70 ms window). When only the first beats are annotated, both sides
  are scored on the annotated span alone (estimates trimmed to it, 70 ms either side);
- downbeat F-measure (ours; librosa has no downbeat tracker) and metre (y/n per file; in total
  also per annotated metre) when annotated;
- key, right or wrong, when annotated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from functions.audio_io import Audio, load_audio  # noqa: E402
from functions.keys import key_name, key_scores  # noqa: E402

TEMPO_TOLERANCE = 0.04
WINDOW_S = 0.07
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".aiff", ".aif", ".m4a"}
OTHER_LEVELS = {2.0: "x2", 0.5: "/2", 3.0: "x3", 1 / 3: "/3"}  # estimate / annotation
NAME_WIDTH = 32


def librosa_analysis(audio: Audio) -> dict:
    """The reference everyone has: librosa's beat tracker and a chroma + Krumhansl key."""
    import librosa

    y = audio.mono().astype(np.float32)
    tempo, beats = librosa.beat.beat_track(y=y, sr=audio.sample_rate, units="time")
    chroma = librosa.feature.chroma_cqt(y=y, sr=audio.sample_rate)
    scores = key_scores(chroma.mean(axis=1))
    return {
        "tempo_bpm": float(np.atleast_1d(tempo)[0]),
        "beats_s": np.asarray(beats, dtype=float),
        "key": key_name(int(np.argmax(scores))),
    }


def beat_f(reference: np.ndarray, estimated: np.ndarray, partial: bool) -> float:
    import mir_eval

    if len(reference) == 0:
        return float("nan")
    est = np.asarray(estimated, dtype=float)
    if partial:  # only the first beats are annotated: score on their span alone
        est = est[(est >= reference[0] - WINDOW_S) & (est <= reference[-1] + WINDOW_S)]
    # mir_eval ignores beats before 5 s by default; short excerpts need all of them.
    return float(mir_eval.beat.f_measure(reference, est, f_measure_threshold=WINDOW_S))


def tempo_level(tempo: float, annotated: float | None) -> str | None:
    """Mark a tempo: y within 4 % of the annotation, x2 / /2 / x3 / /3 at another level, else n."""
    if annotated is None:
        return None
    if abs(tempo / annotated - 1) <= TEMPO_TOLERANCE:
        return "y"
    for ratio, mark in OTHER_LEVELS.items():
        if abs(tempo / (annotated * ratio) - 1) <= TEMPO_TOLERANCE:
            return mark
    return "n"


def same_key(a: str, b: str) -> bool:
    from functions.music.theory import parse_key

    return parse_key(a).same_key(parse_key(b))


def annotations_of(folder: Path) -> dict[str, dict]:
    path = folder / "annotations.json"
    notes = json.loads(path.read_text()) if path.exists() else {}
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() in AUDIO_SUFFIXES:
            notes.setdefault(f.name, {})
    return notes


def main() -> int:
    default = ROOT.parent / "shared" / "eval-audio"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", type=Path, metavar="FOLDER")
    ap.add_argument("--engine", choices=("dsp", "beat_this"), default="dsp")
    ap.add_argument("--weights", type=Path, help="weights folder holding beat_this/final0.ckpt")
    args = ap.parse_args()
    folders = args.folders or ([default] if default.exists() else [])
    missing = [str(f) for f in folders if not f.is_dir()]
    if not folders or missing:
        ap.error(
            "give folders of annotated recordings"
            + (f" ({', '.join(missing)} missing)" if missing else "")
        )
    from functions.analysis import analyze_audio

    tracker = None
    if args.engine == "beat_this":
        from functions.beat_this_engine import BeatThisTracker, find_beat_this_checkpoint

        found = find_beat_this_checkpoint(args.weights) if args.weights else None
        if found is None:
            ap.error("--engine beat_this needs --weights DIR with beat_this/final0.ckpt")
        tracker = BeatThisTracker.from_checkpoint(found)

    rows, totals = [], {"ours": [], "librosa": []}
    header = (
        f"{'file':<{NAME_WIDTH}} {'sr/ch':>9} {'len':>6} {'annot':>7} | {'ours':>7} {'ok':>2} "
        f"{'beatF':>5} {'dbF':>5} {'metre':>6} {'key':>9} {'s':>5} | {'librosa':>7} {'ok':>2} "
        f"{'beatF':>5} {'key':>9} {'s':>5}"
    )
    print(header)
    print("-" * len(header))
    recordings = [(f, name, note) for f in folders for name, note in annotations_of(f).items()]
    for folder in folders:
        kinds = [note.get("kind", "recording") for f, _, note in recordings if f == folder]
        counts = ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds)))
        print(f"{folder}: {counts}")
    for folder, name, note in recordings:
        path = folder / name
        if not path.exists():
            continue
        audio = load_audio(path)
        t0 = time.perf_counter()
        ours = analyze_audio(audio, beat_tracker=tracker)
        ours_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = librosa_analysis(audio)
        ref_s = time.perf_counter() - t0
        beats = np.asarray(note.get("beats_s") or note.get("first_beats_s") or [], dtype=float)
        partial = "beats_s" not in note
        annotated = note.get("tempo_bpm")
        row = {"file": name}
        for who, res, took in (("ours", ours, ours_s), ("librosa", ref, ref_s)):
            tempo = float(res["tempo_bpm"])
            level = tempo_level(tempo, annotated)
            ok = level == "y"
            f = beat_f(beats, res["beats_s"], partial)
            key_ok = same_key(res["key"], note["key"]) if note.get("key") else None
            row[who] = {"tempo": tempo, "ok": ok, "level": level, "beat_f": f}
            row[who] |= {"key": res["key"], "key_ok": key_ok}
            row[who]["s"] = took
            totals[who].append(row[who])
        down = np.asarray(note.get("downbeats_s") or [], dtype=float)
        row["ours"]["downbeat_f"] = beat_f(down, ours["downbeats_s"], False) if len(down) else None
        metre = note.get("time_signature")
        row["ours"]["metre_ok"] = (ours["time_signature"] == metre) if metre else None
        row["ours"]["metre"] = metre
        rows.append(row)

        def mark(v):
            return "-" if v is None else ("y" if v else "n")

        def level(v):
            return "-" if v is None else v

        o, r = row["ours"], row["librosa"]
        dbf = "-" if o["downbeat_f"] is None else f"{o['downbeat_f']:.2f}"
        print(
            f"{name[:NAME_WIDTH]:<{NAME_WIDTH}} {audio.sample_rate / 1000:>5.4g}k/{audio.channels} "
            f"{audio.duration_s:>6.1f} {annotated or float('nan'):>7.2f} | {o['tempo']:>7.2f} "
            f"{level(o['level']):>2} {o['beat_f']:>5.2f} {dbf:>5} {ours['time_signature']:>5}"
            f"{mark(o['metre_ok'])} "
            f"{o['key']:>9}{mark(o['key_ok'])} {o['s']:>5.2f} | {r['tempo']:>7.2f} "
            f"{level(r['level']):>2} {r['beat_f']:>5.2f} {r['key']:>9}{mark(r['key_ok'])} "
            f"{r['s']:>5.2f}"
        )
        cands = ", ".join(
            f"{c['bpm']:.1f} ({c['confidence']:.2f})" for c in ours["tempo_candidates"]
        )
        print(f"{'':<{NAME_WIDTH}}   candidates: {cands}")
    print("-" * len(header))
    for who, items in totals.items():
        if not items:
            continue
        n = sum(x["level"] is not None for x in items)
        tempo_ok = sum(bool(x["ok"]) for x in items)
        any_level = sum(x["level"] not in (None, "n") for x in items)
        mean_f = float(np.nanmean([x["beat_f"] for x in items]))
        keys = [x["key_ok"] for x in items if x["key_ok"] is not None]
        key_txt = f"{sum(keys)}/{len(keys)}" if keys else "n/a"
        line = (
            f"{who:<8} tempo within 4 %: {tempo_ok}/{n} (any level {any_level}/{n})   "
            f"mean beat F: {mean_f:.3f}   "
            f"key right: {key_txt}   time: {sum(x['s'] for x in items):.2f} s"
        )
        if who == "ours":
            dbf = [x["downbeat_f"] for x in items if x.get("downbeat_f") is not None]
            metre = [x["metre_ok"] for x in items if x.get("metre_ok") is not None]
            line += f"   downbeat F: {np.mean(dbf):.3f}" if dbf else "   downbeat F: n/a"
            line += f"   metre right: {sum(metre)}/{len(metre)}" if metre else "   metre: n/a"
            by_metre = sorted({x["metre"] for x in items if x.get("metre_ok") is not None})
            for sig in by_metre if len(by_metre) > 1 else ():
                marks = [x["metre_ok"] for x in items if x.get("metre") == sig]
                line += f" ({sig}: {sum(marks)}/{len(marks)})"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
