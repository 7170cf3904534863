"""Hum transcription: a hummed or sung melody in, notes on a tempo grid out.

Offers:
- ``check_hum(audio)``: raises ``SILENT_AUDIO`` / ``TOO_SHORT`` for input with no melody to take.
- ``transcribe_hum(audio)`` -> ``list[HumNote]``: pitch tracked with librosa's pYIN (a
  probabilistic YIN with an HMM over pitch and voicing, robust to breathy voices), then cut
  into notes where voicing stops or the pitch settles on a new semitone.
- ``estimate_tempo_from_notes(notes, bpm_range)``: the tempo inside the genre's range whose
  sixteenth grid the note onsets fit best (used when the user gives no tempo).
- ``quantize_notes(notes, bpm)`` -> ``list[MelodyNote]``: onsets and lengths snapped to the
  sixteenth grid, the first note on the downbeat.
- ``estimate_key`` (from ``functions.music.theory``) then names the key from the notes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from functions.audio_io import Audio, resample
from functions.music.compose import MelodyNote
from shared.errors import InvalidAudio

PYIN_SR = 16000
HOP = 160  # 10 ms frames
FMIN_HZ = 65.0  # C2: below a low male hum
FMAX_HZ = 1050.0  # C6: above a high whistle-like hum
MIN_DURATION_S = 1.0  # the upload check refuses shorter files the same way (TOO_SHORT)
MAX_DURATION_S = 60.0
MIN_NOTE_S = 0.08
SILENCE_DBFS = -50.0


@dataclass(frozen=True)
class HumNote:
    start_s: float
    duration_s: float
    pitch: int  # MIDI note (nearest semitone)
    pitch_hz: float  # median sung frequency
    confidence: float  # mean voicing probability

    def to_dict(self) -> dict:
        return {
            "start_s": round(self.start_s, 3),
            "duration_s": round(self.duration_s, 3),
            "pitch": self.pitch,
            "pitch_hz": round(self.pitch_hz, 2),
            "confidence": round(self.confidence, 3),
        }


def check_hum(audio: Audio) -> None:
    """Raise InvalidAudio for a hum that is silent (``SILENT_AUDIO``) or too short (``TOO_SHORT``)."""
    if audio.duration_s < MIN_DURATION_S:
        raise InvalidAudio(
            f"The recording is {audio.duration_s:.1f} s long; hum at least {MIN_DURATION_S:g} s of melody.",
            code="TOO_SHORT",
        )
    peak = float(np.max(np.abs(audio.samples))) if audio.samples.size else 0.0
    if peak <= 10 ** (SILENCE_DBFS / 20):
        raise InvalidAudio(
            "The recording is silent; hum or sing a melody into the microphone and try again.",
            code="SILENT_AUDIO",
        )


def _segment(midi: np.ndarray, voiced: np.ndarray, prob: np.ndarray, hop_s: float) -> list[HumNote]:
    """Cut voiced runs into notes where the pitch settles on a different semitone."""
    notes: list[HumNote] = []
    n = len(midi)
    i = 0
    while i < n:
        if not voiced[i]:
            i += 1
            continue
        j = i
        while j < n and voiced[j]:
            j += 1
        # Inside one voiced run: a new note starts when the pitch sits at least 0.6 semitone
        # away from the current note's median for 4 frames (a glide between notes is not a note).
        start = i
        k = i
        while k < j:
            ref = np.median(midi[start : k + 1])
            if k + 4 <= j and np.all(np.abs(midi[k : k + 4] - ref) > 0.6) and k - start >= 3:
                notes.append(_note(midi, prob, start, k, hop_s))
                start = k
            k += 1
        notes.append(_note(midi, prob, start, j, hop_s))
        i = j
    return [n_ for n_ in notes if n_.duration_s >= MIN_NOTE_S]


def _note(midi: np.ndarray, prob: np.ndarray, a: int, b: int, hop_s: float) -> HumNote:
    m = float(np.median(midi[a:b]))
    return HumNote(
        a * hop_s,
        (b - a) * hop_s,
        int(round(m)),
        float(440.0 * 2 ** ((m - 69) / 12)),
        float(np.mean(prob[a:b])),
    )


def transcribe_hum(audio: Audio, progress: Callable[[float], None] | None = None) -> list[HumNote]:
    """The notes of a hummed melody (see module docstring). Raises ``NO_MELODY`` when nothing
    pitched is found (noise, speech without held notes)."""
    import librosa  # pYIN is compiled on first use; keep the import off module load
    from scipy.ndimage import median_filter

    check_hum(audio)
    mono = Audio(audio.mono()[None, :], audio.sample_rate)
    y = resample(mono, PYIN_SR).samples[0]
    y = y / (np.max(np.abs(y)) + 1e-9)
    if progress:
        progress(0.1)
    f0, voiced, prob = librosa.pyin(
        y, fmin=FMIN_HZ, fmax=FMAX_HZ, sr=PYIN_SR, frame_length=1024, hop_length=HOP, center=True
    )
    if progress:
        progress(0.8)
    # Quiet frames are breath and room noise, whatever pYIN made of them.
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=HOP, center=True)[0][: len(f0)]
    loud = rms > (np.max(rms) * 10 ** (-30 / 20))
    voiced = voiced & loud & np.isfinite(f0)
    midi = np.where(voiced, librosa.hz_to_midi(np.where(np.isfinite(f0), f0, 1.0)), 0.0)
    midi = np.where(voiced, median_filter(midi, size=5), 0.0)
    notes = _segment(midi, voiced, prob, HOP / PYIN_SR)
    if len(notes) < 2:
        raise InvalidAudio(
            "No melody was found in the recording; hum or sing clear, held notes.",
            code="NO_MELODY",
        )
    if progress:
        progress(1.0)
    return notes


def estimate_tempo_from_notes(notes: list[HumNote], bpm_range: tuple[float, float]) -> float:
    """The whole-number tempo in ``bpm_range`` whose sixteenth grid best fits the onsets.

    Each candidate's misfit is the onsets' mean squared distance from the grid in grid
    steps; ties go to the slower tempo (coarser grid), so fast grids don't win by density.
    """
    onsets = np.array([n.start_s for n in notes]) - notes[0].start_s
    best_bpm, best_err = float(bpm_range[0]), np.inf
    for bpm in np.arange(bpm_range[0], bpm_range[1] + 1e-9, 1.0):
        step_s = 60.0 / bpm / 4.0
        pos = onsets / step_s
        err = float(np.mean((pos - np.round(pos)) ** 2))
        if err < best_err - 1e-3:
            best_bpm, best_err = float(bpm), err
    return best_bpm


def quantize_notes(notes: list[HumNote], bpm: float) -> list[MelodyNote]:
    """Snap onsets and lengths to sixteenths at ``bpm``; the first note starts the bar."""
    step_s = 60.0 / bpm / 4.0
    t0 = notes[0].start_s
    out: list[MelodyNote] = []
    for n in notes:
        step = int(round((n.start_s - t0) / step_s))
        length = max(1, int(round(n.duration_s / step_s)))
        if out and step <= out[-1].step:
            step = out[-1].step + 1  # two onsets in one slot: push the later one on
        if out and out[-1].step + out[-1].length_steps > step:
            prev = out[-1]
            out[-1] = MelodyNote(prev.step, step - prev.step, prev.pitch)
        out.append(MelodyNote(step, length, n.pitch))
    return out
