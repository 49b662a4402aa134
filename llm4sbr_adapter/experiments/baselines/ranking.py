"""Target ranks read straight from a baseline's sparse scores, without the dense ``[B, N]`` score block.

:meth:`Baseline.scores` orders the items of a row by the model's raw score and then by training popularity
(:func:`.base.popularity_tie_break`), and the pessimistic rank of
:func:`llm4sbr_adapter.experiments.evaluation.metrics.target_ranks` counts the items whose combined score is
``>=`` the target's. Since the combined score orders exactly as the pair (raw score, popularity), that count is

    #{j : raw_j > raw_t} + #{j : raw_j == raw_t and pop_j >= pop_t}

and every item without a stored raw score shares ``raw_j = 0``: those are counted from the sorted
popularities, the stored ones entry by entry. With the prefix's own items ranked last (score -1), a target
outside its prefix loses the prefix items counted above; a target inside it scores -1 like them and so
ranks ``N`` (every item's score is ``>= -1``).

Written here rather than taken from a library: it is the same rank rule as the dense path, evaluated on the
stored entries only (about half of a kNN baseline's validation time went to the dense block and its ranks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..evaluation.metrics import target_ranks
from .base import popularity_tie_break, rank_prefix_items_last
from .sessions import flatten
from .sparse import sp


def _positive_entries(raw: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, column, value)`` of the entries ``> 0`` (duplicates summed), sorted by ``(row, column)``."""
    coo = sp.csr_matrix(raw).tocoo()
    coo.sum_duplicates()  # also sorts by (row, column)
    keep = coo.data > 0
    return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep]


def _values_at(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``values`` at each of ``wanted`` among the sorted ``keys``, 0 where absent."""
    if not len(keys):
        return np.zeros(len(wanted))
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, values[at], 0.0)


def _counted(raw: np.ndarray, pop: np.ndarray, target_raw: np.ndarray, target_pop: np.ndarray) -> np.ndarray:
    """Whether an item with (``raw``, ``pop``) scores ``>=`` its row's target: the rank rule, elementwise."""
    return (raw > target_raw) | ((raw == target_raw) & (pop >= target_pop))


def dense_target_ranks(
    raw: sp.csr_matrix, pop: np.ndarray, target_columns: np.ndarray, prefixes: Sequence[np.ndarray]
) -> dict[bool, np.ndarray]:
    """The definition that :func:`sparse_target_ranks` computes faster: ``target_ranks`` of the dense
    popularity-broken scores, with the prefix's items kept and ranked last (for tests and benchmarks)."""
    scores = popularity_tie_break(raw, pop)
    columns = torch.from_numpy(np.asarray(target_columns, dtype=np.int64))
    kept = target_ranks(torch.from_numpy(scores), columns).numpy().copy()
    last = target_ranks(torch.from_numpy(rank_prefix_items_last(scores, prefixes)), columns).numpy()
    return {False: kept, True: last}


def sparse_target_ranks(
    raw: sp.csr_matrix, pop: np.ndarray, target_columns: np.ndarray, prefixes: Sequence[np.ndarray]
) -> dict[bool, np.ndarray]:
    """``{exclude_seen: ranks int64 [B]}``: the ranks that ``target_ranks(Baseline.scores(...))`` gives, with
    the prefix's items kept (``False``) and ranked last (``True``).

    ``raw`` is ``csr [B, N]`` of non-negative scores (entries ``<= 0`` count as absent), ``pop`` float [N] the
    training popularity, ``target_columns`` int [B] the targets' columns (item id - 1), ``prefixes`` the
    rows' item ids (1-based)."""
    rows_count, num_items = raw.shape
    targets = np.asarray(target_columns, dtype=np.int64)
    row, col, value = _positive_entries(raw)
    keys = row * num_items + col
    target_raw = _values_at(keys, value, np.arange(rows_count) * num_items + targets)
    target_pop = pop[targets]

    above = _counted(value, pop[col], target_raw[row], target_pop[row])
    ranks = np.bincount(row[above], minlength=rows_count)
    # the items without a stored score (raw 0) tie with a target of raw 0: count those as popular or more
    sorted_pop = np.sort(pop)
    popular = num_items - np.searchsorted(sorted_pop, target_pop, side="left")
    stored_popular = np.bincount(row[pop[col] >= target_pop[row]], minlength=rows_count)
    ranks = ranks + np.where(target_raw == 0, popular - stored_popular, 0)

    items, owner = flatten(prefixes)
    seen = np.unique(owner * num_items + (items - 1))  # distinct (row, column) of the prefixes' items
    seen_row, seen_col = seen // num_items, seen % num_items
    seen_raw = _values_at(keys, value, seen)
    counted = _counted(seen_raw, pop[seen_col], target_raw[seen_row], target_pop[seen_row])
    target_seen = np.bincount(seen_row[seen_col == targets[seen_row]], minlength=rows_count) > 0
    excluded = np.where(target_seen, num_items, ranks - np.bincount(seen_row[counted], minlength=rows_count))
    return {False: ranks.astype(np.int64), True: excluded.astype(np.int64)}
