"""What every baseline shares: fitting on training sessions, tie-breaking by popularity, ranking the prefix last.

A model gives a non-negative score per item and prefix (:meth:`Baseline.raw_scores`); :meth:`Baseline.scores`
orders items by that score and then by training popularity (:func:`popularity_tie_break`, exact, no
epsilon), so items without a score are ordered by popularity instead of all sharing the last rank
under the pessimistic tie rule of :mod:`llm4sbr_adapter.experiments.metrics`. A target never seen in
training has popularity 0 and score 0, so it ranks (pessimistically) last. With ``exclude_seen`` the
prefix's own items get score -1, below all others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .sessions import flatten
from .sparse import sp


def popularity_tie_break(raw: sp.csr_matrix, pop: np.ndarray) -> np.ndarray:
    """``float64 [B, N]`` that orders each row by ``raw`` (non-negative) and then by ``pop``, exactly.

    Value = ``dense_rank_of_raw_in_row * R + dense_rank_of_pop`` (``R`` distinct popularities; rank 0 for
    ``raw == 0``). Both factors are below ``N + 1``, so the value is an exact integer in float64 and
    ties remain only where both score and popularity tie.
    """
    levels, pop_rank = np.unique(pop, return_inverse=True)
    raw = sp.csr_matrix(raw)
    raw.sum_duplicates()
    coo = raw.tocoo()
    keep = coo.data > 0
    r, c, v = coo.row[keep], coo.col[keep], coo.data[keep]
    order = np.lexsort((v, r))
    r, c, v = r[order], c[order], v[order]
    new_value = np.ones(len(r), dtype=bool)
    new_value[1:] = (r[1:] != r[:-1]) | (v[1:] != v[:-1])
    group = np.cumsum(new_value)
    row_start = np.ones(len(r), dtype=bool)
    row_start[1:] = r[1:] != r[:-1]
    dense = group - np.maximum.accumulate(np.where(row_start, group - 1, 0))  # 1.. within each row
    out = np.tile(pop_rank.astype(np.float64), (raw.shape[0], 1))
    out[r, c] += dense * float(len(levels))
    return out


def rank_prefix_items_last(scores: np.ndarray, prefixes: Sequence[np.ndarray]) -> np.ndarray:
    """Set the scores of each prefix's own items to -1, below every other item (in place; returns ``scores``)."""
    items, owner = flatten(prefixes)
    scores[owner, items - 1] = -1.0
    return scores


class Baseline:
    """Shared parts: ``fit`` keeps the catalogue size, the training popularity and the session times.

    Subclasses set ``params`` (their constructor's keyword arguments) and implement ``_fit(items, owner)``
    and ``raw_scores(prefixes, times) -> csr [B, N]``.
    """

    params: dict
    exclude_seen: bool = False

    def settings(self) -> dict:
        """All hyperparameters: ``params`` and ``exclude_seen`` (``MODELS[name](**settings())`` rebuilds the model)."""
        return {**self.params, "exclude_seen": self.exclude_seen}

    def fit(self, sessions: Sequence[np.ndarray], num_items: int, times: np.ndarray | None = None) -> Baseline:
        """Fit on the training sessions (item ids ``1..num_items``); ``times`` float [S] orders them (default:
        their order). Returns ``self``."""
        self.num_items = num_items
        items, owner = flatten(sessions)
        self.pop = np.bincount(items - 1, minlength=num_items).astype(np.float64)
        self.num_sessions = len(sessions)
        if times is not None and len(times) != len(sessions):
            raise ValueError(f"{len(times)} session times for {len(sessions)} sessions")
        self.times = np.asarray(times, dtype=np.float64) if times is not None else None
        self._fit(items, owner)
        return self

    def _fit(self, items: np.ndarray, owner: np.ndarray) -> None:
        raise NotImplementedError

    def raw_scores(self, prefixes: Sequence[np.ndarray], times: np.ndarray | None = None) -> sp.csr_matrix:
        """``csr float64 [B, num_items]``: the model's own scores (column ``j`` = item ``j + 1``); ``times``
        float [B] are the prefixes' times (used by STAN's session recency only)."""
        raise NotImplementedError

    def scores(self, prefixes: Sequence[np.ndarray], times: np.ndarray | None = None) -> np.ndarray:
        """``float64 [B, num_items]`` ranking scores: :meth:`raw_scores`, ties broken by popularity."""
        out = popularity_tie_break(self.raw_scores(prefixes, times), self.pop)
        return rank_prefix_items_last(out, prefixes) if self.exclude_seen else out


class Popularity(Baseline):
    """``pop``: training click counts (inputs and targets); the same list for every prefix."""

    def __init__(self, exclude_seen: bool = False) -> None:
        self.params, self.exclude_seen = {}, exclude_seen

    def _fit(self, items: np.ndarray, owner: np.ndarray) -> None:
        pass

    def raw_scores(self, prefixes: Sequence[np.ndarray], times: np.ndarray | None = None) -> sp.csr_matrix:
        return sp.csr_matrix((len(prefixes), self.num_items), dtype=np.float64)
