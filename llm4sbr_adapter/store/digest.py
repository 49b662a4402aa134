"""The sha256 of every per-session array of a store: what a rebuild (e.g. from replayed answers) must reproduce.

Metadata is left out (the creation time and the LLM's name differ between an original build and a replay
of its answers); the arrays (intents, top items and weights, cleaned and raw answers, session ids) are not.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from .reader import IntentStore

__all__ = ["array_digests"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def array_digests(path: str | os.PathLike) -> dict[str, str]:
    """``{array name: sha256 of its bytes}`` of one store, sorted by name (answers joined by NUL)."""
    arrays = IntentStore.open(path).to_arrays()
    out = {"session_ids": _sha(np.ascontiguousarray(arrays["session_ids"]).tobytes())}
    for group in ("intents", "top_items", "top_weights"):
        for name, value in arrays[group].items():
            out[f"{group}.{name}"] = _sha(np.ascontiguousarray(value).tobytes())
    for group in ("answers", "raw_answers"):
        for name, texts in arrays[group].items():
            out[f"{group}.{name}"] = _sha("\x00".join(texts).encode("utf-8"))
    return dict(sorted(out.items()))
