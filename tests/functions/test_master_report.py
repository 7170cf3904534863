"""The master's chain report against what the master did, measured on its output: the gain it
says it applied, and the true-peak stage's reduction. (What the report holds and how it is
rounded: ``test_master_stages.test_the_chain_report_says_what_the_master_did``.)"""

from __future__ import annotations

import numpy as np
import pytest

from functions import master
from functions.audio_io import Audio
from tests.functions.peak_meters import resampled_peak_dbtp
from tests.functions.test_master_stages import _peaky, _tone_level_db


@pytest.mark.parametrize("preset", ["streaming", "club"])
def test_the_reported_gain_is_the_gain_applied(preset):
    # A steady 775 Hz tone at -50 dBFS mastered to -24 LUFS: about 30 dB of gain, and nothing
    # else acts on it: its peaks stay 20 dB under the limiter and the soft clipper, under the
    # glue compressor's threshold, and 775 Hz lies midway (in octaves) between the 150 Hz and
    # 4 kHz shelves, whose equal and opposite gains cancel there. The tone's level rises by the
    # gain the report gives.
    sr, freq = 44100, 775.0
    t = np.arange(4 * sr)
    x = (10 ** (-50 / 20) * np.sin(2 * np.pi * freq * t / sr)).astype(np.float32)[None, :]
    out = master.master_to_target(Audio(x, sr), -24.0, preset=preset)
    applied = _tone_level_db(out.audio.samples[0], sr, freq, sr, size=sr) - (-50.0)
    assert applied == pytest.approx(29.5, abs=1.0)  # the case this test is for
    assert out.chain["gain_db"] == pytest.approx(applied, abs=0.05)


def test_the_reported_true_peak_reduction_is_the_one_applied(monkeypatch):
    # Bursts near a quarter of the sample rate, mastered loud on the sample-peak limiter
    # (streaming): their inter-sample peaks pass it, and the true-peak stage takes them down.
    # The report gives the reduction, to the hundredth of a dB, that a long-filter meter reads
    # between the limiter's output (caught on its way into the stage) and the master.
    caught = []
    stage = master.hold_true_peak

    def catch(samples, *args, **kwargs):
        caught.append(samples.copy())
        return stage(samples, *args, **kwargs)

    monkeypatch.setattr(master, "hold_true_peak", catch)
    sr = 48000
    out = master.master_to_target(
        Audio(_peaky(sr) * np.float32(0.1), sr), -10.0, preset="streaming"
    )
    before = resampled_peak_dbtp(Audio(caught[-1], sr), factor=16)
    after = resampled_peak_dbtp(out.audio, factor=16)
    reported = out.chain["true_peak_safety_reduction_db"]
    assert before - after > 1.0  # the case this test is for
    assert reported == pytest.approx(before - after, abs=0.006)
    assert reported == round(reported, 2)
