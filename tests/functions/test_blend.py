"""The ``blend`` kind: the real transformers EnCodec code path with a tiny random codec, the
trained-cascade path, the spectral fallback, intermediate cleanup and bad segments."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from functions.audio_io import Audio, save_audio
from functions.blend import EncodecBlender, cascade_class, mix_latents, save_cascade, spectral_morph
from shared.config import reset_settings
from shared.errors import InvalidAudio, InvalidInput

SR = 24000


def _tone(hz: float, seconds: float, sr: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.1 * np.sin(2 * np.pi * 2 * hz * t)).astype(
        np.float32
    )


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    d = tmp_path_factory.mktemp("blend")
    a, b = d / "a.wav", d / "b.flac"
    save_audio(a, Audio(np.stack([_tone(220, 6), _tone(220, 6)]), 44100), "wav")
    save_audio(b, Audio(_tone(660, 7, 48000)[None], 48000), "flac")
    return a, b


@pytest.fixture(scope="module")
def tiny_codec():
    """A randomly initialised EnCodec built through transformers' own constructors (4 filters,
    16-dim latents, one LSTM layer), with random codebooks: the same code path as the real
    24 kHz model at a fraction of its size."""
    import torch
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(0)
    config = EncodecConfig(
        num_filters=4,
        hidden_size=16,
        codebook_dim=16,
        codebook_size=1024,
        num_lstm_layers=1,
        num_residual_layers=1,
    )
    model = EncodecModel(config).eval()
    # transformers zero-initialises the codebooks (training fills them from data): give each
    # residual stage random codes at the scale of what it will quantise, as k-means would.
    with torch.no_grad():
        scale = float(model.encoder(torch.randn(1, 1, SR)).std())
        for i, layer in enumerate(model.quantizer.layers):
            torch.nn.init.normal_(layer.codebook.embed, std=scale / (2**i))
    return model


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUNDSTAGE_MODEL_DIR", str(tmp_path / "models"))
    reset_settings()
    yield tmp_path / "models"
    reset_settings()


def _read(path):
    samples, sr = sf.read(str(path), dtype="float32")
    return samples, sr, sf.info(str(path)).subtype


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    n = min(len(x), len(y))
    return float(abs(np.corrcoef(x[:n], y[:n])[0, 1]))


def test_without_weights_the_job_uses_the_spectral_morph(run_pipeline, tracks, weights_dir):
    run = run_pipeline("blend", list(tracks), {"start_s": 1.0, "end_s": 5.0})
    assert run.result["engine"] == "spectral" and run.result["codec"] is None
    samples, sr, subtype = _read(run.outputs["blend"])
    assert (sr, subtype, samples.ndim) == (SR, "PCM_16", 1)
    assert len(samples) == 4 * SR and np.max(np.abs(samples)) <= 10 ** (-1 / 20) + 1e-3
    blend_stage = next(s for s in run.stages if s["name"] == "blending")
    assert blend_stage["engine"] == "spectral"
    # Only the output is kept: the 24 kHz conversions are gone from the work folder.
    workdir = run.outputs["blend"].parent.parent
    assert [p.name for p in workdir.iterdir() if p.is_file()] == []


def test_encodec_path_with_a_tiny_model_from_the_weights_folder(
    run_pipeline, tracks, weights_dir, tiny_codec
):
    tiny_codec.save_pretrained(weights_dir / "encodec_24khz")
    run = run_pipeline("blend", list(tracks), {"end_s": 2.0, "weight": 0.5})
    assert run.result["engine"] == "encodec"
    assert run.result["codec"] == {"name": "EnCodec 24 kHz", "bandwidth_kbps": 6.0}
    samples, sr, subtype = _read(run.outputs["blend"])
    assert (sr, subtype, len(samples)) == (SR, "PCM_16", 2 * SR)
    assert np.all(np.isfinite(samples)) and np.std(samples) > 1e-4


def test_latents_mix_frame_by_frame():
    import torch

    la, lb = torch.randn(1, 16, 101), torch.randn(1, 16, 101)
    assert torch.equal(mix_latents(la, lb, "weight", 0.0), la)
    assert torch.allclose(mix_latents(la, lb, "weight", 1.0), lb)
    assert torch.allclose(mix_latents(la, lb, "weight", 0.25), 0.75 * la + 0.25 * lb)
    fade = mix_latents(la, lb, "crossfade")
    assert torch.allclose(fade[..., 0], la[..., 0]) and torch.allclose(fade[..., -1], lb[..., -1])
    assert torch.allclose(fade[..., 50], (la[..., 50] + lb[..., 50]) / 2)


def test_codec_round_trip_at_6_kbps(tiny_codec):
    blender = EncodecBlender(tiny_codec)
    a, b = _tone(220, 1, SR), _tone(660, 1, SR)
    import torch

    codes = tiny_codec.encode(torch.from_numpy(a)[None, None], bandwidth=6.0).audio_codes
    assert tuple(codes.shape) == (1, 1, 8, 75)  # 6 kbps: 8 codebooks of 10 bits at 75 frames/s
    latents_a = blender.latents(a)
    assert tuple(latents_a.shape) == (1, 16, 75)
    decoded_a, decoded_b = (
        blender.decode(latents_a, len(a)),
        blender.decode(blender.latents(b), len(b)),
    )
    assert len(decoded_a) == len(a) and not np.array_equal(decoded_a, decoded_b)
    assert np.allclose(blender.blend(a, b, "weight", 0.0), decoded_a, atol=1e-5)
    assert np.allclose(blender.blend(a, b, "weight", 1.0), decoded_b, atol=1e-5)


def test_configured_cascade_checkpoint_refines_the_latents(
    run_pipeline, tracks, weights_dir, tiny_codec, monkeypatch
):
    import torch

    tiny_codec.save_pretrained(weights_dir / "encodec_24khz")
    torch.manual_seed(1)
    cascade = cascade_class()(
        latent_dim=16, num_stages=2, num_heads=2, layers_per_stage=1, ff_dim=32
    ).eval()
    save_cascade(cascade, weights_dir / "blend_cascade.pt")
    monkeypatch.setenv("SOUNDSTAGE_BLEND_CHECKPOINT", "blend_cascade.pt")  # relative to the weights
    reset_settings()
    run = run_pipeline("blend", list(tracks), {"end_s": 2.0})
    assert run.result["engine"] == "encodec+cascade"
    la, lb = torch.randn(1, 16, 30), torch.randn(1, 16, 30)
    mixed = mix_latents(la, lb)
    with torch.no_grad():
        assert not torch.allclose(cascade(la, lb, mixed), mixed, atol=1e-4)
        # Stages predict residuals: with zeroed heads the cascade leaves the blend as it was.
        for head in cascade.heads:
            head.weight.zero_()
            head.bias.zero_()
        assert torch.allclose(cascade(la, lb, mixed), mixed)


def test_spectral_morph_moves_from_a_to_b():
    a, b = _tone(220, 2, SR), _tone(330, 2, SR)
    assert np.allclose(spectral_morph(a, b, SR, "weight", 0.0), a, atol=1e-3)
    assert np.allclose(spectral_morph(a, b, SR, "weight", 1.0), b, atol=1e-3)
    freqs = np.fft.rfftfreq(len(a), 1 / SR)

    def share_of_b(weight: float) -> float:
        spectrum = np.abs(np.fft.rfft(spectral_morph(a, b, SR, "weight", weight)))
        at = lambda hz: spectrum[np.argmin(abs(freqs - hz))]  # noqa: E731
        return at(330) / (at(220) + at(330))

    shares = [share_of_b(w) for w in (0.1, 0.5, 0.9)]
    assert shares == sorted(shares) and shares[-1] > shares[0] + 0.1
    fade = spectral_morph(a, b, SR, "crossfade")
    head, tail = fade[: SR // 4], fade[-SR // 4 :]
    assert _corr(head, a[: SR // 4]) > _corr(head, b[: SR // 4])
    assert _corr(tail, b[-SR // 4 :]) > _corr(tail, a[-SR // 4 :])


@pytest.mark.parametrize(
    "params,error,code",
    [
        ({"start_s": 5.0, "end_s": 4.0}, InvalidInput, "BAD_SEGMENT"),
        ({"start_s": 0.0, "end_s": 40.0}, InvalidInput, "BAD_SEGMENT"),
        ({"weight": 1.5}, InvalidInput, "INVALID_PARAMS"),
        ({"start_s": 5.5, "end_s": 12.0}, InvalidAudio, "TOO_SHORT"),
    ],
)
def test_bad_segments_are_typed_errors(run_pipeline, tracks, weights_dir, params, error, code):
    with pytest.raises(error) as e:
        run_pipeline("blend", list(tracks), params)
    assert e.value.code == code


def test_a_silent_segment_is_refused(run_pipeline, tracks, tmp_path, weights_dir):
    quiet = tmp_path / "quiet.wav"
    save_audio(
        quiet,
        Audio(np.concatenate([np.zeros(3 * 44100), _tone(220, 3)])[None].astype(np.float32), 44100),
        "wav",
    )
    with pytest.raises(InvalidAudio) as e:
        run_pipeline("blend", [tracks[0], quiet], {"start_s": 0.0, "end_s": 2.0})
    assert e.value.code == "SILENT_AUDIO"
