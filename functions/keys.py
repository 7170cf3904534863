"""Pitch-class profiles and musical key.

Offers:
- ``chroma_from_spectrum(mag, sample_rate, n_fft)``: a 12-bin chroma per frame from STFT
  magnitudes that credits notes, not their overtones: spectral peaks, folded to semitones
  after a global tuning correction, are explained as a non-negative sum of harmonic note
  templates (an NNLS chroma, after Mauch and Dixon 2010), and the notes fold to pitch classes
  (the bass register's twice).
- ``estimate_tuning(...)``: how far the recording sits from A440, in semitones.
- ``key_scores(profile)``: correlation of a pitch-class profile with all 24 major/minor keys.
- ``estimate_key(chroma, opening_frames=0)``: ``("A minor", confidence)``.
"""

from __future__ import annotations

import numpy as np

NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]

# Krumhansl-Kessler probe-tone ratings (Krumhansl 1990), tonic first: the Krumhansl-Schmuckler
# key-finding profiles. Temperley's sparser Kostka-Payne profiles were tried and rank the
# subdominant key above the relative one for pop progressions (Am-F-C-G reads as F major).
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# Relative major and minor keys share their notes (Am-F-C-G and C-G-Am-F hold the same
# chords), so a whole-track profile barely separates them; songs mostly open on the tonic
# chord, so the opening bar gets this extra say, in that choice only: an intro vamping on the
# dominant (or wherever the beat tracker's first bar happens to end) never names another key.
# "That choice": the relative key, and any key the whole track scores within OPENING_MARGIN
# (correlation) of its best, which it cannot tell apart (a lo-fi loop in F# minor reads E major,
# C# minor, A major and F# minor within 0.08; a vamp on the dominant scores 0.14 or more under
# the song's key).
OPENING_WEIGHT = 0.5
OPENING_MARGIN = 0.1
# Softmax temperature turning correlations (-1..1) into a 0..1 confidence over the 24 keys.
CONFIDENCE_TEMPERATURE = 0.05
PEAK_FLOOR_DB = -60.0  # spectral peaks this far below the frame's loudest are noise
# A note's partials: the h-th (h = 1..NOTE_PARTIALS) lies 12*log2(h) semitones above it, so the
# 3rd is its fifth (C -> G) and the 5th its major third (C -> E); counted as notes, they pull a
# chroma up a fifth or to the mediant (C major reads G major or E minor). The template gives
# the h-th partial PARTIAL_DECAY**(h-1) of the fundamental: sampled instruments in this band
# range from a piano's upper partials at a tenth of the fundamental to a violin's third or a
# clarinet's fifth at 0.7. Keys on rendered scores (bench/analysis_real.py) are the same from
# 0.7 to 0.9.
# Sixteen partials reach four octaves up: every partial inside the 2 kHz band for notes down to
# 125 Hz. A shorter series leaves a bass note's 9th-16th partials to be read as notes of their
# own (C3's 9th is a D, its 10th an E).
NOTE_PARTIALS = 16
PARTIAL_DECAY = 0.8
# Notes down to E1 (41 Hz; MIDI 28), a bass guitar's and double bass's lowest string, are in the
# dictionary although the band starts at 60 Hz: below it ~186 ms windows cannot resolve
# semitones, and such a note is heard through its partials (its octave, twelfth, ...) alone.
LOWEST_NOTE = 28
# Notes from C2 to B2 (65-131 Hz), where bass lines sit, count BASS_WEIGHT times in the
# chroma: bass lines play the harmony's roots and cadence on the tonic, so they tell a key from
# its relative major or minor better than the chords above. Not lower: a kick drum's pitched
# thump (50-65 Hz, in no key) sits just below.
BASS_NOTES = (36, 48)
BASS_WEIGHT = 2.0
# Multiplicative NNLS updates (Lee and Seung) for all frames at once. Ten already move a lower
# note's partials onto it; more only refine the fit, and for timbres brighter than the template
# they hand what it leaves of their partials to notes of their own. Keys on rendered scores are
# the same from 10 to 50 updates.
NNLS_ITERATIONS = 10


def _spectral_peaks(
    mag: np.ndarray, sample_rate: int, n_fft: int, fmin_hz: float, fmax_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame index, frequency Hz, amplitude) of every local spectral maximum in the band."""
    k0 = max(1, int(fmin_hz * n_fft / sample_rate))
    k1 = min(mag.shape[1] - 2, int(np.ceil(fmax_hz * n_fft / sample_rate)))
    band = np.log(np.maximum(mag[:, k0 - 1 : k1 + 2], 1e-12))
    mid = band[:, 1:-1]
    is_peak = (mid > band[:, :-2]) & (mid >= band[:, 2:])
    floor = band.max(axis=1, keepdims=True) + PEAK_FLOOR_DB / 20.0 * np.log(10.0)
    is_peak &= mid > floor
    frames, cols = np.nonzero(is_peak)
    a, b, c = band[frames, cols], band[frames, cols + 1], band[frames, cols + 2]
    den = a - 2 * b + c
    shift = np.where(den < 0, 0.5 * (a - c) / np.where(den < 0, den, -1.0), 0.0)
    freq = (k0 + cols + shift) * sample_rate / n_fft
    amp = np.exp(b - 0.25 * (a - c) * shift)
    return frames, freq, amp


def estimate_tuning(freq_hz: np.ndarray, amp: np.ndarray) -> float:
    """Deviation from A440 equal temperament in semitones (-0.5..0.5), amplitude-weighted.

    Each peak's distance to its nearest semitone is an angle on a circle, so the mean is
    circular: a recording tuned a quarter-tone off does not average to zero.
    """
    if len(freq_hz) == 0:
        return 0.0
    pitch = 69.0 + 12.0 * np.log2(freq_hz / 440.0)
    angle = 2 * np.pi * (pitch - np.round(pitch))
    z = np.sum(amp * np.exp(1j * angle))
    return float(np.angle(z) / (2 * np.pi)) if abs(z) > 0 else 0.0


def _note_templates(lowest_bin: int, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n_bins, notes)`` harmonic templates over semitone bins ``lowest_bin`` (MIDI) upward,
    one per note from ``LOWEST_NOTE`` to the top bin, and the notes' MIDI numbers.

    Partial h of note n lands at n + 12*log2(h) semitones and is credited to the nearest bin
    with the cos^2 weight a spectral peak there gets (the 7th partial, 31 cents flat of the
    minor seventh, counts a third of its amplitude), times ``PARTIAL_DECAY**(h-1)``.
    """
    notes = np.arange(min(LOWEST_NOTE, lowest_bin), lowest_bin + n_bins)
    templates = np.zeros((n_bins, len(notes)))
    for h in range(1, NOTE_PARTIALS + 1):
        pitch = notes + 12.0 * np.log2(h)
        nearest = np.round(pitch)
        rows = nearest.astype(np.int64) - lowest_bin
        inside = (rows >= 0) & (rows < n_bins)
        weight = PARTIAL_DECAY ** (h - 1) * np.cos(np.pi * (pitch - nearest)) ** 2
        np.add.at(templates, (rows[inside], np.flatnonzero(inside)), weight[inside])
    return templates, notes


def _nnls(spectrum: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """Non-negative ``activations`` (notes, frames) with ``templates @ activations`` close to
    ``spectrum`` (bins, frames) in least squares: multiplicative updates, all frames at once.

    Each note starts at its template's projection of the spectrum; the updates then move
    energy that a lower note's partials explain away from notes of their own.
    """
    gram = templates.T @ templates
    target = templates.T @ spectrum
    act = target / np.maximum(np.diag(gram), 1e-30)[:, None]  # a note with no partial in band: 0
    for _ in range(NNLS_ITERATIONS):
        act *= target / np.maximum(gram @ act, 1e-30)
    return act


def chroma_from_spectrum(
    mag: np.ndarray,
    sample_rate: int,
    n_fft: int,
    *,
    fmin_hz: float = 60.0,
    fmax_hz: float = 2000.0,
    tuning_semitones: float | None = None,
) -> tuple[np.ndarray, float]:
    """Chroma ``(12, frames)`` (each sounding frame's maximum is 1) and the tuning used.

    ``mag`` is ``(frames, n_fft//2+1)`` STFT magnitudes. Each spectral peak between ``fmin_hz``
    and ``fmax_hz`` adds its amplitude to its semitone (after the tuning correction), weighted
    by cos^2 of its distance from the semitone centre, so mistuned or inharmonic energy between
    semitones counts for little. Each frame's semitone spectrum is then explained as a
    non-negative mix of harmonic note templates (``NOTE_PARTIALS``, ``PARTIAL_DECAY``; notes
    down to ``LOWEST_NOTE``, below the band, heard through their partials): a C's fifth and
    third partials are credited to the C, not to a G and an E. A note adds the square root of
    its activation (so one loud note does not outvote the rest of the chord) to its pitch class,
    twice that in the bass register (``BASS_NOTES``, ``BASS_WEIGHT``).
    Above 2 kHz upper partials of lower notes outnumber fundamentals, so they are left out.
    """
    n_frames = mag.shape[0]
    frames, freq, amp = _spectral_peaks(mag, sample_rate, n_fft, fmin_hz, fmax_hz)
    tuning = estimate_tuning(freq, amp) if tuning_semitones is None else tuning_semitones

    def midi(hz: float | np.ndarray) -> np.ndarray:
        return 69.0 + 12.0 * np.log2(np.maximum(hz, 1e-6) / 440.0) - tuning

    lowest = int(np.round(midi(fmin_hz)))
    n_bins = int(np.round(midi(fmax_hz))) - lowest + 1
    pitch = midi(freq)
    nearest = np.round(pitch)
    weight = amp * np.cos(np.pi * (pitch - nearest)) ** 2
    rows = np.clip(nearest.astype(np.int64) - lowest, 0, n_bins - 1)
    spectrum = np.bincount(rows * n_frames + frames, weights=weight, minlength=n_bins * n_frames)
    templates, notes = _note_templates(lowest, n_bins)
    # Single precision halves the cost of the updates' matrix products.
    spectrum = spectrum.reshape(n_bins, n_frames).astype(np.float32)
    act = np.sqrt(_nnls(spectrum, templates.astype(np.float32)))
    act[(notes >= BASS_NOTES[0]) & (notes < BASS_NOTES[1])] *= BASS_WEIGHT
    chroma = np.zeros((12, n_frames))
    for pc in range(12):
        chroma[pc] = act[notes % 12 == pc].sum(axis=0)
    peak = chroma.max(axis=0)
    sounding = peak > 1e-3 * max(float(peak.max()), 1e-12)
    chroma[:, sounding] /= peak[sounding]
    chroma[:, ~sounding] = 0.0
    return chroma, tuning


def key_scores(profile: np.ndarray) -> np.ndarray:
    """Pearson correlation of a 12-bin profile (C first) with the 24 keys.

    Index ``k`` < 12 is the major key on tonic ``k``; ``12 + k`` the minor key on ``k``.
    """
    p = np.asarray(profile, dtype=np.float64)
    p = p - p.mean()
    norm = np.linalg.norm(p)
    if norm == 0:
        return np.zeros(24)
    out = np.empty(24)
    for m, template in enumerate((MAJOR_PROFILE, MINOR_PROFILE)):
        t = template - template.mean()
        t = t / np.linalg.norm(t)
        for tonic in range(12):
            out[12 * m + tonic] = float(np.dot(p, np.roll(t, tonic))) / norm
    return out


def relative_key(index: int) -> int:
    """The ``key_scores`` index of the key with the same notes: C major <-> A minor."""
    return 12 + (index + 9) % 12 if index < 12 else (index - 12 + 3) % 12


def key_name(index: int) -> str:
    """``"C major"`` .. ``"B minor"`` for a ``key_scores`` index."""
    return f"{NOTE_NAMES[index % 12]} {'minor' if index >= 12 else 'major'}"


def estimate_key(chroma: np.ndarray, opening_frames: int = 0) -> tuple[str, float]:
    """Most likely key of a chroma ``(12,)`` or ``(12, frames)`` in time order, and confidence.

    The whole track's profile picks the key up to its relative major or minor and the keys
    it scores within ``OPENING_MARGIN`` of its best; with ``opening_frames`` > 0 the mean
    chroma of the first frames adds ``OPENING_WEIGHT`` times its own correlations to decide
    among those (see the constants). The confidence is
    the softmax share of the chosen key among all 24, so relative-key ambiguity lowers it.
    """
    c = np.asarray(chroma, dtype=np.float64)
    if c.ndim == 1:
        c = c[:, None]
    scores = whole = key_scores(c.mean(axis=1))
    if not np.any(scores):
        return "C major", 0.0
    best = int(np.argmax(scores))
    if opening_frames > 0 and c.shape[1] > opening_frames:
        scores = scores + OPENING_WEIGHT * key_scores(c[:, :opening_frames].mean(axis=1))
        scores = scores / (1.0 + OPENING_WEIGHT)
        close = np.flatnonzero(whole >= whole[best] - OPENING_MARGIN).tolist()
        best = max({*close, relative_key(best)}, key=lambda k: scores[k])
    share = np.exp((scores - scores[best]) / CONFIDENCE_TEMPERATURE)
    return key_name(best), float(share[best] / share.sum())
