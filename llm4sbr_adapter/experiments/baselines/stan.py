"""STAN (Garg et al., SIGIR 2019, "Sequence and time aware neighborhood for session-based recommendations")
and V-STAN (Ludewig et al. 2021, "Empirical analysis of session-based recommendation algorithms"), as
``algorithms/knn/stan.py`` and ``vstan.py`` of rn5l/session-rec compute them.

Notation as in :mod:`.knn` (``d`` = distance of an item's latest prefix click from the end, 0 = last click).

* ``stan`` (:class:`STAN`), three factors:
  ``w_spw(i) = exp(-d_i / lambda_spw)`` weighs the prefix's items, and
  ``sim(q, s) = sum_{i in q ∩ s} w_spw(i) / (sqrt(sum_{i in q} w_spw(i)^2) * sqrt(|s|))`` (a weighted cosine)
  times ``exp(-|t_q - t_s| / lambda_snh)`` (``lambda_snh`` in days; ``t_q`` the time of the prefix's last click,
  ``t_s`` the session's last click; session-rec uses ``t_q - t_s`` because its neighbours are always older;
  under the user-split protocol some are newer, and the absolute gap keeps the weight below 1). The ``k``
  most similar sampled candidates are the neighbours; neighbour ``n`` gives item ``i`` the share
  ``sim(q, n) * exp(-|p_n(i) - p_n*| / lambda_inh)``, ``p_n(i)`` the 1-based position of ``i``'s last click in
  ``n`` and ``p_n*`` that of the last click in ``n`` on an item the prefix contains.
* ``vstan`` (:class:`VSTAN`): STAN's three factors, times V-SKNN's sequential weight of the neighbour
  ``exp(-d_n / lambda_ipw)`` (``d_n``: the distance of the most recent prefix click whose item ``n`` contains)
  and its IDF factor ``1 + lambda_idf * log(S / clicks(i))`` per item (0 turns it off).

Without click times (no ``target_time`` in ``rows_*.tsv``), or with ``lambda_snh = 0`` (the limit of an
ever longer time scale, which the search may choose), there is no session-recency factor.
"""

from __future__ import annotations

import numpy as np

from .neighbours import NeighbourModel, QueryItems, shared_reduce
from .sparse import sp

SECONDS_PER_DAY = 24 * 3600.0


class STAN(NeighbourModel):
    """STAN: position-weighted cosine, session recency, and the neighbour items' distance to the shared item."""

    def __init__(
        self,
        k: int = 100,
        sample_size: int = 1000,
        lambda_spw: float = 1.0,
        lambda_snh: float = 5.0,
        lambda_inh: float = 2.0,
        exclude_seen: bool = False,
    ) -> None:
        super().__init__(k, sample_size, exclude_seen)
        for name, value in (("lambda_spw", lambda_spw), ("lambda_inh", lambda_inh)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if not lambda_snh >= 0:
            raise ValueError(f"lambda_snh must be >= 0 (0 = no session-recency factor), got {lambda_snh}")
        self.lambda_spw, self.lambda_snh, self.lambda_inh = lambda_spw, lambda_snh, lambda_inh
        self.params = {
            "k": k,
            "sample_size": sample_size,
            "lambda_spw": lambda_spw,
            "lambda_snh": lambda_snh,
            "lambda_inh": lambda_inh,
        }

    def similarities(self, query: QueryItems, times: np.ndarray | None = None) -> sp.csr_matrix:
        """``csr [B, S]``: the weighted cosine times the session-recency factor, for the kept candidates."""
        kept = self.candidates(query)
        kept.data[:] = 1.0
        w = np.exp(-query.distance / self.lambda_spw)
        sim = sp.csr_matrix((query.matrix(w) @ self.sessions_t).multiply(kept))
        rows = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
        norm = np.sqrt(np.bincount(query.rows, weights=w * w, minlength=sim.shape[0]))
        sim.data = sim.data / (norm[rows] * np.sqrt(self.session_sizes[sim.indices]))
        if times is not None and self.times is not None and self.lambda_snh > 0:
            gap = np.abs(np.asarray(times, dtype=np.float64)[rows] - self.times[sim.indices])
            sim.data = sim.data * np.exp(-gap / (self.lambda_snh * SECONDS_PER_DAY))
        sim.eliminate_zeros()
        return sim

    def entry_weights(
        self, query: QueryItems, pairs: tuple[np.ndarray, np.ndarray, np.ndarray], entries: tuple[np.ndarray, ...]
    ) -> np.ndarray:
        pair, _, position, distance = entries
        shared_position = shared_reduce(len(pairs[0]), pair, position, distance >= 0, "max")
        return pairs[2][pair] * np.exp(-np.abs(position - shared_position[pair]) / self.lambda_inh)


class VSTAN(STAN):
    """V-STAN: STAN plus V-SKNN's sequential weight of the neighbour and IDF weighting of the items."""

    def __init__(
        self,
        k: int = 100,
        sample_size: int = 1000,
        lambda_spw: float = 1.0,
        lambda_snh: float = 5.0,
        lambda_inh: float = 2.0,
        lambda_ipw: float = 1.0,
        lambda_idf: float = 0.0,
        exclude_seen: bool = False,
    ) -> None:
        super().__init__(k, sample_size, lambda_spw, lambda_snh, lambda_inh, exclude_seen)
        if not lambda_ipw > 0 or lambda_idf < 0:
            raise ValueError(f"need lambda_ipw > 0 and lambda_idf >= 0, got {lambda_ipw} and {lambda_idf}")
        self.lambda_ipw, self.lambda_idf = lambda_ipw, lambda_idf
        self.params = {**self.params, "lambda_ipw": lambda_ipw, "lambda_idf": lambda_idf}

    def entry_weights(
        self, query: QueryItems, pairs: tuple[np.ndarray, np.ndarray, np.ndarray], entries: tuple[np.ndarray, ...]
    ) -> np.ndarray:
        pair, distance = entries[0], entries[3]
        nearest = shared_reduce(len(pairs[0]), pair, distance, distance >= 0, "min")
        return super().entry_weights(query, pairs, entries) * np.exp(-nearest / self.lambda_ipw)[pair]

    def item_factor(self) -> np.ndarray | None:
        return 1.0 + self.lambda_idf * self.idf() if self.lambda_idf else None
