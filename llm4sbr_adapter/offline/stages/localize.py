"""Stage ``localize``: snap every query to its top-f catalogue items (:class:`ItemLocalizer`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import BuildConfig
from ..inputs.sessions import Catalogue, SessionSet
from ..localize import ItemLocalizer

__all__ = ["LocalizedIntents", "localize_intents"]


@dataclass
class LocalizedIntents:
    """Per perspective: intent vectors ``[n, D]``, top-f catalogue rows ``int64 [n, f]`` and weights ``[n, f]``."""

    intents: dict[str, np.ndarray]
    top_items: dict[str, np.ndarray]
    top_weights: dict[str, np.ndarray]
    zero_intents: int = 0  # queries that were all zeros: zero intent, top_items -1


def own_rows(sessions: SessionSet, catalogue: Catalogue, config: BuildConfig) -> list[list[int]] | None:
    """Each session's catalogue rows when ``config.exclude_session_items`` keeps them out of its top f."""
    if not config.exclude_session_items:
        return None
    return [[r for r in (catalogue.row(item) for item in seq) if r is not None] for seq in sessions.sequences]


def localize_intents(
    queries: dict[str, np.ndarray],
    item_emb: np.ndarray,
    config: BuildConfig,
    exclude: Sequence[Sequence[int]] | None = None,
) -> LocalizedIntents:
    """Snap every query to the catalogue (:class:`ItemLocalizer`: top-f by cosine, softmax-weighted sum);
    ``exclude`` (per session, catalogue rows) keeps those items out of a session's top f."""
    localizer = ItemLocalizer(item_emb, index=config.index)
    out = LocalizedIntents({}, {}, {})
    for name, q in queries.items():
        n = len(q)
        vecs, idx, w = localizer.localize(
            np.ascontiguousarray(q), config.top_f, config.softmax_temperature, exclude=exclude
        )
        vecs = np.array(vecs, dtype=np.float32)
        idx = np.array(idx, dtype=np.int64).reshape(n, -1)
        w = np.array(w, dtype=np.float32).reshape(n, -1)
        zero = ~np.any(q != 0, axis=1)
        vecs[zero], idx[zero], w[zero] = 0, -1, 0
        out.zero_intents += int(zero.sum())
        out.intents[name], out.top_items[name], out.top_weights[name] = vecs, idx, w
    return out
