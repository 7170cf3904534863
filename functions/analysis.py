"""Track analysis: tempo, beats, downbeats, metre, key, sections, loudness, clip boundaries.

Offers:
- ``analyze_audio(audio, progress=None)``: the analyze job's result dict (JSON-safe).
- ``check_analyzable(audio)``: raises InvalidAudio ``TOO_SHORT`` / ``SILENT_AUDIO``.
- ``clip_boundaries``, ``estimate_key``, ``detect_beats``: re-exported from
  ``functions.structure``, ``functions.keys`` and ``functions.beats``.

The front end is one STFT of the mono mix at the file's own rate (~46 ms windows) for onsets
and timbre (log-mel); its low bins, resynthesised, give the mix decimated to a quarter of the
rate, where a ~186 ms STFT at a quarter of the cost gives pitch (chroma). Beats are tracked
on the transient part of the log-mel spectrogram (drums and attacks, not held chords); a short
loop whose onsets show no pulse takes its tempo from its length (``functions.loop_tempo``);
bars, key and sections use all of it. Everything here is numpy and scipy's compiled FFT
(functions.real_fft): no JIT, no librosa, scipy.fft, scipy.signal or scipy.ndimage import, so a
cold process spends its time on the music.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from functions.audio_io import SILENCE_PEAK_DBFS, Audio
from functions.beats import (
    BeatTrack,
    beat_sync,
    detect_beats,
    detect_downbeats,
    onset_strength,
    tempo_from_beats,
)
from functions.blas_threads import one_blas_thread
from functions.keys import chroma_from_spectrum, estimate_key
from functions.loop_tempo import BEATS_PER_BAR, loop_track
from functions.loudness import loudness_report
from functions.real_fft import irfft, rfft
from functions.running_extrema import running_max, running_min
from functions.structure import clip_boundaries, find_sections
from shared.errors import InvalidAudio

__all__ = [
    "ANALYSIS_VERSION",
    "ENGINE",
    "analyze_audio",
    "check_analyzable",
    "clip_boundaries",
    "detect_beats",
    "estimate_key",
]

# Bump when results change for the same audio: it is part of the analysis cache key.
ANALYSIS_VERSION = "6"
ENGINE = "soundstage-dsp"
MIN_DURATION_S = 2.0
N_MELS = 64
LOW_BAND_HZ = 200.0  # kick drum and bass: where bars are accented
DRUM_BAND_HZ = 1500.0  # kick and snare bodies, below most hi-hat energy: where beats are
KICK_BAND_HZ = 100.0  # the kick drum's thump, under most bass notes' attacks
# Sustained energy is what stays after a grey opening (running minimum, then maximum) this
# long; what rises above it is transient: drums and note attacks rather than held chords.
SUSTAIN_S = 0.4
# The opening that settles relative keys (functions.keys.estimate_key) lasts at most a 4/4 bar
# at 60 BPM. A "first full bar" ending later means the beat tracker only locked on after an
# intro it heard no beat in: the track still opens in its first seconds, and one render of a
# song must not hear a 17 s opening where another at a different rate hears 2 s.
OPENING_MAX_S = 4.0


def check_analyzable(audio: Audio) -> None:
    """Raise InvalidAudio when the track is too short (< 2 s) or silent (its peak is below
    ``SILENCE_PEAK_DBFS``, the threshold the upload check uses too)."""
    if audio.duration_s < MIN_DURATION_S:
        raise InvalidAudio(
            f"The track is {audio.duration_s:.2f} s long; analysis needs at least "
            f"{MIN_DURATION_S:.0f} s of audio.",
            code="TOO_SHORT",
        )
    x = audio.samples
    peak = max(float(x.max()), -float(x.min())) if x.size else 0.0
    if peak <= 10 ** (SILENCE_PEAK_DBFS / 20):
        raise InvalidAudio(
            f"The track is silent (its loudest sample is below {SILENCE_PEAK_DBFS:.0f} dBFS); "
            "there is nothing to analyse.",
            code="SILENT_AUDIO",
        )


def _window_sizes(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) of the onset STFT: a power of two near 46 ms, hop half of it.

    ~43 frames a second is the rate librosa's beat tracker works at; beat times are refined
    below a frame by interpolation, and a finer hop would double the cost for nothing.
    """
    n_fft = 2 ** int(round(math.log2(0.046 * sample_rate)))
    return n_fft, n_fft // 2


def _frames(x: np.ndarray, n_fft: int, hop: int) -> list[np.ndarray]:
    """The frames of a centred STFT (the signal zero-padded by ``n_fft // 2`` each side) as
    strided views: the interior straight from ``x``, only the few frames that overhang an
    end from small padded copies, so the whole signal is never copied."""
    half = n_fft // 2
    n_frames = 1 + len(x) // hop
    first = -(-half // hop)  # the first frame that starts inside x
    last = (len(x) + half - n_fft) // hop  # the last frame that ends inside x
    if last < first:
        padded = np.pad(x, half)
        return [np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]]
    view = np.lib.stride_tricks.sliding_window_view
    head = view(np.pad(x[: first * hop - half + n_fft], (half, 0)), n_fft)[::hop][:first]
    interior = view(x, n_fft)[first * hop - half :: hop][: last - first + 1]
    tail_at = (last + 1) * hop - half
    tail = view(np.pad(x[tail_at:], (0, n_fft)), n_fft)[::hop][: n_frames - last - 1]
    return [head, interior, tail]


def _stft_blocks(
    x: np.ndarray, n_fft: int, hop: int, reduce: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Centred Hann STFT, each block of frames' complex spectrum handed to ``reduce``: the
    block's buffers stay in cache and a long track's full spectrogram never sits in memory."""
    x = np.asarray(x, dtype=np.float32)
    window = np.hanning(n_fft).astype(np.float32)
    block = max(1, (1 << 20) // n_fft)  # ~4 MB of float32 frames per block
    out = []
    for frames in _frames(x, n_fft, hop):
        for i in range(0, len(frames), block):
            out.append(reduce(rfft(frames[i : i + block] * window, axis=1)))
    return np.concatenate(out, axis=0)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    return np.where(
        hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / log_step, hz * 3.0 / 200.0
    )


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    log_step = math.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), mel * 200.0 / 3.0)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float):
    """``(n_mels, n_fft//2+1)`` triangular filters with Slaney's area normalisation, and the
    ``n_mels + 2`` band edges in Hz: ``librosa.filters.mel``'s defaults, in plain numpy."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * (sr / n_fft)
    width = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / width[:-1, None]
    upper = ramps[2:] / width[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None].astype(np.float32)
    return weights, edges


class SparseMel:
    """A triangular filterbank applied as what it is: every bin feeds at most two neighbouring
    bands, so each band is two weighted sums over contiguous runs of bins (``np.add.reduceat``)
    instead of a dense ``(bins, bands)`` product that is almost all zeros (64 times less
    arithmetic for 64 bands; the sums are the same up to float rounding)."""

    def __init__(self, basis: np.ndarray):
        nonzero = basis > 0
        used = np.flatnonzero(nonzero.any(axis=0))
        self.start, self.stop = int(used[0]), int(used[-1]) + 1
        cols = np.arange(self.start, self.stop)
        n_bands = basis.shape[0]
        # Each bin's first band (the one it rises towards or falls from) and the weights it
        # gives that band and the next.
        first = np.argmax(nonzero[:, cols], axis=0)
        second = np.minimum(first + 1, n_bands - 1)
        self.lower = basis[first, cols].astype(np.float32)
        self.upper = np.where(first + 1 < n_bands, basis[second, cols], 0.0).astype(np.float32)
        rebuilt = np.zeros((n_bands, len(cols)), dtype=np.float32)
        rebuilt[second, np.arange(len(cols))] = self.upper
        rebuilt[first, np.arange(len(cols))] = self.lower
        if not np.array_equal(rebuilt, basis[:, cols].astype(np.float32)):
            raise ValueError("each bin must feed at most two neighbouring bands")
        # Bins whose first band is b form one run (bands rise with frequency): its start.
        self.bands = np.unique(first)
        self.runs = np.searchsorted(first, self.bands)
        self.n_bands = n_bands

    def __call__(self, power: np.ndarray) -> np.ndarray:
        """``(frames, bins)`` power (bins from 0, at least ``stop`` of them) to ``(frames,
        bands)``: ``power @ basis.T``."""
        p = power[:, self.start : self.stop]
        out = np.zeros((len(p), self.n_bands + 1), dtype=np.float32)
        out[:, self.bands] = np.add.reduceat(p * self.lower, self.runs, axis=1)
        out[:, self.bands + 1] += np.add.reduceat(p * self.upper, self.runs, axis=1)
        return out[:, : self.n_bands]


def _decimation(sr: int) -> int:
    """How far the pitch front end may decimate: its new Nyquist stays above 2.4 kHz."""
    return 4 if sr >= 19200 else 2 if sr >= 9600 else 1


def _front_end(mono: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """One STFT of the mono mix for everything: mel power ``(frames, N_MELS)``, the bands'
    centre frequencies, the frame rate, and the mix decimated by ``_decimation(sr)`` for the
    pitch front end.

    The decimated mix is the STFT resynthesised from its low bins only (inverse FFTs a
    ``_decimation`` of the size, overlap-added): Hann windows at half overlap add up to one,
    so this is the mix low-passed and resampled, at a fraction of a resampler's cost.
    """
    n_fft, hop = _window_sizes(sr)
    q = _decimation(sr)
    fmax = min(11000.0, sr / 2)
    mel_basis, edges = mel_filterbank(sr, n_fft, N_MELS, 30.0, fmax)
    mel = SparseMel(mel_basis)
    used = mel.stop  # bins above fmax weigh nothing
    low = n_fft // (2 * q) + 1
    lows: list[np.ndarray] = []

    def reduce(spectrum: np.ndarray) -> np.ndarray:
        lows.append(spectrum[:, :low])
        # The squared spectrum as float pairs, each bin's two parts summed: no complex maths.
        pairs = np.ascontiguousarray(spectrum[:, :used]).view(np.float32)
        squared = pairs * pairs
        return mel(squared[:, 0::2] + squared[:, 1::2])

    power = _stft_blocks(mono, n_fft, hop, reduce)
    frames = irfft(np.concatenate(lows), n=n_fft // q, axis=1) / np.float32(q)
    half = n_fft // (2 * q)  # the decimated hop: frames overlap by half
    decimated = np.zeros((len(frames) + 1) * half, dtype=np.float32)
    decimated[: len(frames) * half] += frames[:, :half].reshape(-1)
    decimated[half:] += frames[:, half:].reshape(-1)
    # Frame f is centred on sample f * hop: drop the centring pad.
    decimated = decimated[half : half + len(mono) // q]
    return power, edges[1:-1], sr / hop, decimated


def _chroma_front_end(decimated: np.ndarray, sr: int) -> tuple[np.ndarray, float, float]:
    """Chroma ``(12, frames)``, its frame rate and the tuning (semitones from A440), from the
    mix decimated by ``_decimation(sr)`` (see ``_front_end``)."""
    n_short, hop_short = _window_sizes(sr)
    q = _decimation(sr)
    rate = sr / q
    # ~186 ms windows resolve semitones down to ~60 Hz; half-overlapped (~93 ms hop) they
    # still give three or more frames per beat up to 200 BPM.
    n_fft, hop = 4 * n_short // q, 4 * hop_short // q
    keep = int(np.ceil(2200.0 * n_fft / rate)) + 2  # chroma stops at 2 kHz
    mag = _stft_blocks(decimated, n_fft, hop, lambda m: np.abs(m[:, :keep]))
    chroma, tuning = chroma_from_spectrum(mag, rate, n_fft)
    return chroma, rate / hop, tuning


def _transients(power: np.ndarray, frame_rate_hz: float) -> np.ndarray:
    """Per band, the power above its sustained level (a top-hat along time).

    Onsets of held pads, side-chained bass swells and chord stabs matter less to the pulse
    than drum hits; a median-filter harmonic/percussive split would do the same at ten times
    the cost, so the sustained part is estimated by morphological opening instead.
    """
    size = max(3, int(round(SUSTAIN_S * frame_rate_hz)) | 1)
    sustained = running_max(running_min(power, size, axis=0), size, axis=0)  # grey opening
    return np.maximum(power - sustained, 0.0)


def _dct_basis(n: int, count: int) -> np.ndarray:
    """``(n, count)``: the first ``count`` orthonormal DCT-II basis vectors (cepstra of a
    log-mel frame are ``frame @ basis``)."""
    k = np.arange(count)[None, :]
    basis = np.cos(np.pi * k * (2 * np.arange(n)[:, None] + 1) / (2 * n)) * math.sqrt(2.0 / n)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.astype(np.float32)


def _db(power: np.ndarray, floor_db: float = 80.0, ref: float | None = None) -> np.ndarray:
    """Power in dB, floored ``floor_db`` below ``ref`` (default: the loudest value)."""
    db = 10.0 * np.log10(np.maximum(power, 1e-10))
    top = float(db.max()) if ref is None else 10.0 * math.log10(max(ref, 1e-10))
    return np.maximum(db, top - floor_db)


def _finite(x: float, digits: int, default: float = 0.0) -> float:
    return round(float(x), digits) if math.isfinite(float(x)) else default


class BeatTracker(Protocol):
    """A neural beat engine (``functions.beat_this_engine.BeatThisTracker``)."""

    name: str

    def track(self, audio: Audio) -> tuple[np.ndarray, np.ndarray]: ...


def _neural_beats(
    tracker: BeatTracker, audio: Audio, dsp: BeatTrack
) -> tuple[BeatTrack, np.ndarray, int] | None:
    """The neural engine's beats as a BeatTrack, its downbeats and beats per bar; None when it
    found too few beats to make a grid of (the DSP result stands, and the engine says so)."""
    beats_s, downbeats_s = tracker.track(audio)
    tempo = tempo_from_beats(beats_s)
    if tempo is None:
        return None
    downbeats_s = downbeats_s[np.isin(downbeats_s, beats_s)]
    # Beats per bar: the usual count of beats from one downbeat to the next.
    index = np.searchsorted(beats_s, downbeats_s)
    gaps = np.diff(index)
    per_bar = 3 if len(gaps) and int(np.median(gaps)) == 3 else 4
    track = BeatTrack(tempo, beats_s, dsp.confidence, 60.0 / tempo, dsp.levels)
    return track, downbeats_s, per_bar


def analyze_audio(
    audio: Audio,
    progress: Callable[[float, str], None] | None = None,
    *,
    beat_tracker: BeatTracker | None = None,
) -> dict:
    """Analyse one track; returns the analyze job's result (plain floats, lists, strings).

    Keys: tempo_bpm, tempo_candidates (the tempo, its half and its double, each with a
    confidence), beats_s, downbeats_s, time_signature, key, key_confidence, sections,
    loudness, duration_s, sample_rate, channels, beat_confidence, clip_boundaries_s (empty
    when the track is under 12 s, too short for three clips), tuning_cents, engine (the beat
    engine), analysis_version. ``progress(fraction, message)`` is called as the work advances.
    With ``beat_tracker`` beats and downbeats come from it (bars and metre follow its
    downbeats); the DSP tracker still scores the tempo's half and double.
    Raises InvalidAudio ``TOO_SHORT`` / ``SILENT_AUDIO`` (see ``check_analyzable``).
    """
    with one_blas_thread():
        return _analyze(audio, progress, beat_tracker)


def _analyze(
    audio: Audio,
    progress: Callable[[float, str], None] | None,
    beat_tracker: BeatTracker | None,
) -> dict:
    report = progress or (lambda fraction, message: None)
    check_analyzable(audio)
    duration_s = audio.duration_s
    sr = audio.sample_rate
    # Loudness filters and oversamples the full-rate stereo signal, mostly inside scipy's C
    # loops, which release the GIL: on a second core it runs beside the rhythm and pitch work.
    with ThreadPoolExecutor(max_workers=1) as pool:
        loudness_job = pool.submit(loudness_report, audio)
        mono = audio.mono()
        report(0.05, "spectrum")
        mel_power, centres_hz, frame_rate, decimated = _front_end(mono, sr)
        mel_db = _db(mel_power)
        low_onset = onset_strength(mel_db[:, centres_hz < LOW_BAND_HZ])
        # Floored against the whole spectrogram's peak, so a drone's tiny wobbles stay silent.
        hits_db = _db(_transients(mel_power, frame_rate), ref=float(mel_power.max()))
        report(0.3, "beats")
        track = detect_beats(
            onset_strength(hits_db),
            frame_rate,
            accent=onset_strength(hits_db[:, centres_hz < DRUM_BAND_HZ]),
            kick=onset_strength(hits_db[:, centres_hz < KICK_BAND_HZ]),
        )
        loop = loop_track(track, duration_s, mel_power, frame_rate)
        track = loop if loop is not None else track
        engine, neural = ENGINE, None
        if beat_tracker is not None:
            neural = _neural_beats(beat_tracker, audio, track)
            if neural is not None:
                engine = beat_tracker.name
                track = neural[0]
        beats_s = track.beats_s
        report(0.45, "pitch")
        chroma, chroma_rate, tuning = _chroma_front_end(decimated, sr)
        report(0.65, "key and bars")
        if len(beats_s):
            beat_chroma = beat_sync(chroma, chroma_rate, beats_s, duration_s)
            if neural is not None:
                downbeats_s, per_bar = neural[1], neural[2]
            elif loop is not None:  # whole bars of four from the loop's start
                downbeats_s, per_bar = beats_s[::BEATS_PER_BAR], BEATS_PER_BAR
            else:
                downbeats_s, per_bar = detect_downbeats(beats_s, low_onset, beat_chroma, frame_rate)
            # The opening is everything up to the end of the first full bar (pickup included).
            later = downbeats_s[1:2] if len(downbeats_s) > 1 else beats_s[-1:]
            opening_s = min(float(later[0]), OPENING_MAX_S)
        else:
            beat_chroma, downbeats_s, per_bar = np.zeros((12, 0)), np.zeros(0), 4
            opening_s = OPENING_MAX_S
        key, key_confidence = estimate_key(chroma, opening_frames=int(opening_s * chroma_rate))
        report(0.8, "sections")
        mfcc = (mel_db @ _dct_basis(mel_db.shape[1], 14)[:, 1:]).T
        beat_features = np.vstack([beat_sync(mfcc, frame_rate, beats_s, duration_s), beat_chroma])
        beat_power = beat_sync(mel_power.sum(axis=1)[None, :], frame_rate, beats_s, duration_s)
        sections = find_sections(
            beat_features, beats_s, downbeats_s, duration_s, _db(beat_power[0], 120.0), per_bar
        )
        try:
            clips = clip_boundaries(beats_s, downbeats_s, duration_s)
        except InvalidAudio:
            clips = []  # under 12 s: the video kind, which needs clips, reports TOO_SHORT
        loudness = loudness_job.result()
    report(1.0, "done")
    return {
        "tempo_bpm": _finite(track.tempo_bpm, 2),
        "tempo_candidates": track.candidates(),
        "beats_s": [round(float(b), 3) for b in beats_s],
        "downbeats_s": [round(float(b), 3) for b in downbeats_s],
        "time_signature": f"{per_bar}/4",
        "key": key,
        "key_confidence": _finite(key_confidence, 3),
        "sections": sections,
        "loudness": loudness,
        "duration_s": round(duration_s, 3),
        "sample_rate": int(sr),
        "channels": int(audio.channels),
        "beat_confidence": _finite(track.confidence, 3),
        "clip_boundaries_s": clips,
        "tuning_cents": _finite(100.0 * tuning, 1),
        "engine": engine,
        "analysis_version": ANALYSIS_VERSION,
    }
