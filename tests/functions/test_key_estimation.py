"""Key estimation against music theory, not against its own profiles: every major and minor key
is found from a cadence written out as chords (I-IV-V-I, i-iv-V-i with the raised leading
tone) and from a melody's note durations, in every transposition."""

from __future__ import annotations

import numpy as np
import pytest

from functions.keys import NOTE_NAMES, estimate_key

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
