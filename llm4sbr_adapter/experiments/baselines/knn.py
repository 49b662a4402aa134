"""SKNN and V-SKNN as session-rec defines them (Ludewig & Jannach 2018, "Evaluation of session-based
recommendation algorithms"; ``algorithms/knn/sknn.py`` and ``vsknn.py`` of rn5l/session-rec).

Notation: a prefix has ``L`` clicks; the click at 1-based position ``p`` has distance ``d = L - p`` from the end
(0 = the last click); an item clicked twice keeps the weight of its latest click. ``S`` is the number of
training sessions, ``clicks(i)`` the number of training clicks on ``i``, ``|s|`` a session's distinct items.

* ``sknn`` (:class:`SessionKNN`): ``sim(q, s)`` over the distinct items, ``cosine = |q ∩ s| / sqrt(|q| |s|)``
  or ``jaccard = |q ∩ s| / |q ∪ s|``; each neighbour adds its similarity to every item it contains.
* ``vsknn`` (:class:`VSKNN`): ``sim(q, s) = sum_{i in q ∩ s} w(p_i) / |q|`` (session-rec's ``vec``) with the
  position weight ``w`` (``weighting``) of the latest click of ``i``:
  ``linear`` ``max(1 - 0.1 d, 0)``, ``same`` 1, ``div`` ``p / L``, ``log`` ``1 / log10(d + 1.7)``,
  ``quadratic`` ``(p / L)^2``. A neighbour ``n``'s contribution to item ``i`` is
  ``sim(q, n) * (1 + idf_weighting * idf(i)) * decay(step_n)``: ``idf(i) = log(S / clicks(i))`` (0 turns it off),
  and ``step_n`` is the 1-based position from the end of the most recent prefix click whose item ``n``
  contains; ``decay`` (``weighting_score``): ``linear`` ``max(1 - 0.1 step, 0)``, ``same`` 1, ``div`` ``1 / step``,
  ``log`` ``1 / log10(step + 1.7)``, ``quadratic`` ``1 / step^2``.

Two guards differ from session-rec's code, where it contradicts the published functions: its ``linear``
weight is zeroed for positions ``p > 10`` counted from the session's *start* (so in a long session the
latest clicks weigh 0), and its ``linear`` decay turns negative for steps 11..100; here both are the
published ``1 - 0.1 x`` floored at 0. SKNN's cosine is the published ``|q ∩ s| / sqrt(|q| |s|)`` (the
code's ``li / sqrt(la) * sqrt(lb)`` multiplies by ``sqrt(|s|)`` through operator precedence).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from .neighbours import NeighbourModel, QueryItems, shared_reduce
from .sparse import sp

Weighting = Literal["linear", "same", "div", "log", "quadratic"]
WEIGHTINGS: tuple[str, ...] = ("linear", "same", "div", "log", "quadratic")

# position weight of a prefix click from its 1-based position p and the prefix length L (d = L - p)
POSITION_WEIGHTS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "linear": lambda p, n: np.maximum(1.0 - 0.1 * (n - p), 0.0),
    "same": lambda p, n: np.ones(len(p)),
    "div": lambda p, n: p / n,
    "log": lambda p, n: 1.0 / np.log10((n - p) + 1.7),
    "quadratic": lambda p, n: (p / n) ** 2,
}
# decay of a neighbour's contribution from the step (1 = the last click) of its most recent shared item
STEP_DECAYS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda s: np.maximum(1.0 - 0.1 * s, 0.0),
    "same": lambda s: np.ones(len(s)),
    "div": lambda s: 1.0 / s,
    "log": lambda s: 1.0 / np.log10(s + 1.7),
    "quadratic": lambda s: 1.0 / (s * s),
}


class SessionKNN(NeighbourModel):
    """SKNN: binary sessions, cosine or Jaccard similarity, the ``k`` nearest of the sampled candidates vote."""

    def __init__(
        self,
        k: int = 100,
        sample_size: int = 1000,
        similarity: Literal["cosine", "jaccard"] = "cosine",
        exclude_seen: bool = False,
    ) -> None:
        super().__init__(k, sample_size, exclude_seen)
        if similarity not in ("cosine", "jaccard"):
            raise ValueError(f"similarity must be 'cosine' or 'jaccard', got {similarity!r}")
        self.similarity = similarity
        self.params = {"k": k, "sample_size": sample_size, "similarity": similarity}

    def similarities(self, query: QueryItems, times: np.ndarray | None = None) -> sp.csr_matrix:
        """``csr [B, S]``: cosine or Jaccard over distinct items, for the kept candidates."""
        sim = self.candidates(query)
        rows = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
        q_size = np.bincount(query.rows, minlength=sim.shape[0]).astype(np.float64)[rows]
        s_size = self.session_sizes[sim.indices]
        if self.similarity == "cosine":
            sim.data = sim.data / np.sqrt(q_size * s_size)
        else:
            sim.data = sim.data / (q_size + s_size - sim.data)
        return sim


class VSKNN(SessionKNN):
    """V-SKNN: position-weighted ``vec`` similarity, IDF-weighted item scores, decay by the most recent shared
    click (module docstring)."""

    def __init__(
        self,
        k: int = 100,
        sample_size: int = 1000,
        weighting: Weighting = "div",
        weighting_score: Weighting = "div",
        idf_weighting: float = 0.0,
        exclude_seen: bool = False,
    ) -> None:
        super().__init__(k, sample_size, "cosine", exclude_seen)
        for name, value in (("weighting", weighting), ("weighting_score", weighting_score)):
            if value not in WEIGHTINGS:
                raise ValueError(f"{name} must be one of {list(WEIGHTINGS)}, got {value!r}")
        if idf_weighting < 0:
            raise ValueError(f"idf_weighting must be >= 0, got {idf_weighting}")
        self.weighting, self.weighting_score, self.idf_weighting = weighting, weighting_score, idf_weighting
        self.params = {
            "k": k,
            "sample_size": sample_size,
            "weighting": weighting,
            "weighting_score": weighting_score,
            "idf_weighting": idf_weighting,
        }

    def query_weights(self, query: QueryItems) -> np.ndarray:
        """``w`` of each distinct prefix item at its latest click."""
        length = query.clicks[query.rows].astype(np.float64)
        return POSITION_WEIGHTS[self.weighting](length - query.distance, length)

    def similarities(self, query: QueryItems, times: np.ndarray | None = None) -> sp.csr_matrix:
        """``csr [B, S]``: ``sum_{i in q ∩ s} w(i) / |q|`` for the kept candidates."""
        kept = self.candidates(query)
        kept.data[:] = 1.0
        sim = sp.csr_matrix((query.matrix(self.query_weights(query)) @ self.sessions_t).multiply(kept))
        rows = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
        sim.data = sim.data / np.bincount(query.rows, minlength=sim.shape[0])[rows]
        sim.eliminate_zeros()
        return sim

    def entry_weights(
        self, query: QueryItems, pairs: tuple[np.ndarray, np.ndarray, np.ndarray], entries: tuple[np.ndarray, ...]
    ) -> np.ndarray:
        pair, _, _, distance = entries
        step = shared_reduce(len(pairs[0]), pair, distance + 1, distance >= 0, "min")
        return pairs[2][pair] * STEP_DECAYS[self.weighting_score](step)[pair]

    def item_factor(self) -> np.ndarray | None:
        return 1.0 + self.idf_weighting * self.idf() if self.idf_weighting else None
