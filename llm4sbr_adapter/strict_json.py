"""Strict JSON: one reader for every JSON text the package reads (store headers, configs, replay files, ...).

Python's :func:`json.loads` keeps the last of two equal keys and accepts ``NaN`` and ``Infinity``; two
readers of one file can then disagree on what it says. :func:`loads` refuses both, as the safetensors
library does for its headers, with a :class:`json.JSONDecodeError` (so callers' existing handling of bad
JSON names the file and line) whose message names the key or the constant.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import Llm4sbrError

__all__ = ["loads"]


class _Refused(Llm4sbrError):
    """Raised inside the decoder's hooks; turned into a JSONDecodeError with a position by :func:`loads`."""

    def __init__(self, message: str, token: str) -> None:
        super().__init__(message)
        self.message, self.token = message, token


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key!r}", json.dumps(key))
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number", name)


def _position(doc: str, token: str, occurrence: int) -> int:
    """Offset of the ``occurrence``-th appearance of ``token`` as a key or value (0 when not found)."""
    pattern = re.escape(token) + (r"\s*:" if token.startswith('"') else "")
    found = [m.start() for m in re.finditer(pattern, doc)]
    return found[min(occurrence, len(found)) - 1] if found else 0


def loads(text: str | bytes, *, allow_nan: bool = False) -> Any:
    """:func:`json.loads` refusing duplicate object keys and (unless ``allow_nan``) ``NaN``/``Infinity``.

    Raises :class:`json.JSONDecodeError` for those as for any other bad JSON (``UnicodeDecodeError`` for
    bytes that are not UTF-8).
    """
    doc = text.decode("utf-8") if isinstance(text, bytes) else text
    try:
        if allow_nan:
            return json.loads(doc, object_pairs_hook=_unique_object)
        return json.loads(doc, object_pairs_hook=_unique_object, parse_constant=_no_constant)
    except _Refused as refused:
        # a duplicate is the key's second appearance; a constant its first
        occurrence = 2 if refused.token.startswith('"') else 1
        raise json.JSONDecodeError(refused.message, doc, _position(doc, refused.token, occurrence)) from None
