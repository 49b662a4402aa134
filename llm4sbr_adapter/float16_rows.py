"""Intent rows that a cast to a narrower float type would turn into zero rows (:func:`refuse_vanished_rows`).

float16 keeps magnitudes down to about 6e-8; a row whose every value is smaller becomes all zeros, which
training reads as "no intent" (and the enhancer swaps for its learned substitute): a silent change of
meaning. Such rows are refused before the store is written, with their count and the first session id.
"""

from __future__ import annotations

import numpy as np

from .errors import Llm4sbrError

__all__ = ["VanishedRowsError", "refuse_vanished_rows"]


class VanishedRowsError(Llm4sbrError, ValueError):
    """Non-zero rows that become all zeros in the store's dtype."""


def refuse_vanished_rows(what: str, before: np.ndarray, after: np.ndarray, ids: np.ndarray, dtype: str) -> None:
    """Raise when a row of ``before`` has a non-zero value but its cast ``after`` is all zeros."""
    if before.size == 0 or before.dtype == after.dtype:
        return
    vanished = np.flatnonzero(np.any(before != 0, axis=-1) & ~np.any(after != 0, axis=-1))
    if vanished.size:
        first = int(vanished[0])
        raise VanishedRowsError(
            f"{what}: {vanished.size} non-zero row(s) underflow to all zeros as {dtype} (first: row {first}, "
            f"session id {ids[first].item()!r}, largest magnitude {float(np.abs(before[first]).max()):.3g}); "
            "write the store as float32 or L2-normalise the vectors first"
        )
