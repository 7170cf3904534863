"""Benchmark: ``analyze_audio`` against the naive librosa sequence, in the same run.

    python bench/analysis.py [FILE] [--repeat N] [--skip-cold]

Without FILE a 3-minute stereo 44.1 kHz song is synthesised (tests/synth.py: three parts in
different keys and textures). Prints:

- warm: best-of-N wall time of our full analysis (tempo, beats, downbeats, key, sections,
  loudness, clip boundaries), of the same without the loudness measurement (the like-for-like
  comparison: the naive sequence measures no loudness), and of the naive sequence (resample
  to 22.05 kHz, ``librosa.beat.beat_track``, ``librosa.feature.chroma_cqt``,
  ``librosa.onset.onset_detect``), with the ratios (target: 10x for the full analysis);
- the CPU time of ours (all its threads) and of the naive sequence, and their ratio: on a busy
  shared machine wall times swing with the load, CPU times much less;
- the naive sequence's first call in this process, which pays numba's JIT compilation;
- cold: a fresh ``python -c`` that imports, decodes the file and analyses it, run twice
  (no JIT compiling on the first run);
- cold CLI: the whole ``soundstage analyze FILE`` command in a fresh process, as a user runs it
  (target: under 1.5 s for a 3-minute track): its embedded Postgres, job, worker thread and
  result, in a data folder of its own that a first, untimed run creates. Each timed run gets a
  copy of the track with one sample changed, so the analysis cache never answers. Wall and CPU
  time (user + system of the command's process) per run.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from functions.audio_io import Audio, load_audio, save_audio  # noqa: E402

COLD_SNIPPET = (
    "import sys; from functions.audio_io import load_audio; "
    "from functions.analysis import analyze_audio; "
    "r = analyze_audio(load_audio(sys.argv[1])); print(r['tempo_bpm'], r['key'])"
)


def synthesised_song(duration_s: float = 180.0) -> Audio:
    """Three parts (A minor; E major with a lead line; A minor with it) at 124 BPM."""
    from tests.synth import synth_song

    third = duration_s / 3
    parts = [
        synth_song(124, "A minor", third, seed=1)[0],
        synth_song(124, "E major", third, seed=2, vocals=True)[0],
        synth_song(124, "A minor", third, seed=3, vocals=True)[0],
    ]
    return Audio(np.concatenate([p.samples for p in parts], axis=1), parts[0].sample_rate)


def naive_librosa(audio: Audio) -> None:
    import librosa

    y = librosa.resample(audio.mono(), orig_sr=audio.sample_rate, target_sr=22050)
    librosa.beat.beat_track(y=y, sr=22050)
    librosa.feature.chroma_cqt(y=y, sr=22050)
    librosa.onset.onset_detect(y=y, sr=22050)


def best_of(fn, repeat: int, cpu: list[float] | None = None) -> float:
    """Best wall time of ``repeat`` runs; the best CPU time (all threads) is appended to
    ``cpu`` when given: on a busy machine it is inflated less than the wall time."""
    times, cpu_times = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    if cpu is not None:
        cpu.append(min(cpu_times))
    return min(times)


def cold_run(path: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", COLD_SNIPPET, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - t0, proc.stdout.strip()


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cold_cli_run(audio: Audio, home: Path, variant: int) -> tuple[float, float, str]:
    """Wall and CPU seconds of ``soundstage analyze`` on a copy of ``audio`` whose first sample
    is moved by ``variant`` steps (new content: the analysis cache cannot answer), and the
    line of its output that gives the tempo."""
    samples = audio.samples.copy()
    samples[:, 0] += np.float32(variant / 32768)
    track = save_audio(home / f"track-{variant}.wav", Audio(samples, audio.sample_rate))
    env = {
        **os.environ,
        "SOUNDSTAGE_DATA_DIR": str(home / "data"),
        "SOUNDSTAGE_CONFIG_DIR": str(home / "config"),
    }
    script = Path(sys.executable).parent / "soundstage"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cli"]
    c0, t0 = children_cpu_s(), time.perf_counter()
    proc = subprocess.run(
        [*command, "analyze", str(track), "--quiet"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall_s, cpu_s = time.perf_counter() - t0, children_cpu_s() - c0
    tempo = next((line.strip() for line in proc.stderr.splitlines() if "tempo" in line), "")
    return wall_s, cpu_s, tempo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, help="audio file (default: a synthesised song)")
    ap.add_argument("--repeat", type=int, default=3, help="warm runs per contender (best is kept)")
    ap.add_argument("--skip-cold", action="store_true", help="skip the fresh-process timings")
    ap.add_argument("--cli-runs", type=int, default=3, help="timed cold `soundstage analyze` runs")
    args = ap.parse_args()

    import functions.analysis as analysis

    with tempfile.TemporaryDirectory() as tmp:
        if args.file:
            path = args.file
            audio = load_audio(path)
        else:
            audio = synthesised_song()
            path = save_audio(Path(tmp) / "bench.wav", audio)
        print(
            f"track: {audio.duration_s:.1f} s, {audio.channels} ch, {audio.sample_rate} Hz"
            f" ({'synthesised' if not args.file else path.name})"
        )

        t0 = time.perf_counter()
        naive_librosa(audio)
        naive_first_s = time.perf_counter() - t0
        ours_first = time.perf_counter()
        result = analysis.analyze_audio(audio)
        ours_first_s = time.perf_counter() - ours_first

        cpu: list[float] = []
        ours_s = best_of(lambda: analysis.analyze_audio(audio), args.repeat, cpu)
        naive_s = best_of(lambda: naive_librosa(audio), args.repeat, cpu)
        # Like for like: the naive sequence measures no loudness, so time ours without it too.
        real_loudness = analysis.loudness_report
        analysis.loudness_report = lambda a: {}
        try:
            ours_no_loudness_s = best_of(lambda: analysis.analyze_audio(audio), args.repeat)
        finally:
            analysis.loudness_report = real_loudness
        loudness_s = best_of(lambda: real_loudness(audio), args.repeat)

        print(
            f"result: {result['tempo_bpm']} BPM {result['time_signature']}, {result['key']}, "
            f"{len(result['sections'])} sections, {len(result['clip_boundaries_s']) - 1} clips"
        )
        print(
            f"first call in process: ours {ours_first_s:.2f} s, naive {naive_first_s:.2f} s (JIT)"
        )
        print(f"warm naive librosa sequence:          {naive_s:.3f} s")
        print(
            f"warm ours, full analysis:             {ours_s:.3f} s  -> {naive_s / ours_s:.2f}x"
            " the naive speed (target 10x)"
        )
        print(
            f"warm ours, without loudness:          {ours_no_loudness_s:.3f} s  -> "
            f"{naive_s / ours_no_loudness_s:.2f}x the naive speed"
        )
        print(f"  (loudness_report alone:             {loudness_s:.3f} s)")
        print(
            f"CPU time: ours {cpu[0]:.3f} s, naive {cpu[1]:.3f} s  -> {cpu[1] / cpu[0]:.2f}x"
            " (ours uses two threads: wall time is what the target counts)"
        )

        if not args.skip_cold:
            # A user's Python writes the project's bytecode on the first run (and `make
            # install` writes it); where PYTHONDONTWRITEBYTECODE is set it never would, and
            # every cold run would compile the sources again.
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "compileall",
                    "-q",
                    "-x",
                    "node_modules",
                    "cli",
                    "shared",
                    "functions",
                    "web",
                ],
                cwd=ROOT,
                capture_output=True,
                check=False,
            )
            for attempt in ("first", "second"):
                cold_s, out = cold_run(path)
                print(f"cold process ({attempt}): {cold_s:.2f} s  [{out}]")
            with tempfile.TemporaryDirectory() as home:
                wall_s, _, _ = cold_cli_run(audio, Path(home), 0)
                print(f"cold `soundstage analyze`, creating its data folder: {wall_s:.2f} s")
                for run in range(1, args.cli_runs + 1):
                    wall_s, cpu_s, tempo = cold_cli_run(audio, Path(home), run)
                    print(
                        f"cold `soundstage analyze` ({run}): {wall_s:.2f} s wall, {cpu_s:.2f} s"
                        f" CPU  [{tempo}]  (target < 1.5 s)"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
