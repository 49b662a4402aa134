"""The sparse rank path (baselines.ranking) against the dense one it replaces: ``target_ranks`` of
``Baseline.scores``, with and without the prefix's items ranked last, on cases full of ties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from llm4sbr_adapter.experiments import baselines as bl
from llm4sbr_adapter.experiments.baselines.ranking import dense_target_ranks, sparse_target_ranks
from llm4sbr_adapter.experiments.data.splits import SplitData


def random_case(rng: np.random.Generator, rows: int, items: int) -> tuple:
    """Raw scores from 3 levels (many ties, some explicit zeros and duplicates), popularity from 4 levels, prefixes
    that repeat items and sometimes hold the target."""
    entries = rng.integers(0, rows * items // 2 + 1)
    r, c = rng.integers(0, rows, entries), rng.integers(0, items, entries)
    raw = sp.csr_matrix((rng.integers(0, 3, entries).astype(np.float64) * 0.5, (r, c)), shape=(rows, items))
    pop = rng.integers(0, 4, items).astype(np.float64)
    targets = rng.integers(0, items, rows)
    prefixes = [rng.integers(1, items + 1, rng.integers(1, 6)) for _ in range(rows)]
    return raw, pop, targets, prefixes


@pytest.mark.parametrize("seed", range(40))
def test_sparse_ranks_equal_the_dense_path(seed: int) -> None:
    rng = np.random.default_rng(seed)
    case = random_case(rng, int(rng.integers(1, 12)), int(rng.integers(1, 15)))
    sparse, dense = sparse_target_ranks(*case), dense_target_ranks(*case)
    for flag in (False, True):
        np.testing.assert_array_equal(sparse[flag], dense[flag])


def test_hand_case() -> None:
    # items 1..4 (columns 0..3); raw scores [0, 2, 2, 0], popularity [5, 1, 3, 3]: the order is 3, 2, 1, 4
    raw = sp.csr_matrix(np.array([[0.0, 2.0, 2.0, 0.0]] * 3))
    pop = np.array([5.0, 1.0, 3.0, 3.0])
    prefixes = [np.array([3]), np.array([3, 3]), np.array([1])]
    out = sparse_target_ranks(raw, pop, np.array([1, 3, 0]), prefixes)
    assert out[False].tolist() == [2, 4, 3]
    assert out[True].tolist() == [1, 3, 4]  # item 3 leaves the first two counts; the third target is its own prefix


def test_models_evaluate_as_before() -> None:
    """Each kNN baseline's evaluation equals the dense path on a small random log (times and all)."""
    rng = np.random.default_rng(3)
    sessions = [rng.integers(1, 30, rng.integers(2, 8)) for _ in range(60)]
    times = np.sort(rng.uniform(0, 50 * 86400, 60))
    prefixes = [list(rng.integers(1, 30, rng.integers(1, 6))) for _ in range(25)]
    valid = SplitData.from_lists(prefixes, list(rng.integers(1, 31, 25)))
    queries = bl.Queries(valid, np.full(25, 51 * 86400.0))
    for name in ("pop", "markov", "sr", "sknn", "vsknn", "stan", "vstan"):
        params = {**bl.SPACES[name].start}
        if "k" in params:
            params.update(k=5, sample_size=10)
        model = bl.MODELS[name](**params).fit(sessions, 30, times)
        prefixes = [valid.flat[valid.offsets[r] : valid.offsets[r + 1]] for r in range(len(valid))]
        expected = dense_target_ranks(model.raw_scores(prefixes, queries.times), model.pop, valid.targets - 1, prefixes)
        both = bl.evaluate_exclusions(model, queries, batch_size=7)
        for flag in (False, True):
            np.testing.assert_array_equal(both[flag], expected[flag], err_msg=f"{name} exclude_seen={flag}")
