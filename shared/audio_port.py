"""The audio operations the infrastructure needs, as an interface the composers fill in.

Uploads are sniffed and checked, library files probed, and project commits measured for
loudness; the code that does it lives in ``functions`` (``functions.audio_tools.AUDIO_TOOLS``),
which ``shared`` never imports. Whoever composes a process hands it to ``open_services(audio=...)``
next to the kinds; the rest reads it from ``services.audio``.

Offers:
- ``AudioTools``: sniff a format, probe a header, inspect a whole file, name a format's content
  type, measure a file's loudness and the loudness of the difference between two files.
- ``FileLoudness`` / ``LoudnessDifference``: what the two measurements return.
- ``NoAudioTools``: what a process composed without audio tools holds; every call says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Protocol


class FileLoudness(NamedTuple):
    loudness_lufs: float  # -inf for silence
    duration_s: float


class LoudnessDifference(NamedTuple):
    """How loud ``b - a`` is (decoded at a's rate, channels matched, aligned from the start);
    -inf where the difference is silent."""

    loudness_lufs: float
    rms_dbfs: float


class AudioTools(Protocol):
    def sniff_format(self, path: Path) -> str | None:
        """``wav|flac|mp3|ogg|m4a`` from the file's first bytes, or None."""
        ...

    def probe(self, path: Path) -> dict[str, Any]:
        """format, sample_rate, channels, duration_s from the file's header (no full decode);
        raises InvalidAudio when it cannot be read as audio."""
        ...

    def inspect_audio(self, path: Path) -> dict[str, Any]:
        """Decode the whole file (bounded memory) and describe it: format, sample_rate,
        channels, duration_s, peak_dbfs, rms_dbfs. Raises InvalidAudio for an empty, truncated,
        undecodable, unsupported or silent file."""
        ...

    def content_type(self, fmt: str) -> str | None:
        """The content type a file of format ``fmt`` is stored with, or None."""
        ...

    def file_loudness(self, path: Path) -> FileLoudness:
        """Integrated loudness (BS.1770) and duration of an audio file."""
        ...

    def difference_loudness(self, a: Path, b: Path) -> LoudnessDifference:
        """How loud what changed from ``a`` to ``b`` is; raises when either is unreadable."""
        ...


class NoAudioTools:
    """Stands in where a process was composed without audio tools: any use says so."""

    def _missing(self, *args: object) -> Any:
        raise RuntimeError(
            "This process was composed without audio tools; pass "
            "open_services(audio=functions.audio_tools.AUDIO_TOOLS)."
        )

    sniff_format = probe = inspect_audio = content_type = _missing
    file_loudness = difference_loudness = _missing
