"""The per-kind commands are generated from the kind registry: every params field is a flag in
``soundstage <kind> --help``, choices and ranges are checked before a job is sent, and log
lines stay out of the terminal unless ``--verbose``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from functions.pipelines import KINDS
from shared.registry import CliFlag, JobKind
from tests import platform_kinds

ROOT = Path(__file__).resolve().parent.parent


def _flag(name: str, field) -> str:
    hint = next((m for m in field.metadata if isinstance(m, CliFlag)), CliFlag())
    return "--" + (hint.name or name).replace("_", "-")


def _expected_flags(kind: JobKind) -> dict[str, list[str]]:
    """Each params field -> the flags that must set it (a per-file list: one per setting)."""
    out: dict[str, list[str]] = {}
    for name, field in kind.params.model_fields.items():
        hint = next((m for m in field.metadata if isinstance(m, CliFlag)), CliFlag())
        if hint.per_file:
            (model,) = [a for a in field.annotation.__args__]
            out[name] = [_flag(n, f) for n, f in model.model_fields.items()]
        else:
            out[name] = [_flag(name, field)]
    return out


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("kind", list(KINDS), ids=lambda k: k.name)
def test_every_params_field_is_a_flag_of_its_command(kind, capsys):
    text = _help(capsys, kind.name)
    for field, flags in _expected_flags(kind).items():
        for flag in flags:
            assert f"{flag} " in text or f"{flag}\n" in text, f"{kind.name}: {field} has no {flag}"


def test_a_kind_added_to_the_registry_gets_a_command_with_no_cli_code(capsys):
    with pytest.raises(SystemExit):
        main(["test_sleep", "--help"], kinds=KINDS.plus(platform_kinds.KIND))
    text = capsys.readouterr().out
    assert "--seconds" in text and "--fail-code" in text and "(>= 0 and <= 60)" in text


def test_choices_and_ranges_are_checked_before_anything_is_sent(capsys):
    cases = [
        (["master", "x.wav", "--preset", "loud"], "'loud' is not one of streaming, cd, club"),
        (["master", "x.wav", "--target-lufs", "5"], "5 is out of range: must be >= -24 and <= -6"),
        (["convert", "x.wav", "--bit-depth", "20"], "'20' is not one of 16, 24"),
        (["mix", "a.wav", "b.wav", "--gains=1,x"], "expected a number, got 'x'"),
        (["mix", "a.wav", "b.wav", "--pans", "0,2"], "2 is out of range: must be >= -1 and <= 1"),
        (["stems", "x.wav", "--stems", "vocals,kazoo"], "'kazoo' is not one of vocals"),
    ]
    for argv, said in cases:
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2, argv
        assert said in capsys.readouterr().err, argv


def test_flags_become_the_kinds_params():
    from cli.param_flags import ParamFlags

    mix = KINDS.get("mix")
    flags = ParamFlags(mix.params)
    import argparse

    parser = argparse.ArgumentParser()
    flags.add_to(parser)
    args = parser.parse_args(["--gains=-3,0", "--mute", "1", "--profile", "warm"])
    assert flags.values(args, n_files=2) == {
        "profile": "warm",
        "tracks": [{"gain_db": -3.0}, {"gain_db": 0.0, "mute": True}],
    }
    stems = ParamFlags(KINDS.get("stems").params)
    parser = argparse.ArgumentParser()
    stems.add_to(parser)
    args = parser.parse_args(["--stems", "vocals,drums", "--stems", "bass", "--format", "flac"])
    assert stems.values(args, n_files=1) == {
        "stems": ["vocals", "drums", "bass"],
        "output_format": "flac",
    }


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SOUNDSTAGE_DATA_DIR": str(home / "data"),
        "SOUNDSTAGE_CONFIG_DIR": str(home / "config"),
        "SOUNDSTAGE_LOG_LEVEL": "INFO",  # so a job does log; the question is where
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _log_lines(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        try:
            if "level" in json.loads(line):
                lines.append(line)
        except (ValueError, TypeError):
            continue
    return lines


def test_log_lines_stay_out_of_the_terminal_unless_verbose(tmp_path, song_wav):
    quiet = _cli(tmp_path, "analyze", str(song_wav))
    assert quiet.returncode == 0, quiet.stderr
    assert "BPM" in quiet.stderr  # the summary still prints
    assert _log_lines(quiet.stdout + quiet.stderr) == []
    assert _log_lines((tmp_path / "data" / "cli.log").read_text())  # kept, not lost
    loud = _cli(tmp_path, "analyze", str(song_wav), "--verbose", "--quiet")
    assert loud.returncode == 0, loud.stderr
    assert any('"job created"' in line for line in _log_lines(loud.stderr))
