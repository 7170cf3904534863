"""Stem separation: the Demucs path run for real with a tiny randomly initialised HTDemucs built
by demucs' own classes (no download), the DSP fallback's sum-to-mix property, block-wise
processing of long input, weights discovery, and the ``stems`` kind with its cache."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from functions import stems as stems_mod
from functions.audio_io import load_audio, save_audio
from functions.demucs_engine import (
    DemucsSeparator,
    download_demucs_weights,
    find_demucs_weights,
    load_demucs_model,
)
from functions.stems import _block_plan, separate_file, separate_track
from functions.stems_dsp import DspSeparator
from shared.config import reset_settings
from shared.errors import InvalidInput
from tests.synth import synth_song

SOURCES = ["drums", "bass", "other", "vocals"]
# The DSP masks sum to one in every time-frequency bin; what is left is the STFT's
# reconstruction error and 24-bit quantisation: the stems add up to the mix within -60 dB.
SUM_TOLERANCE_DB = -60.0


def tiny_htdemucs(segment_s: float = 2.0):
    """A real HTDemucs (demucs' own class) small enough to run in a test, random weights."""
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # demucs' init warns about its zero-size conv weights
        model = HTDemucs(
            sources=SOURCES,
            channels=8,
            depth=4,
            t_layers=1,
            t_heads=2,
            t_hidden_scale=1.0,
            segment=segment_s,
            dconv_depth=1,
            dconv_comp=4,
        )
    return model.eval()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Torch's intra-op threads spin against each other on a shared two-core machine (10x
    slower); the tiny model needs none of them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> tuple[Path, dict]:
    audio, truth = synth_song(bpm=110, key="C major", duration_s=6.0, vocals=True, seed=3)
    path = tmp_path_factory.mktemp("stems") / "song.wav"
    save_audio(path, audio, "wav", bit_depth=24)
    return path, truth


def _relative_error_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    err = np.sqrt(np.mean((estimate - reference) ** 2))
    return float(20 * np.log10(err / np.sqrt(np.mean(reference**2))))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return abs(float(np.corrcoef(a[:n], b[:n])[0, 1]))


def test_dsp_stems_sum_back_to_the_mix_and_find_drums_and_bass(song, tmp_path):
    path, truth = song
    result = separate_file(path, tmp_path, separator=DspSeparator(), bit_depth=24)
    assert result.engine == "dsp" and sorted(result.files) == sorted(SOURCES)
    stems = {k: load_audio(p).samples for k, p in result.files.items()}
    mix = load_audio(path).samples
    assert _relative_error_db(sum(stems.values()), mix) < SUM_TOLERANCE_DB
    # Each stem resembles its own instrument more than the others (synth ground truth).
    for stem, truth_name in (("drums", "drums"), ("bass", "bass")):
        mono = stems[stem].mean(axis=0)
        scores = {k: _corr(mono, v) for k, v in truth["stems"].items()}
        assert max(scores, key=scores.get) == truth_name, (stem, scores)


def test_blocks_are_crossfaded_so_long_input_still_sums_to_the_mix(song, tmp_path):
    path, _ = song
    sep = DspSeparator(block_s=2.0, context_s=0.5)  # 6 s of audio: three blocks, two seams
    result = separate_file(
        path, tmp_path, separator=sep, bit_depth=24, stems=["vocals", "no_vocals"]
    )
    assert result.meta["blocks"] == 3
    mix = load_audio(path).samples
    total = (
        load_audio(result.files["vocals"]).samples + load_audio(result.files["no_vocals"]).samples
    )
    assert total.shape == mix.shape
    assert _relative_error_db(total, mix) < SUM_TOLERANCE_DB


def test_block_plan_owns_every_frame_once():
    frames, hop, context = 1000, 300, 20
    plan = _block_plan(frames, hop, context)
    assert len(plan) == 3  # the last block owns the 400-frame remainder
    assert plan[0][0] == 0 and plan[-1][1] == plan[-1][2] == frames
    # A block writes up to its keep point and holds back a 2*context tail; the next block
    # starts exactly there, so that tail is the crossfade region and no frame is lost.
    for (_, end, keep), (next_start, _, _) in zip(plan, plan[1:], strict=False):
        assert end - keep == 2 * context and next_start == keep


def test_demucs_path_matches_apply_model_and_reports_progress(song, tmp_path):
    from demucs.apply import apply_model

    path, _ = song
    model = tiny_htdemucs()
    progress: list[float] = []
    sep = DemucsSeparator(model=model, device="cpu")
    result = separate_file(path, tmp_path, separator=sep, bit_depth=24, progress=progress.append)
    assert result.engine == "demucs" and result.meta["blocks"] == 1
    # Same model, same parameters, called directly on the normalised mix as demucs.api does.
    mix = load_audio(path).samples
    ref = mix.mean(axis=0)
    x = torch.from_numpy((mix - ref.mean()) / ref.std())[None]
    direct = (
        apply_model(model, x, shifts=0, split=True, overlap=0.25)[0].numpy() * ref.std()
        + ref.mean()
    )
    for k, name in enumerate(SOURCES):
        ours = load_audio(result.files[name]).samples
        assert ours.shape == mix.shape
        assert np.max(np.abs(ours - np.clip(direct[k], -1, 1))) < 1e-4, name
    # Demucs' per-segment callback became a rising fraction that ends at 1.
    assert (
        len(progress) >= 3 and progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
    )


def test_demucs_keeps_the_input_rate_and_channels_and_writes_mp3(tmp_path):
    audio, _ = synth_song(bpm=100, key="A minor", duration_s=3.0, sr=22050, stereo=False)
    path = tmp_path / "mono22k.flac"
    save_audio(path, audio, "flac")
    sep = DemucsSeparator(model=tiny_htdemucs(), device="cpu", block_s=1.0, context_s=0.25)
    result = separate_file(path, tmp_path / "out", separator=sep, stems=["vocals", "no_vocals"])
    for name in ("vocals", "no_vocals"):
        info = sf.info(str(result.files[name]))
        assert (info.samplerate, info.channels) == (22050, 1)
        assert abs(info.frames - audio.samples.shape[1]) <= 1
    mp3 = separate_file(path, tmp_path / "mp3", separator=sep, stems=["drums"], output_format="mp3")
    assert sf.info(str(mp3.files["drums"])).format == "MP3"


def test_bad_stem_choices_are_typed_errors(song, tmp_path):
    path, _ = song
    for stems, fragment in (
        (["vocals", "vocals"], "once"),
        (["kazoo"], "Unknown stem"),
        ([], "at least"),
    ):
        with pytest.raises(InvalidInput, match=fragment) as err:
            separate_file(path, tmp_path, separator=DspSeparator(), stems=stems)
        assert err.value.code == "BAD_STEMS"


def _tiny_remote(tmp_path: Path) -> Path:
    """A demucs model repository laid out like demucs' published one: files.txt, a bag yaml and
    checksummed model packages (klass/args/kwargs/state), served from a file:// URL."""
    from demucs.states import get_state

    remote = tmp_path / "remote"
    (remote / "models").mkdir(parents=True)
    model = tiny_htdemucs()
    args, kwargs = model._init_args_kwargs
    package = {
        "klass": type(model),
        "args": args,
        "kwargs": kwargs,
        "state": get_state(model, None, half=False),
    }
    raw = remote / "models" / "tmp.th"
    torch.save(package, raw)
    import hashlib

    checksum = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    raw.rename(remote / "models" / f"abcd1234-{checksum}.th")
    (remote / "files.txt").write_text(f"root: models/\nabcd1234-{checksum}.th\n")
    (remote / "tiny.yaml").write_text("models: ['abcd1234']\n")
    return remote


def test_weights_are_fetched_once_found_and_loaded_through_demucs(tmp_path, monkeypatch, song):
    import demucs.pretrained

    from functions import demucs_engine

    remote = _tiny_remote(tmp_path)
    monkeypatch.setattr(demucs.pretrained, "ROOT_URL", f"file://{remote}/")
    monkeypatch.setattr(demucs_engine, "_remote_root", lambda: remote)
    weights_dir = tmp_path / "weights"
    assert find_demucs_weights("tiny", weights_dir) is None
    written = download_demucs_weights(weights_dir, ("tiny",))
    assert [p.name for p in written] == [p.name for p in (remote / "models").iterdir()]
    found = find_demucs_weights("tiny", weights_dir)
    assert found is not None and found.source == "repo"
    model = load_demucs_model(found)
    assert list(model.sources) == SOURCES
    sep = DemucsSeparator("tiny", weights_dir=weights_dir, device="cpu").load()
    out = separate_file(song[0], tmp_path / "out", separator=sep, stems=["vocals"])
    assert out.engine == "demucs" and out.model == "tiny" and out.files["vocals"].exists()


@pytest.fixture
def engine_env(monkeypatch):
    """Set SOUNDSTAGE_STEMS_ENGINE for one test (and forget cached settings on both sides)."""

    def use(engine: str) -> None:
        monkeypatch.setenv("SOUNDSTAGE_STEMS_ENGINE", engine)
        reset_settings()

    yield use
    monkeypatch.delenv("SOUNDSTAGE_STEMS_ENGINE", raising=False)
    reset_settings()


def test_stems_kind_streams_demucs_progress_into_job_events(
    song, run_pipeline, engine_env, monkeypatch
):
    engine_env("demucs")
    monkeypatch.setitem(
        stems_mod._SEPARATORS, ("demucs", "htdemucs"), DemucsSeparator(model=tiny_htdemucs())
    )
    run = run_pipeline(
        "stems",
        [song[0]],
        {"stems": ["vocals", "no_vocals"], "output_format": "flac", "bit_depth": 24},
        every_progress=True,
    )
    assert run.result["engine"] == "demucs" and run.stages[0]["engine"] == "demucs:htdemucs"
    assert sorted(run.outputs) == ["no_vocals", "vocals"]
    assert sf.info(str(run.outputs["vocals"])).subtype == "PCM_24"
    percents = [
        d["progress"]
        for t, d in run.events
        if t == "progress" and d.get("stage") == "separating_stems"
    ]
    assert len(percents) >= 3 and percents == sorted(percents)


def test_same_track_split_twice_costs_one_separation(song, run_pipeline, engine_env, monkeypatch):
    from functions.pipelines import stems as stems_kind

    engine_env("dsp")
    calls = []
    monkeypatch.setattr(
        stems_kind, "separate_track", lambda **kw: calls.append(1) or separate_track(**kw)
    )
    params = {"stems": ["drums", "bass"], "output_format": "wav"}
    # One user's two jobs: the second finds the first's stems in the cache and storage.
    run1, run2 = (run_pipeline("stems", [song[0]], params) for _ in range(2))
    assert len(calls) == 1
    first, second = run1.result, run2.result
    assert first["cached"] is False and second["cached"] is True
    assert second["engine"] == "dsp" and sorted(run2.outputs) == ["bass", "drums"]
    assert run2.outputs["drums"].read_bytes() == run1.outputs["drums"].read_bytes()
    # Other params are another cache entry: a third job with two-stem output separates again.
    run3 = run_pipeline("stems", [song[0]], {"stems": ["vocals", "no_vocals"]})
    assert run3.result["cached"] is False and len(calls) == 2


def test_separate_track_is_a_plain_bytes_stage(song, engine_env):
    engine_env("dsp")
    out = separate_track(
        audio=song[0].read_bytes(), filename="song.wav", stems=["other"], output_format="flac"
    )
    assert out["engine"] == "dsp" and out["content_type"] == "audio/flac"
    assert set(out["stems"]) == {"other"} and out["stems"]["other"][:4] == b"fLaC"
    assert out["sample_rate"] == 44100
