"""Item-to-item baselines scored from the prefix's last click: first-order transitions and sequential rules.

* ``markov`` (:class:`ItemTransitions`): ``score(i) = #(last directly followed by i)`` in the training sessions.
* ``sr`` (:class:`SequentialRules`, Ludewig & Jannach 2018): every pair ``s_a`` at position ``a``, ``s_b`` at
  ``b > a`` with ``b - a <= steps`` in a training session adds ``1 / (b - a)`` to ``w(s_a, s_b)``;
  ``score(i) = w(last, i)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .base import Baseline
from .sparse import sp


def transition_matrix(
    items: np.ndarray, owner: np.ndarray, num_items: int, steps: int, weight: Callable[[int], float]
) -> sp.csr_matrix:
    """``csr [N, N]``: ``T[a-1, b-1] = sum weight(d)`` over pairs ``a`` then ``b`` ``d <= steps`` clicks later in one
    session."""
    src, dst, w = [], [], []
    for d in range(1, steps + 1):  # one vectorised pass per distance
        same = owner[:-d] == owner[d:]
        src.append(items[:-d][same] - 1)
        dst.append(items[d:][same] - 1)
        w.append(np.full(int(same.sum()), weight(d)))
    coo = sp.coo_matrix((np.concatenate(w), (np.concatenate(src), np.concatenate(dst))), shape=(num_items, num_items))
    return coo.tocsr()  # duplicates are summed


def last_items(prefixes: Sequence[np.ndarray]) -> np.ndarray:
    """``int64 [B]`` the last item of each prefix."""
    return np.fromiter((p[-1] for p in prefixes), dtype=np.int64, count=len(prefixes))


class SequentialRules(Baseline):
    """SR: ``w(a, b) = sum 1 / d`` over ``b`` following ``a`` ``d <= steps`` clicks later; scores from the last item."""

    def __init__(self, steps: int = 10, exclude_seen: bool = False) -> None:
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps, self.exclude_seen = steps, exclude_seen
        self.params = {"steps": steps}

    def _weight(self, d: int) -> float:
        return 1.0 / d

    def _fit(self, items: np.ndarray, owner: np.ndarray) -> None:
        self.rules = transition_matrix(items, owner, self.num_items, self.steps, self._weight)

    def raw_scores(self, prefixes: Sequence[np.ndarray], times: np.ndarray | None = None) -> sp.csr_matrix:
        return self.rules[last_items(prefixes) - 1]


class ItemTransitions(SequentialRules):
    """First-order Markov chain: counts of ``a`` directly followed by ``b``; scores from the last item."""

    def __init__(self, exclude_seen: bool = False) -> None:
        super().__init__(steps=1, exclude_seen=exclude_seen)
        self.params = {}

    def _weight(self, d: int) -> float:
        return 1.0
