"""Text and JSON a user sends, checked before it reaches Postgres or a JSON encoder.

Postgres ``text``/``jsonb`` cannot hold NUL, UTF-8 cannot hold a lone surrogate (``\\ud800``)
and a JSON document nested thousands deep exhausts Python's recursion: each of these used to
surface as a 500. ``clean_text`` and ``check_json`` turn them into a typed 4xx instead.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator

from shared.errors import InvalidInput

MAX_JSON_DEPTH = 32
MAX_JSON_ITEMS = 10_000


def bad_text_reason(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def clean_text(value: str, field: str) -> str:
    """Return ``value`` or raise InvalidInput(code=INVALID_TEXT) naming ``field``."""
    reason = bad_text_reason(value)
    if reason:
        raise InvalidInput(f"'{field}' {reason}.", code="INVALID_TEXT")
    return value


def _pydantic_text(value: str) -> str:
    reason = bad_text_reason(value)
    if reason:
        raise ValueError(reason)
    return value


# A str that pydantic models (request bodies, query params) refuse with a 422 when it holds
# NUL or a lone surrogate.
SafeStr = Annotated[str, AfterValidator(_pydantic_text)]


def printable_name(name: str) -> str:
    """A client-supplied filename as we show and store it: no control characters or surrogates."""
    kept = "".join(c for c in name if c.isprintable() and bad_text_reason(c) is None)
    return kept[:255]


def check_json(value: Any, field: str = "params") -> Any:
    """Walk ``value`` (iteratively: depth itself is what we guard) and refuse NUL, lone
    surrogates, nesting deeper than MAX_JSON_DEPTH and more than MAX_JSON_ITEMS values."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(
                f"'{field}' is nested deeper than {MAX_JSON_DEPTH} levels.", code="PARAMS_TOO_DEEP"
            )
        if seen > MAX_JSON_ITEMS:
            raise InvalidInput(
                f"'{field}' has more than {MAX_JSON_ITEMS} values.", code="PARAMS_TOO_LARGE"
            )
        if isinstance(item, str):
            clean_text(item, field)
        elif isinstance(item, dict):
            for k, v in item.items():
                clean_text(str(k), field)
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


def loads_json(text: str, field: str = "params") -> Any:
    """``json.loads`` that answers deep nesting with a 400 instead of a RecursionError."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidInput(
            f"'{field}' is nested deeper than {MAX_JSON_DEPTH} levels.", code="PARAMS_TOO_DEEP"
        ) from None
    return check_json(value, field)
