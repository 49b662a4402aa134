"""ItemLocalizer: FAISS top-f + softmax mixture checked against a brute-force numpy version."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm4sbr_adapter.offline.localize import ItemLocalizer


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_force(items: np.ndarray, queries: np.ndarray, f: int, temperature: float):
    """Eqs. 1-4 in float64 numpy: cosine, top-f, softmax over the f cosines, weighted sum."""
    items_n = _unit(items.astype(np.float64))
    q_n = _unit(queries.astype(np.float64))
    cos = q_n @ items_n.T  # [Q, M]
    idx = np.argsort(-cos, axis=1, kind="stable")[:, :f]
    top = np.take_along_axis(cos, idx, axis=1) / temperature
    w = np.exp(top - top.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    vec = np.einsum("qf,qfd->qd", w, items_n[idx])
    return vec, idx, w


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(500, 32)).astype(np.float32) * rng.uniform(0.5, 3.0, size=(500, 1)).astype(np.float32)
    queries = rng.normal(size=(64, 32)).astype(np.float32)
    return items, queries


@pytest.mark.parametrize("f,temperature", [(1, 1.0), (5, 1.0), (10, 0.1), (20, 2.5)])
def test_flat_matches_brute_force(data, f, temperature):
    items, queries = data
    loc = ItemLocalizer(items)
    vec, idx, w = loc.localize(queries, f, temperature=temperature, batch_size=17)  # several batches
    ref_vec, ref_idx, ref_w = _brute_force(items, queries, f, temperature)
    assert vec.dtype == np.float32 and vec.shape == (64, 32) and vec.flags.c_contiguous
    assert idx.dtype == np.int64 and idx.shape == (64, f)
    assert w.dtype == np.float32 and w.shape == (64, f)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(w, ref_w, atol=1e-5)
    np.testing.assert_allclose(vec, ref_vec, atol=1e-5)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    assert (np.diff(w, axis=1) <= 1e-7).all(), "weights follow decreasing cosine"


def test_inputs_not_modified_and_torch_accepted(data):
    items, queries = data
    items_before, queries_before = items.copy(), queries.copy()
    loc = ItemLocalizer(torch.from_numpy(items))
    vec_t, idx_t, _ = loc.localize(torch.from_numpy(queries), 3)
    vec_n, idx_n, _ = ItemLocalizer(items).localize(queries, 3)
    np.testing.assert_array_equal(items, items_before)
    np.testing.assert_array_equal(queries, queries_before)
    np.testing.assert_array_equal(idx_t, idx_n)
    np.testing.assert_allclose(vec_t, vec_n, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(loc.item_embeddings, axis=1), 1.0, atol=1e-5)


def test_top_f_zero_returns_normalised_queries(data):
    items, queries = data
    vec, idx, w = ItemLocalizer(items).localize(queries * 7.0, 0)
    np.testing.assert_allclose(vec, _unit(queries), atol=1e-6)
    assert idx.shape == (64, 0) and idx.dtype == np.int64
    assert w.shape == (64, 0) and w.dtype == np.float32


def test_top_one_is_exactly_the_nearest_item(data):
    items, queries = data
    loc = ItemLocalizer(items)
    vec, idx, w = loc.localize(queries, 1)
    nearest = np.argmax(_unit(queries) @ _unit(items).T, axis=1)
    np.testing.assert_array_equal(idx[:, 0], nearest)
    np.testing.assert_array_equal(w, np.ones((64, 1), np.float32))
    np.testing.assert_array_equal(vec, loc.item_embeddings[nearest])  # bit-exact


def test_query_equal_to_item_finds_it_first(data):
    items, _ = data
    loc = ItemLocalizer(items)
    _, idx, _ = loc.localize(items[:50] * 3.0, 4)
    np.testing.assert_array_equal(idx[:, 0], np.arange(50))


def test_tied_duplicate_items_share_weight():
    rng = np.random.default_rng(1)
    base = _unit(rng.normal(size=(20, 8)).astype(np.float32))
    items = np.concatenate([base, base[:1] * 2.0])  # item 20 duplicates item 0 (same direction)
    loc = ItemLocalizer(items)
    vec, idx, w = loc.localize(base[:1], 2)
    assert set(idx[0].tolist()) == {0, 20}
    np.testing.assert_allclose(w[0], [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(vec[0], base[0], atol=1e-6)


def test_temperature_sharpens(data):
    items, queries = data
    loc = ItemLocalizer(items)
    _, _, w_hot = loc.localize(queries, 5, temperature=10.0)
    _, _, w_cold = loc.localize(queries, 5, temperature=0.01)
    assert (w_cold[:, 0] > w_hot[:, 0]).all()
    assert np.ptp(w_hot, axis=1).max() < 0.05  # high temperature: nearly uniform


def test_bad_arguments(data):
    items, queries = data
    loc = ItemLocalizer(items)
    with pytest.raises(ValueError, match=r"top_f=501 is larger than the catalogue \(500 items\)"):
        loc.localize(queries, 501)
    # the rules of BuildConfig's fields, declared once there
    with pytest.raises(ValueError, match=r"BuildConfig.top_f must be >= 0, got -1"):
        loc.localize(queries, -1)
    with pytest.raises(ValueError, match=r"BuildConfig.top_f must be an integer, got 2.5"):
        loc.localize(queries, 2.5)
    with pytest.raises(ValueError, match="dimension 16, item embeddings 32"):
        loc.localize(queries[:, :16], 3)
    with pytest.raises(ValueError, match=r"BuildConfig.softmax_temperature must be > 0.0"):
        loc.localize(queries, 3, temperature=0.0)
    bad = queries.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="row 5"):
        loc.localize(bad, 3)
    with pytest.raises(ValueError, match="index must be"):
        ItemLocalizer(items, index="lsh")
    with pytest.raises(ValueError, match="empty"):
        ItemLocalizer(np.zeros((0, 4), np.float32))
    assert loc.localize(queries, 500)[1].shape == (64, 500)  # f == M is allowed


def test_empty_query_batch(data):
    items, _ = data
    vec, idx, w = ItemLocalizer(items).localize(np.zeros((0, 32), np.float32), 3)
    assert vec.shape == (0, 32) and idx.shape == (0, 3) and w.shape == (0, 3)


def test_minus_one_results_are_masked_out(data, monkeypatch):
    """Approximate indexes return -1 when fewer than f items are reachable; those slots get weight 0."""
    items, queries = data
    loc = ItemLocalizer(items)
    real_search = loc.search

    def partial_search(q, k):
        sims, idx = real_search(q, k)
        sims, idx = sims.copy(), idx.copy()
        idx[0, 2:] = -1  # query 0: only two hits
        sims[0, 2:] = -3.4e38
        idx[1, :] = -1  # query 1: no hit at all
        sims[1, :] = -3.4e38
        return sims, idx

    monkeypatch.setattr(loc, "search", partial_search)
    vec, idx, w = loc.localize(queries[:3], 4)
    ref_vec, ref_idx, _ = _brute_force(items, queries[:1], 2, 1.0)
    np.testing.assert_array_equal(idx[0], list(ref_idx[0]) + [-1, -1])
    assert w[0, 2:].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(w[0].sum(), 1.0, atol=1e-6)
    np.testing.assert_allclose(vec[0], ref_vec[0], atol=1e-5)
    assert w[1].tolist() == [0.0] * 4
    np.testing.assert_allclose(vec[1], _unit(queries[1:2])[0], atol=1e-6)  # falls back to the query
    np.testing.assert_allclose(w[2].sum(), 1.0, atol=1e-6)


def _recall(approx_idx: np.ndarray, exact_idx: np.ndarray) -> float:
    hits = sum(len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx_idx, exact_idx, strict=True))
    return hits / exact_idx.size


@pytest.fixture(scope="module")
def random_catalogue():
    """Uniform random directions in 48-d: the hard case for ANN (real title embeddings cluster)."""
    rng = np.random.default_rng(2)
    items = rng.normal(size=(4000, 48)).astype(np.float32)
    queries = rng.normal(size=(200, 48)).astype(np.float32)
    _, exact_idx, _ = ItemLocalizer(items).localize(queries, 10)
    return items, queries, exact_idx


@pytest.mark.parametrize(
    "kind,kwargs,min_recall",
    [
        ("hnsw", dict(), 0.95),  # defaults: M=32, efSearch=128
        ("hnsw", dict(hnsw_m=8, ef_search=16), 0.2),
        ("ivf", dict(nlist=32, nprobe=8), 0.6),
        ("ivf", dict(nlist=32, nprobe=32), 1.0),  # visiting every list is exhaustive
    ],
)
def test_approximate_index_recall(random_catalogue, kind, kwargs, min_recall):
    items, queries, exact_idx = random_catalogue
    f = exact_idx.shape[1]
    vec, idx, w = ItemLocalizer(items, index=kind, **kwargs).localize(queries, f)
    recall = _recall(idx, exact_idx)
    print(f"{kind} {kwargs} recall@{f} vs flat: {recall:.3f}")
    assert recall >= min_recall, f"{kind} {kwargs} recall@{f} = {recall:.3f}"
    valid = idx >= 0
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    assert (w[~valid] == 0).all()
    # the mixture uses exactly the returned items and weights
    ref = np.einsum("qf,qfd->qd", w, ItemLocalizer(items).item_embeddings[np.where(valid, idx, 0)])
    np.testing.assert_allclose(vec, ref, atol=1e-5)
