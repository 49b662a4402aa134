"""The one FAISS index helper: flat / HNSW / IVF, with a seeded (reproducible) IVF k-means."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

from llm4sbr_adapter import vector_index
from llm4sbr_adapter.hiphop import neighbours
from llm4sbr_adapter.hiphop.neighbours import SessionNeighbourBank
from llm4sbr_adapter.offline import localize
from llm4sbr_adapter.offline.localize import ItemLocalizer
from llm4sbr_adapter.vector_index import inner_product_index


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    faiss.normalize_L2(x)
    return x


def centroids(index: faiss.Index) -> np.ndarray:
    return faiss.downcast_index(faiss.downcast_index(index).quantizer).reconstruct_n(0, index.nlist)


def test_two_ivf_builds_give_identical_clusters_and_results():
    x, q = unit_rows(6000, 24, 0), unit_rows(200, 24, 1)
    a = inner_product_index(x, "ivf", nlist=48, nprobe=3)
    b = inner_product_index(x, "ivf", nlist=48, nprobe=3)
    assert np.array_equal(centroids(a), centroids(b))
    (da, ia), (db, ib) = a.search(q, 10), b.search(q, 10)
    assert np.array_equal(ia, ib) and np.array_equal(da, db)
    other = inner_product_index(x, "ivf", nlist=48, nprobe=3, seed=7)  # the seed is really the one used
    assert not np.array_equal(centroids(a), centroids(other))


def test_ivf_localiser_and_neighbour_bank_are_reproducible():
    items, queries = unit_rows(4000, 16, 2), unit_rows(100, 16, 3)
    first = ItemLocalizer(items, index="ivf", nprobe=2).localize(queries, top_f=5)
    second = ItemLocalizer(items, index="ivf", nprobe=2).localize(queries, top_f=5)
    assert all(np.array_equal(u, v) for u, v in zip(first, second, strict=True))
    vecs = {lv: torch.from_numpy(unit_rows(4000, 16, 4)) for lv in ("global", "local")}
    hits = []
    for _ in range(2):
        bank = SessionNeighbourBank(16, index="ivf", nlist=40, nprobe=2, ivf_min_rows=1000)
        bank.build(np.arange(4000), vecs)
        hits.append(bank.search("global", torch.from_numpy(queries), 8))
    assert torch.equal(hits[0].ids, hits[1].ids) and torch.equal(hits[0].scores, hits[1].scores)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_every_kind_finds_the_exact_neighbours_on_a_small_set(kind):
    x, q = unit_rows(500, 8, 5), unit_rows(20, 8, 6)
    index = inner_product_index(x, kind, nlist=4, nprobe=4)  # every list probed: exhaustive
    _, got = index.search(q, 5)
    want = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :5]
    assert np.array_equal(np.sort(got, 1), np.sort(want, 1))


def test_bad_settings_and_one_helper_for_both_users():
    x = unit_rows(50, 4, 7)
    with pytest.raises(ValueError, match=r"nlist must be in 1\.\.50"):
        inner_product_index(x, "ivf", nlist=51)
    with pytest.raises(ValueError, match="index must be one of"):
        inner_product_index(x, "pq")
    assert localize.inner_product_index is neighbours.inner_product_index is vector_index.inner_product_index
