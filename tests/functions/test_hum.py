"""The ``hum`` kind: a synthesised hum of known notes is transcribed, and the track's lead
follows it (chroma correlation); bad recordings are typed errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from functions.audio_io import Audio, load_audio, save_audio
from functions.music.hum import estimate_tempo_from_notes, quantize_notes, transcribe_hum
from functions.music.midi import read_midi_notes
from functions.music.theory import estimate_key
from shared.errors import InvalidAudio

BPM = 100.0
# (MIDI pitch, beats): a phrase in C major ending on its tonic.
MELODY = [
    (60, 1),
    (62, 1),
    (64, 1),
    (67, 1),
    (64, 0.5),
    (62, 0.5),
    (60, 1),
    (65, 1),
    (64, 1),
    (62, 1),
    (60, 2),
]


def hum_audio(notes=MELODY, bpm=BPM, sr=22050, seed=0) -> Audio:
    """A sung-like tone per note: three harmonics, 5.5 Hz vibrato, soft attacks, a breath gap
    between notes and a little room noise."""
    rng = np.random.default_rng(seed)
    beat_s = 60.0 / bpm
    out = np.zeros(int((sum(b for _, b in notes) * beat_s + 0.5) * sr))
    t0 = 0.0
    for pitch, beats in notes:
        n = int(beats * beat_s * sr * 0.88)
        t = np.arange(n) / sr
        f = 440.0 * 2 ** ((pitch - 69) / 12) * (1 + 0.006 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(f) / sr
        env = np.minimum(1.0, t / 0.03) * np.minimum(1.0, (n / sr - t) / 0.05)
        i = int(t0 * sr)
        out[i : i + n] += (
            (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)) * env * 0.3
        )
        t0 += beats * beat_s
    out += rng.normal(0.0, 0.003, len(out))
    return Audio(out[None, :].astype(np.float32), sr)


def onsets_s(notes=MELODY, bpm=BPM) -> list[float]:
    return list(np.cumsum([0.0] + [b * 60.0 / bpm for _, b in notes[:-1]]))


@pytest.fixture(scope="module")
def hum_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("hum") / "hum.wav"
    save_audio(path, hum_audio(), "wav")
    return path


@pytest.fixture(scope="module")
def hum_job(hum_file, pipeline_services):
    from tests.pipeline_jobs import PipelineJobs

    return PipelineJobs(pipeline_services)("hum", [hum_file], {"genre": "lo-fi", "bpm": BPM, "allow_any_bpm": True, "format": "wav", "seed": 4, "mood": "chill"})  # fmt: skip


def test_transcription_finds_the_hummed_notes_and_their_timing(hum_job):
    melody = hum_job.result["melody"]
    assert [n["pitch"] for n in melody] == [p for p, _ in MELODY]
    for got, want in zip([n["start_s"] for n in melody], onsets_s(), strict=True):
        assert abs(got - want) < 0.06
    notes = json.loads(hum_job.outputs["notes"].read_text())
    assert notes["key"] == "C major" and notes["bpm"] == BPM
    # Quantised to sixteenths at 100 BPM: a beat is 4 steps, the eighths 2.
    assert [q["step"] for q in notes["quantized"]] == [0, 4, 8, 12, 16, 18, 20, 24, 28, 32, 36]


def test_melody_midi_holds_the_quantised_notes(hum_job):
    midi = read_midi_notes(hum_job.outputs["melody_midi"])
    assert [p for _, _, p, _ in midi] == [p for p, _ in MELODY]
    assert midi[3][0] == pytest.approx(3 * 0.6, abs=0.01)  # the fourth note on beat 4


def test_the_tracks_lead_follows_the_hum(hum_job, hum_file):
    import librosa

    sr = 22050
    hop = 512
    lead = load_audio(hum_job.outputs["lead"], sr=sr, mono=True).samples[0]
    hum = load_audio(hum_file, sr=sr, mono=True).samples[0]
    n = min(len(hum), len(lead))
    c_hum = librosa.feature.chroma_stft(y=hum[:n], sr=sr, hop_length=hop)
    c_lead = librosa.feature.chroma_stft(y=lead[:n], sr=sr, hop_length=hop)
    voiced = c_hum.max(axis=0) > 0.5
    cos = (c_hum * c_lead).sum(axis=0) / (
        np.linalg.norm(c_hum, axis=0) * np.linalg.norm(c_lead, axis=0) + 1e-9
    )
    follows = float(cos[voiced].mean())
    # Control: the same lead against the hum shifted by a whole tone is a worse match.
    shifted = np.roll(c_hum, 2, axis=0)
    cos_shift = (shifted * c_lead).sum(axis=0) / (
        np.linalg.norm(shifted, axis=0) * np.linalg.norm(c_lead, axis=0) + 1e-9
    )
    assert follows > 0.7, follows
    assert follows > float(cos_shift[voiced].mean()) + 0.2
    # The track is in the hum's key and as long as the melody in whole bars (3 bars of 2.4 s).
    assert hum_job.result["key"] == "C major"
    assert load_audio(hum_job.outputs["track"]).samples.shape[1] == int(round(7.2 * 44100))


def test_tempo_and_key_are_estimated_from_the_notes_when_not_given():
    notes = transcribe_hum(hum_audio(bpm=84, seed=1))
    assert estimate_tempo_from_notes(notes, (75, 95)) == 84
    key, confidence = estimate_key([n.pitch for n in notes], [n.duration_s for n in notes])
    assert key.name == "C major" and confidence > 0.3
    q = quantize_notes(notes, 84)
    assert [m.step for m in q][:4] == [0, 4, 8, 12]


def test_silent_short_and_tuneless_recordings_are_refused():
    sr = 22050
    with pytest.raises(InvalidAudio) as e:
        transcribe_hum(Audio(np.zeros((1, 3 * sr), np.float32), sr))
    assert e.value.code == "SILENT_AUDIO"
    with pytest.raises(InvalidAudio) as e:
        transcribe_hum(hum_audio([(60, 1)], bpm=240))
    assert e.value.code == "TOO_SHORT"
    noise = np.random.default_rng(0).normal(0, 0.2, (1, 3 * sr)).astype(np.float32)
    with pytest.raises(InvalidAudio) as e:
        transcribe_hum(Audio(noise, sr))
    assert e.value.code == "NO_MELODY"


def test_bad_hums_are_refused_by_the_api_before_any_job(api, tmp_path):
    silent, short = tmp_path / "silent.wav", tmp_path / "short.wav"
    save_audio(silent, Audio(np.zeros((1, 3 * 22050), np.float32), 22050), "wav")
    save_audio(short, hum_audio([(60, 1)], bpm=240), "wav")
    for path, code in ((silent, "SILENT_AUDIO"), (short, "TOO_SHORT")):
        r = api.create_job("hum", [path], {"genre": "lo-fi"})
        assert r.status_code == 422 and r.json()["code"] == code
    r = api.create_job("hum", [short], {"genre": "lo-fi", "key": "Q major"})
    assert r.status_code == 422 and r.json()["code"] == "BAD_KEY"
