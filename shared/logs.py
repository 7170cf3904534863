"""Structured logs: one JSON object per line, with job_id / stage / duration_s / cost_usd when set.

Secrets never reach the log: known secret-bearing keys are dropped and bearer tokens or JWTs
inside messages are masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

CONTEXT_KEYS = (
    "job_id",
    "kind",
    "stage",
    "engine",
    "duration_s",
    "cost_usd",
    "user_id",
    "worker",
    "status",
    "path",
    "method",
    "status_code",
)
_TOKEN_RE = re.compile(
    r"(Bearer\s+)[A-Za-z0-9._~+/=-]+|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
)


def redact(text: str) -> str:
    return _TOKEN_RE.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage())
            if not getattr(record, "recovery", False)
            else record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


_configured = False


def setup_logging(level: str = "INFO") -> None:
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("soundstage")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    _configured = True
