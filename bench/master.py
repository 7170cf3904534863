"""Benchmark: our master against ffmpeg's two-pass ``loudnorm`` to the same target, same run.

    python bench/master.py [FILE] [--target -14] [--repeat 3]

Without FILE a 3-minute stereo 44.1 kHz song is synthesised (tests/synth.py). Both sides go
file to file (decode, process, write a 24-bit WAV): ours is ``master_to_target`` (tonal balance,
glue compression, gain, true-peak limiter, iterated to the target); ffmpeg's is the documented
two-pass use of ``loudnorm`` (pass 1 measures, pass 2 normalises linearly with those figures,
``TP=-1``). Prints best-of-N wall times and the speed ratio (target: ours at least 10x faster)
and the CPU-time ratio (ffmpeg's child processes against ours, all threads: steadier than wall
time on a busy machine),
then each output's loudness error against the target and true peak, both measured by the same
meter (``functions.loudness``: pyloudnorm, 4x oversampled true peak), and each output's true
peak by ffmpeg's own ``ebur128=peak=true`` and by a long-filter 4x ``resample_poly``: the
ceiling has to hold whichever meter a user checks with. Our before/after loudness
report (integrated, LRA, true peak, sample peak) is timed on its own line.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from functions.audio_io import load_audio, save_audio  # noqa: E402
from functions.ffmpeg_command import ffmpeg_exe  # noqa: E402
from functions.loudness import loudness_report  # noqa: E402
from functions.master import CEILING_DBTP, master_to_target  # noqa: E402


def ours(src: Path, dest: Path, target: float) -> None:
    mastered = master_to_target(load_audio(src), target)
    save_audio(dest, mastered.audio, "wav", bit_depth=24)


def ffmpeg_two_pass(src: Path, dest: Path, target: float) -> None:
    base = f"loudnorm=I={target}:TP={CEILING_DBTP}:LRA=11"
    first = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-i",
            str(src),
            "-af",
            f"{base}:print_format=json",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    m = json.loads(re.search(r"\{[^{}]*\"input_i\"[^{}]*\}", first.stderr).group(0))
    second = (
        f"{base}:measured_I={m['input_i']}:measured_TP={m['input_tp']}:measured_LRA={m['input_lra']}"
        f":measured_thresh={m['input_thresh']}:offset={m['target_offset']}:linear=true"
    )
    # loudnorm works at 192 kHz internally; -ar brings the output back to the source rate.
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-i",
            str(src),
            "-af",
            second,
            "-ar",
            "44100",
            "-c:a",
            "pcm_s24le",
            str(dest),
        ],
        check=True,
    )


def _cpu_s() -> float:
    """CPU seconds used so far by this process (all threads) and its finished children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def best_of_pair(baseline, candidate, repeat: int) -> tuple[float, float, float, float]:
    """Best-of-N wall times of two runs, alternated so that load on a shared machine falls on
    both alike, then their best CPU times (which load on a busy machine inflates less)."""
    times: tuple[list[float], list[float]] = ([], [])
    cpu: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out, out_cpu in ((baseline, times[0], cpu[0]), (candidate, times[1], cpu[1])):
            started, started_cpu = time.perf_counter(), _cpu_s()
            fn()
            out.append(time.perf_counter() - started)
            out_cpu.append(_cpu_s() - started_cpu)
    return min(times[0]), min(times[1]), min(cpu[0]), min(cpu[1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("file", nargs="?")
    ap.add_argument("--target", type=float, default=-14.0, help="LUFS (default -14, streaming)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.file:
            src = Path(args.file)
        else:
            from tests.synth import synth_song

            audio, _ = synth_song(bpm=124, key="A minor", duration_s=180.0, vocals=True)
            src = tmp / "song.wav"
            save_audio(src, audio, "wav", bit_depth=24)
        ours_out, ff_out = tmp / "ours.wav", tmp / "ffmpeg.wav"
        t_ff, t_ours, cpu_ff, cpu_ours = best_of_pair(
            lambda: ffmpeg_two_pass(src, ff_out, args.target),
            lambda: ours(src, ours_out, args.target),
            args.repeat,
        )
        started = time.perf_counter()
        for path in (src, ours_out):  # the before and after reports the master kind returns
            loudness_report(load_audio(path))
        t_report = time.perf_counter() - started
        duration_s = load_audio(src).duration_s
        print(
            f"{src.name}: {duration_s:.0f} s, target {args.target} LUFS, ceiling {CEILING_DBTP} dBTP"
        )
        print(f"  ffmpeg loudnorm, two passes  {t_ff:6.2f} s")
        print(
            f"  ours (master_to_target)      {t_ours:6.2f} s   speed ratio {t_ff / t_ours:.1f}x  (target >= 10x)"
        )
        print(
            f"  CPU time: ffmpeg {cpu_ff:.2f} s, ours {cpu_ours:.2f} s   ratio {cpu_ff / cpu_ours:.1f}x"
        )
        print(
            f"  ours + before/after reports  {t_ours + t_report:6.2f} s   ratio {t_ff / (t_ours + t_report):.1f}x"
        )
        from tests.functions.peak_meters import ffmpeg_true_peak_dbtp, resampled_peak_dbtp

        for name, path in (("ffmpeg loudnorm", ff_out), ("ours", ours_out)):
            written = load_audio(path)
            r = loudness_report(written)
            error = r["integrated_lufs"] - args.target
            print(
                f"  {name:<16} {r['integrated_lufs']:7.2f} LUFS (error {error:+.2f} LU), "
                f"true peak {r['true_peak_dbtp']:+.2f} dBTP (BS.1770 4x), "
                f"{ffmpeg_true_peak_dbtp(path):+.2f} (ffmpeg ebur128), "
                f"{resampled_peak_dbtp(written):+.2f} (resample_poly 4x), LRA {r['lra_lu']:.2f} LU"
            )


if __name__ == "__main__":
    main()
