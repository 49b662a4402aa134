"""The session-kNN machinery shared by SKNN, V-SKNN, STAN and V-STAN (session-rec's order of steps).

For a prefix ``q``: (1) the candidates are the training sessions that share an item with ``q``; (2) with
``sample_size > 0`` only the ``sample_size`` most recent of them are kept (latest session time first, the
later row on equal times; 0 keeps all); (3) each model gives every kept candidate a similarity, and those
with similarity 0 are dropped; (4) the ``k`` most similar remain (ties: the more recent session); (5) each
neighbour ``n`` gives each of its distinct items ``i`` a share of its similarity, weighted per model
(:meth:`NeighbourModel.entry_weights`), and the shares are summed per item.

Sessions are held as sparse rows: ``sessions`` (binary ``[S, N]``), ``last_position`` (the 1-based position of
an item's last click in the session) and per item the number of training clicks (for IDF).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .base import Baseline
from .sessions import flatten
from .sparse import sp


def position_in_row(rows: np.ndarray) -> np.ndarray:
    """``0, 1, ...`` within each run of equal values of the sorted ``rows`` (linear time)."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.diff(rows, prepend=rows[0] - 1))  # where each run begins
    return np.arange(len(rows)) - np.repeat(starts, np.diff(starts, append=len(rows)))


def gather_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of ``matrix[rows]``: ``(index into rows, column, value)`` per stored entry."""
    starts, stops = matrix.indptr[rows], matrix.indptr[rows + 1]
    counts = stops - starts
    owner = np.repeat(np.arange(len(rows)), counts)
    at = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    return owner, matrix.indices[at], matrix.data[at]


@dataclass
class QueryItems:
    """The distinct items of each prefix with the distance of their latest click from the end (0 = last click).

    ``rows``, ``items``, ``distance`` int64 [entries] are sorted by ``(row, item)``; ``clicks`` int64 [B] is
    each prefix's length (repeated clicks counted).
    """

    rows: np.ndarray
    items: np.ndarray
    distance: np.ndarray
    clicks: np.ndarray
    num_items: int

    @classmethod
    def of(cls, prefixes: Sequence[np.ndarray], num_items: int) -> QueryItems:
        items, owner = flatten(prefixes)
        clicks = np.fromiter((len(p) for p in prefixes), dtype=np.int64, count=len(prefixes))
        distance = np.cumsum(clicks)[owner] - 1 - np.arange(len(items))
        keys = owner * (num_items + 1) + items
        unique, first_from_end = np.unique(keys[::-1], return_index=True)  # the latest click of each key
        latest = len(items) - 1 - first_from_end
        return cls(unique // (num_items + 1), unique % (num_items + 1), distance[latest], clicks, num_items)

    def matrix(self, weights: np.ndarray) -> sp.csr_matrix:
        """``csr [B, N]`` with ``weights`` at each prefix's items."""
        shape = (len(self.clicks), self.num_items)
        return sp.csr_matrix((weights, (self.rows, self.items - 1)), shape=shape)

    def lookup(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The latest-click distance of ``items`` in prefixes ``rows``; -1 where the prefix lacks the item."""
        keys = self.rows * (self.num_items + 1) + self.items
        wanted = rows * (self.num_items + 1) + items
        at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
        found = keys[at] == wanted if len(keys) else np.zeros(len(wanted), dtype=bool)
        return np.where(found, self.distance[at] if len(keys) else -1, -1)


class NeighbourModel(Baseline):
    """Steps (1), (2), (4) and (5) of the module docstring; subclasses give :meth:`similarities` and
    :meth:`entry_weights` (SKNN: every item gets the neighbour's similarity)."""

    def __init__(self, k: int, sample_size: int, exclude_seen: bool) -> None:
        if k < 1 or sample_size < 0:
            raise ValueError(f"need k >= 1 and sample_size >= 0, got k={k}, sample_size={sample_size}")
        self.k, self.sample_size, self.exclude_seen = k, sample_size, exclude_seen

    def _fit(self, items: np.ndarray, owner: np.ndarray) -> None:
        shape = (self.num_sessions, self.num_items)
        position = np.arange(len(items)) - np.searchsorted(owner, owner) + 1  # 1-based within the session
        keys = owner * (self.num_items + 1) + items
        unique, first_from_end = np.unique(keys[::-1], return_index=True)  # the last click of each item
        latest = len(items) - 1 - first_from_end
        rows, columns = unique // (self.num_items + 1), unique % (self.num_items + 1) - 1
        self.last_position = sp.csr_matrix((position[latest], (rows, columns)), shape=shape)
        self.sessions = sp.csr_matrix((np.ones(len(unique)), (rows, columns)), shape=shape)
        self.sessions_t = self.sessions.T.tocsr()
        self.session_sizes = np.diff(self.sessions.indptr).astype(np.float64)
        self.clicks = np.bincount(items - 1, minlength=self.num_items).astype(np.float64)
        index = np.arange(self.num_sessions)
        order = index if self.times is None else np.lexsort((index, self.times))
        self.recency = np.empty(self.num_sessions, dtype=np.int64)
        self.recency[order] = index  # higher = more recent

    def idf(self) -> np.ndarray:
        """``float64 [N]``: ``log(S / clicks(i))`` as session-rec computes it (training clicks of ``i``, not
        sessions); 0 for an item never clicked in training."""
        return np.where(self.clicks > 0, np.log(max(self.num_sessions, 1) / np.maximum(self.clicks, 1)), 0.0)

    def candidates(self, query: QueryItems) -> sp.csr_matrix:
        """``csr [B, S]``: ``|q ∩ s|`` for the kept candidates (steps 1 and 2)."""
        common = (query.matrix(np.ones(len(query.rows))) @ self.sessions_t).tocoo()
        r, c, v = common.row, common.col, common.data
        if self.sample_size > 0:
            # by row, most recent first; the keys are distinct, so one integer sort equals the two-key lexsort
            order = np.argsort(r.astype(np.int64) * self.num_sessions + (self.num_sessions - 1 - self.recency[c]))
            r, c, v = r[order], c[order], v[order]
            keep = position_in_row(r) < self.sample_size
            r, c, v = r[keep], c[keep], v[keep]
        return sp.csr_matrix((v, (r, c)), shape=common.shape)

    def similarities(self, query: QueryItems, times: np.ndarray | None) -> sp.csr_matrix:
        """``csr [B, S]``: the similarity of each kept candidate (step 3)."""
        raise NotImplementedError

    def neighbours(self, prefixes: Sequence[np.ndarray], times: np.ndarray | None = None) -> sp.csr_matrix:
        """``csr [B, S]``: the similarities of each prefix's ``k`` nearest sessions, 0 elsewhere."""
        query = QueryItems.of(prefixes, self.num_items)
        r, c, v = self._top_k(self.similarities(query, times))
        return sp.csr_matrix((v, (r, c)), shape=(len(prefixes), self.num_sessions))

    def _top_k(self, sim: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coo = sim.tocoo()  # entries in row order
        positive = coo.data > 0
        r, c, v = coo.row[positive], coo.col[positive], coo.data[positive]
        close = v >= self._kth_largest(r, v, sim.shape[0])[r]
        r, c, v = r[close], c[close], v[close]
        order = np.lexsort((-self.recency[c], -v, r))  # by row, most similar first, more recent on ties
        r, c, v = r[order], c[order], v[order]
        top = position_in_row(r) < self.k
        return r[top].astype(np.int64), c[top].astype(np.int64), v[top]

    def _kth_largest(self, rows: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
        """``float64 [num_rows]``: the ``k``-th largest of each row's ``values`` (``rows`` sorted), -inf where a
        row has at most ``k``. An entry below it is never among the ``k`` nearest, so :meth:`_top_k` drops those
        before its sort, which is most of the time of a scoring pass when candidates far outnumber ``k``."""
        counts = np.bincount(rows, minlength=num_rows)
        stops = np.cumsum(counts)
        out = np.full(num_rows, -np.inf)
        for row in np.flatnonzero(counts > self.k):  # one partition per crowded row (at most a batch of rows)
            part = values[stops[row] - counts[row] : stops[row]]
            out[row] = np.partition(part, len(part) - self.k)[len(part) - self.k]
        return out

    def entry_weights(
        self, query: QueryItems, pairs: tuple[np.ndarray, np.ndarray, np.ndarray], entries: tuple[np.ndarray, ...]
    ) -> np.ndarray:
        """The share of each (neighbour, item) entry (step 5). ``pairs = (row, session, similarity)`` of the
        neighbours; ``entries = (pair index, item, last position in the neighbour, distance in the prefix or -1)``."""
        return pairs[2][entries[0]]

    def item_factor(self) -> np.ndarray | None:
        """A per-item factor applied to the summed scores (IDF weighting), or None."""
        return None

    def raw_scores(self, prefixes: Sequence[np.ndarray], times: np.ndarray | None = None) -> sp.csr_matrix:
        query = QueryItems.of(prefixes, self.num_items)
        r, n, s = self._top_k(self.similarities(query, times))
        pair, columns, position = gather_rows(self.last_position, n)
        items = columns.astype(np.int64) + 1
        distance = query.lookup(r[pair], items)
        weights = self.entry_weights(query, (r, n, s), (pair, items, position.astype(np.int64), distance))
        out = sp.csr_matrix((weights, (r[pair], columns)), shape=(len(prefixes), self.num_items))
        factor = self.item_factor()
        return out if factor is None else sp.csr_matrix(out.multiply(factor[None, :]))


def shared_reduce(pairs: int, pair: np.ndarray, values: np.ndarray, shared: np.ndarray, how: str) -> np.ndarray:
    """Per neighbour pair, the ``min`` or ``max`` of ``values`` over its entries with ``shared`` true."""
    out = np.full(pairs, np.inf if how == "min" else -np.inf)
    (np.minimum if how == "min" else np.maximum).at(out, pair[shared], values[shared].astype(np.float64))
    return out
