"""``soundstage video FILE --prompt TEXT -o OUT.mp4`` through the real entry point, locally."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from functions.audio_io import save_audio
from functions.video.compose import probe_video
from tests.synth import synth_song

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "Paper lanterns rising over a dark lake, a girl on a wooden pier watching them drift."


def test_video_command_saves_the_mp4(tmp_path):
    audio, _ = synth_song(bpm=100, key="C major", duration_s=14.0, seed=4)
    song = save_audio(tmp_path / "song.wav", audio)
    out = tmp_path / "clip" / "video.mp4"
    env = {
        **os.environ,
        "SOUNDSTAGE_DATA_DIR": str(tmp_path / "data"),
        "SOUNDSTAGE_CONFIG_DIR": str(tmp_path / "config"),
        "SOUNDSTAGE_LOG_LEVEL": "WARNING",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "video",
            str(song),
            "--prompt",
            PROMPT,
            "-o",
            str(out),
            "--local-engines",
            "--preset",
            "ultrafast",
            "--max-clips",
            "3",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    info = probe_video(out)
    assert (info.width, info.height, info.fps) == (1920, 1080, 30.0)
    assert abs(info.duration_s - 14.0) <= 0.1
    text = run.stdout + run.stderr
    assert "3 shots generated" in text and "cuts on the beat" in text
    for stage in ("audio_analysis", "scene_planning", "video_generation", "composition"):
        assert stage in text  # one progress bar per stage

    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "video",
            str(song),
            "--prompt",
            "too short",
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "BAD_PROMPT" in bad.stdout + bad.stderr
