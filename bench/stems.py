"""Benchmark: our stems stage against calling Demucs' ``apply_model`` directly, same run.

    python bench/stems.py [--seconds 20] [--long-minutes 10] [--repeat 3] [--threads 1] [--tiny]

The model is htdemucs with its real weights when they are cached on this machine; otherwise a
randomly initialised HTDemucs built by demucs' own class: the full-size architecture for the
overhead (its compute per second of audio is the real model's, so the percentage means what it
would in production), a tiny one for the long memory run (``--tiny`` uses it for both; the
overhead then measures plumbing against almost no compute). Both sides get the same model and
parameters (shifts=0, split=True, overlap=0.25, its own segment) and
the same number of torch threads (default 1: on a shared two-core machine torch's spinning
intra-op threads make timings swing by 10x).

Prints:
- overhead: best-of-N wall time (the two sides alternated), file to files, of ``functions.stems.separate_file`` (block
  reader, normalisation, blocks, crossfades, four 16-bit WAV stems written incrementally)
  against the direct route (decode the whole file, normalise, one ``apply_model``, write four
  WAVs), and our overhead in percent (target: at most 5 %);
- memory: peak RSS of a fresh process separating a ``--long-minutes`` track each way, and of
  one segment through the full-size architecture (its activations are per segment, so they add
  the same on both sides whatever the track's length). Target: under 3 GB on the CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

SOURCES = ["drums", "bass", "other", "vocals"]


def build_model(full: bool):
    """Real htdemucs if cached, else a random HTDemucs (tiny, or full-size with ``full``)."""
    import torch
    from demucs.htdemucs import HTDemucs

    from functions.demucs_engine import find_demucs_weights, load_demucs_model
    from shared.config import get_settings

    weights = find_demucs_weights("htdemucs", get_settings().weights_dir)
    if weights is not None:
        return load_demucs_model(weights), "htdemucs (cached weights)"
    torch.manual_seed(0)
    if full:
        return HTDemucs(sources=SOURCES).eval(), "HTDemucs full-size architecture, random weights"
    tiny = dict(
        channels=8,
        depth=4,
        t_layers=1,
        t_heads=2,
        t_hidden_scale=1.0,
        segment=2,
        dconv_depth=1,
        dconv_comp=4,
    )
    return HTDemucs(
        sources=SOURCES, **tiny
    ).eval(), "HTDemucs tiny (8 channels, 2 s segment), random weights"


def ours(model, path: Path, out: Path) -> None:
    from functions.demucs_engine import DemucsSeparator
    from functions.stems import separate_file

    separate_file(path, out, separator=DemucsSeparator(model=model, device="cpu"), bit_depth=16)


def direct(model, path: Path, out: Path) -> None:
    """What a script calling demucs would do: whole file in memory, one apply_model."""
    import soundfile as sf
    import torch
    from demucs.apply import apply_model

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    mix = torch.from_numpy(data.T.copy())
    ref = mix.mean(0)
    mean, std = ref.mean(), ref.std()
    sources = apply_model(model, ((mix - mean) / std)[None], shifts=0, split=True, overlap=0.25)[0]
    sources = sources * std + mean
    out.mkdir(parents=True, exist_ok=True)
    for name, source in zip(model.sources, sources, strict=True):
        sf.write(str(out / f"{name}.wav"), source.clamp(-1, 1).numpy().T, sr, subtype="PCM_16")


class ApplyModelClock:
    """Seconds spent inside the outermost ``demucs.apply.apply_model`` calls (it recurses over
    segments): wall time minus this is each side's own plumbing, which load on a shared
    machine disturbs far less than the network's compute."""

    def __init__(self) -> None:
        import demucs.apply

        self.seconds = 0.0
        self._depth = 0
        self._inner = demucs.apply.apply_model
        demucs.apply.apply_model = self._timed

    def _timed(self, *args, **kwargs):
        self._depth += 1
        started = time.perf_counter()
        try:
            return self._inner(*args, **kwargs)
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.seconds += time.perf_counter() - started


def make_song(path: Path, seconds: float) -> None:
    import numpy as np

    from functions.audio_io import Audio, save_audio
    from tests.synth import synth_song

    chunk = 60.0  # synthesise a minute at a time and tile: the song's content does not matter here
    minute, _ = synth_song(bpm=124, key="A minor", duration_s=min(chunk, seconds), vocals=True)
    reps = int(np.ceil(seconds / chunk))
    samples = np.tile(minute.samples, (1, reps))[:, : int(seconds * minute.sample_rate)]
    save_audio(path, Audio(samples, minute.sample_rate), "wav")


CHILD = """
import json, sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {root!r})
sys.argv = ["bench"]
from bench.stems import build_model, direct, ours, peak_mb
from pathlib import Path
import torch
torch.set_num_threads({threads})
model, _ = build_model(False)
if {mode!r} == "segment":
    from demucs.htdemucs import HTDemucs
    torch.manual_seed(0)
    big = HTDemucs(sources=["drums", "bass", "other", "vocals"]).eval()
    with torch.no_grad():
        big(torch.zeros(1, 2, int(44100 * float(big.segment))))
else:
    {{"ours": ours, "direct": direct}}[{mode!r}](model, Path({path!r}), Path({out!r}))
print(json.dumps({{"peak_rss_mb": peak_mb()}}))
"""


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the process's own address space;
    ru_maxrss is not used because Linux carries the spawning parent's peak into it at exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb(mode: str, path: Path, out: Path, threads: int) -> float:
    """Peak RSS of a fresh process running ``mode`` with the tiny model."""
    code = CHILD.format(root=str(ROOT), mode=mode, path=str(path), out=str(out), threads=threads)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the overhead track")
    ap.add_argument("--long-minutes", type=float, default=10.0, help="length of the memory track")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tiny", action="store_true", help="the tiny model for the overhead too")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    ap.add_argument("--only", choices=["overhead", "memory"], help="run one part")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    model, label = build_model(full=not args.tiny)
    print(f"overhead model: {label}; torch threads: {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.only != "memory":
            overhead_part(model, tmp, args)
        if args.only != "overhead":
            memory_part(tmp, args)


def overhead_part(model, tmp: Path, args: argparse.Namespace) -> None:
    short = tmp / "short.wav"
    make_song(short, args.seconds)
    clock = ApplyModelClock()
    ours(model, short, tmp / "warm")  # first call pays torch's one-off start-up
    runs: dict[str, list[tuple[float, float]]] = {"direct": [], "ours": []}
    for _ in range(args.repeat):  # alternated, so load on a shared machine falls on both alike
        for name, fn in (("direct", direct), ("ours", ours)):
            before, started = clock.seconds, time.perf_counter()
            fn(model, short, tmp / name)
            wall = time.perf_counter() - started
            runs[name].append((wall, wall - (clock.seconds - before)))
    (t_direct, p_direct), (t_ours, p_ours) = (
        (min(w for w, _ in runs[k]), min(p for _, p in runs[k])) for k in ("direct", "ours")
    )
    print(f"overhead on a {args.seconds:.0f} s track (best of {args.repeat}):")
    print(f"  direct apply_model  {t_direct:7.2f} s  (outside apply_model {p_direct:.2f} s)")
    print(
        f"  our stems stage     {t_ours:7.2f} s  (outside apply_model {p_ours:.2f} s)   "
        f"overhead {100 * (t_ours - t_direct) / t_direct:+.1f} % of wall time, "
        f"{100 * (p_ours - p_direct) / t_direct:+.1f} % from our plumbing  (target <= 5 %)"
    )


def memory_part(tmp: Path, args: argparse.Namespace) -> None:
    long = tmp / "long.wav"
    make_song(long, args.long_minutes * 60.0)
    print(f"peak RSS, fresh process, {args.long_minutes:.0f}-minute stereo 44.1 kHz track:")
    print(f"  (model: {build_model(full=False)[1]})")
    ours_mb = peak_rss_mb("ours", long, tmp / "long-ours", args.threads)
    print(f"  our stems stage     {ours_mb:7.0f} MB  (target < 3072 MB)")
    direct_mb = peak_rss_mb("direct", long, tmp / "long-direct", args.threads)
    print(f"  direct apply_model  {direct_mb:7.0f} MB")
    seg_mb = peak_rss_mb("segment", long, tmp / "unused", args.threads)
    print(
        f"  one segment through the full-size architecture: {seg_mb:.0f} MB peak "
        "(per-segment activations: bounded, the same for any track length)"
    )


if __name__ == "__main__":
    main()
