"""The Beat This! engine: its front end, long-piece chunking, checkpoint loading and how the
analysis uses its beats. No weights can be downloaded here: models are built through
beat_this' own ``BeatThis`` class with random weights (tiny sizes), as for Demucs."""

from __future__ import annotations

import numpy as np
import pytest

from functions.analysis import analyze_audio
from functions.audio_io import Audio
from shared.config import reset_settings
from tests.synth import synth_song

torch = pytest.importorskip("torch")
beat_tracker_mod = pytest.importorskip("beat_this.model.beat_tracker")

from functions.beat_this_engine import (  # noqa: E402
    FPS,
    BeatThisTracker,
    _frame_logits,
    checkpoint_path,
    find_beat_this_checkpoint,
    log_mel,
)


def _tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return beat_tracker_mod.BeatThis(
        transformer_dim=32, ff_mult=2, n_layers=1, head_dim=8, stem_dim=8
    ).eval()


def test_front_end_is_50_frames_a_second_of_128_log_mel_bands_at_any_rate():
    for sr, channels in ((44100, 2), (22050, 1), (48000, 1)):
        t = np.arange(int(3.0 * sr)) / sr
        tone = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
        spect = log_mel(Audio(np.tile(tone, (channels, 1)), sr))
        assert spect.shape == (int(3.0 * FPS) + 1, 128)
        assert float(spect.min()) >= 0.0  # log1p of magnitudes
        # The 440 Hz band carries the tone: the loudest band is the same at every rate.
        assert int(spect[50].argmax()) == int(log_mel(Audio(tone[None, :], sr))[50].argmax())


class _FrameWise(torch.nn.Module):
    """Logits that depend on each frame alone, so chunked and whole-piece results must agree."""

    def forward(self, x):
        s = x.sum(-1)
        return {"beat": s, "downbeat": -s}


def test_long_pieces_are_chunked_without_gaps_or_shifts():
    rng = np.random.default_rng(0)
    spect = torch.from_numpy(rng.random((4000, 128), dtype=np.float32))  # 80 s: three chunks
    beat, down = _frame_logits(_FrameWise(), spect)
    expected = spect.sum(-1).numpy()
    np.testing.assert_allclose(beat, expected, rtol=1e-5)
    np.testing.assert_allclose(down, -expected, rtol=1e-5)


def test_random_model_gives_ordered_beats_and_downbeats_on_beats():
    audio, _ = synth_song(120, "A minor", 6.0, seed=3)
    beats_s, downbeats_s = BeatThisTracker(_tiny_model()).track(audio)
    assert np.all(np.diff(beats_s) > 0) and np.all(beats_s <= audio.duration_s + 0.05)
    assert set(np.round(downbeats_s, 6)) <= set(np.round(beats_s, 6))


def save_tiny_checkpoint(weights_dir, seed: int = 7):
    """A tiny random model saved where the production checkpoint goes; returns (model, path)."""
    model = _tiny_model(seed=seed)
    hparams = {"transformer_dim": 32, "ff_mult": 2, "n_layers": 1, "head_dim": 8, "stem_dim": 8}
    path = checkpoint_path(weights_dir)
    path.parent.mkdir(parents=True)
    # The published checkpoints are Lightning files: hyper-parameters, and the model's state
    # under the "model." prefix (beat_this.inference.load_model reads them the same way).
    torch.save(
        {
            "hyper_parameters": {**hparams, "lr": 1e-3},
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        },
        path,
    )
    return model, path


def test_checkpoint_in_the_weights_folder_is_found_and_loaded(tmp_path, monkeypatch):
    model, path = save_tiny_checkpoint(tmp_path)
    assert find_beat_this_checkpoint(tmp_path) == path
    assert find_beat_this_checkpoint(tmp_path / "elsewhere") is None
    loaded = BeatThisTracker.from_checkpoint(path)
    spect = log_mel(synth_song(100, "C major", 4.0)[0])
    a, _ = _frame_logits(model, spect)
    b, _ = _frame_logits(loaded.model, spect)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

    # The analyze stage picks it up by configuration and says which engine placed the beats.
    from functions.pipelines import analyze

    monkeypatch.setenv("SOUNDSTAGE_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("SOUNDSTAGE_BEAT_ENGINE", "auto")
    reset_settings()
    analyze._load_tracker.cache_clear()
    try:
        assert analyze.engine_name() == "beat-this"
        assert analyze.cache_key("abc").endswith(":beat-this")
        assert isinstance(analyze.beat_tracker(), BeatThisTracker)
        monkeypatch.setenv("SOUNDSTAGE_BEAT_ENGINE", "dsp")
        reset_settings()
        assert analyze.beat_tracker() is None and analyze.engine_name() == "soundstage-dsp"
    finally:
        analyze._load_tracker.cache_clear()
        reset_settings()


def test_a_missing_checkpoint_is_an_error_only_when_beat_this_is_required(tmp_path, monkeypatch):
    from functions.pipelines import analyze
    from shared.errors import StageFailed

    monkeypatch.setenv("SOUNDSTAGE_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("SOUNDSTAGE_BEAT_ENGINE", "auto")
    reset_settings()
    try:
        assert analyze.beat_tracker() is None  # auto: the DSP tracker, named as such
        monkeypatch.setenv("SOUNDSTAGE_BEAT_ENGINE", "beat_this")
        reset_settings()
        with pytest.raises(StageFailed):
            analyze.beat_tracker()
    finally:
        reset_settings()


class _KnownBeats:
    """A neural engine's answer, fixed: beats every 0.5 s, a downbeat every third beat."""

    name = "beat-this"

    def track(self, audio: Audio):
        beats = np.arange(0.25, audio.duration_s - 0.1, 0.5)
        return beats, beats[::3]


def test_analysis_takes_beats_bars_and_metre_from_the_neural_engine():
    audio, _ = synth_song(120, "A minor", 12.0, seed=1)  # 4/4 to the DSP tracker
    result = analyze_audio(audio, beat_tracker=_KnownBeats())
    assert result["engine"] == "beat-this"
    assert result["time_signature"] == "3/4"
    assert result["beats_s"][:3] == [0.25, 0.75, 1.25]
    assert result["downbeats_s"][:2] == [0.25, 1.75]
    assert result["tempo_bpm"] == pytest.approx(120.0, abs=0.1)
    assert [c["relation"] for c in result["tempo_candidates"]] == ["beat", "half", "double"]
