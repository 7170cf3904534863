"""Key estimation against music theory, not against its own profiles: every major and minor key
is found from a cadence written out as chords (I-IV-V-I, i-iv-V-i with the raised leading
tone) and from a melody's note durations, in every transposition; and from synthesised audio,
where a piano-like note's partials (its fifth and third among them) must not count as notes."""

from __future__ import annotations

import numpy as np
import pytest

from functions.keys import NOTE_NAMES, chroma_from_spectrum, estimate_key

MAJOR, MINOR = False, True


def _triad(root: int, minor: bool) -> np.ndarray:
    chroma = np.zeros(12)
    chroma[[root % 12, (root + (3 if minor else 4)) % 12, (root + 7) % 12]] = 1.0
    return chroma


def _cadence(tonic: int, minor: bool) -> np.ndarray:
    """Chroma frames (12 x 4) of I-IV-V-I (major) or i-iv-V-i (harmonic minor)."""
    chords = [
        _triad(tonic, minor),
        _triad(tonic + 5, minor),
        _triad(tonic + 7, MAJOR),
        _triad(tonic, minor),
    ]
    return np.stack(chords, axis=1)


@pytest.mark.parametrize("minor", [MAJOR, MINOR], ids=["major", "minor"])
@pytest.mark.parametrize("tonic", range(12), ids=NOTE_NAMES)
def test_a_cadence_names_its_key(tonic, minor):
    key, confidence = estimate_key(_cadence(tonic, minor))
    assert key == f"{NOTE_NAMES[tonic]} {'minor' if minor else 'major'}"
    assert 0.0 < confidence <= 1.0


# "Twinkle, Twinkle, Little Star" in C major as (pitch class, quarter notes): an everyday
# melody whose key nobody disputes.
TWINKLE_C = [
    (0, 1), (0, 1), (7, 1), (7, 1), (9, 1), (9, 1), (7, 2),
    (5, 1), (5, 1), (4, 1), (4, 1), (2, 1), (2, 1), (0, 2),
    (7, 1), (7, 1), (5, 1), (5, 1), (4, 1), (4, 1), (2, 2),
    (7, 1), (7, 1), (5, 1), (5, 1), (4, 1), (4, 1), (2, 2),
    (0, 1), (0, 1), (7, 1), (7, 1), (9, 1), (9, 1), (7, 2),
    (5, 1), (5, 1), (4, 1), (4, 1), (2, 1), (2, 1), (0, 2),
]  # fmt: skip


@pytest.mark.parametrize("shift", [0, 2, 5, 7, 9, 11])
def test_a_melody_names_its_key_in_every_transposition(shift):
    frames = np.zeros((12, sum(d for _, d in TWINKLE_C)))
    t = 0
    for pc, quarters in TWINKLE_C:
        frames[(pc + shift) % 12, t : t + quarters] = 1.0
        t += quarters
    key, _ = estimate_key(frames, opening_frames=2)
    assert key == f"{NOTE_NAMES[shift]} major"


def test_a_clear_key_is_more_confident_than_an_ambiguous_one():
    # All twelve pitch classes equally loud: no key at all.
    chromatic = np.ones((12, 4))
    assert estimate_key(_cadence(9, MINOR))[1] > estimate_key(chromatic)[1]


@pytest.mark.parametrize("minor", [MAJOR, MINOR], ids=["major", "minor"])
@pytest.mark.parametrize("tonic", [4, 9])
@pytest.mark.parametrize("intro_step", [2, 5, 7], ids=["ii", "IV", "V"])
def test_an_intro_on_another_chord_does_not_move_the_key(tonic, minor, intro_step):
    # Eight cadences in the key, opened by a two-chord intro vamping on another scale degree
    # (a ii, IV or V chord): where the beat tracker says the first bar ends must not turn the
    # song's key into the intro chord's. The opening only settles relative major vs minor.
    intro_root = tonic + intro_step
    intro_minor = (intro_step == 2) if not minor else (intro_step == 5)
    intro = np.stack([_triad(intro_root, intro_minor)] * 2, axis=1)
    frames = np.concatenate([intro] + [_cadence(tonic, minor)] * 8, axis=1)
    key, _ = estimate_key(frames, opening_frames=2)
    assert key == f"{NOTE_NAMES[tonic]} {'minor' if minor else 'major'}"


def test_relative_keys_share_their_notes():
    from functions.keys import key_name, relative_key

    names = {key_name(k): key_name(relative_key(k)) for k in range(24)}
    assert names["C major"] == "A minor" and names["A minor"] == "C major"
    assert names["E minor"] == "G major" and names["F# major"] == "D# minor"
    assert all(relative_key(relative_key(k)) == k for k in range(24))


# Audio through the chroma front end, at the rate and window the analysis gives it (the mix
# decimated to 11025 Hz, ~186 ms Hann windows at half overlap).
RATE, N_FFT, HOP = 11025, 2048, 1024
QUARTER_S = 0.4


def _struck_string_partials(count: int = 16) -> np.ndarray:
    """Relative amplitudes of a string struck at 1/7 of its length (Helmholtz: partial h in
    proportion to |sin(pi h / 7)| / h), a piano's hammer point: the 2nd, 3rd and 5th partials
    sound at 0.9, 0.75 and 0.36 of the fundamental, the 7th not at all."""
    h = np.arange(1, count + 1)
    amplitude = np.abs(np.sin(np.pi * h / 7)) / h
    return amplitude / amplitude[0]


PIANO_LIKE = _struck_string_partials()
SINE = np.array([1.0])


def _tone(midi: float, seconds: float, partials: np.ndarray) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    envelope = np.exp(-t / 0.8) * np.minimum(1.0, t / 0.005)  # struck: 5 ms attack, decay
    partial_sum = sum(
        a * np.sin(2 * np.pi * h * f0 * t) for h, a in enumerate(partials, 1) if h * f0 < RATE / 2
    )
    return envelope * partial_sum


def _melody(notes, lowest_midi: int, partials: np.ndarray) -> np.ndarray:
    """``notes`` as (semitones above ``lowest_midi``, quarter notes), played twice."""
    tones = [_tone(lowest_midi + step, q * QUARTER_S, partials) for step, q in notes]
    return np.concatenate(tones * 2)


def _chroma(signal: np.ndarray) -> np.ndarray:
    padded = np.pad(signal, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    mag = np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=1))
    return chroma_from_spectrum(mag, RATE, N_FFT)[0]


@pytest.mark.parametrize("midi", [45, 48, 54, 57, 62], ids=["A2", "C3", "F#3", "A3", "D4"])
def test_a_piano_like_note_is_one_pitch_class(midi):
    # A lone note's 3rd and 5th partials are its fifth and major third: they belong to the
    # note. A chroma that counts them as notes hears a chord, with the fifth at about half the
    # note; they must stay well under the note itself.
    profile = _chroma(_tone(midi, 2.0, PIANO_LIKE)).mean(axis=1)
    own = profile[midi % 12]
    assert profile.argmax() == midi % 12
    assert profile[(midi + 7) % 12] < own / 3  # the 3rd partial (a twelfth up)
    assert profile[(midi + 4) % 12] < own / 3  # the 5th partial (two octaves and a third up)


# The opening of "Greensleeves" in A minor as (semitones above the tonic, quarter notes), in 3/4:
# A | C D E. F E | D B G. A B | C A A. G# A | B G# E.
GREENSLEEVES_A = [
    (0, 1), (3, 2), (5, 1), (7, 1.5), (8, 0.5), (7, 1), (5, 2), (2, 1), (-2, 1.5), (0, 0.5),
    (2, 1), (3, 2), (0, 1), (0, 1.5), (-1, 0.5), (0, 1), (2, 2), (-1, 1), (-5, 2),
]  # fmt: skip


@pytest.mark.parametrize("partials", [PIANO_LIKE, SINE], ids=["piano-like", "sine"])
def test_a_low_piano_like_melody_in_c_major_is_not_read_up_a_fifth(partials):
    # Twinkle in C from C3 (its pitch classes are steps above C). Every C's 3rd partial is a G
    # and every G's a D: a chroma that counts partials as notes reads the tune as G major.
    chroma = _chroma(_melody(TWINKLE_C, 48, partials))
    key, _ = estimate_key(chroma, opening_frames=int(4 * QUARTER_S * RATE / HOP))
    assert key == "C major"


@pytest.mark.parametrize("partials", [PIANO_LIKE, SINE], ids=["piano-like", "sine"])
def test_a_low_piano_like_melody_in_d_minor_is_not_read_up_a_fifth(partials):
    # Greensleeves in D, from D3. Every D's 3rd partial is an A: a chroma that counts partials
    # as notes reads the whole tune as A minor, its dominant.
    chroma = _chroma(_melody(GREENSLEEVES_A, 50, partials))
    assert estimate_key(chroma)[0] == "D minor"
