"""Snap free-text intent embeddings onto the item catalogue (LLM4SBR's intent localisation).

An LLM answer ("she is looking for a matte lipstick") is embedded with the same text encoder
as the item titles; :class:`ItemLocalizer` then replaces that embedding by a mixture of the
catalogue items it is closest to:

1. cosine similarity between the answer embedding and every normalised title embedding;
2. the ``f`` most similar items;
3. softmax over those ``f`` cosines (divided by a temperature) as weights;
4. the weighted sum of the ``f`` title embeddings is the localised intent vector.

Search runs in FAISS on L2-normalised float32 vectors with inner product (= cosine): an exact
``IndexFlatIP`` by default, or HNSW / IVF for catalogues of millions of items (made by
:func:`~llm4sbr_adapter.vector_index.inner_product_index`, shared with HIPHOP's neighbour bank).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..config import check_setting
from ..faiss_import import faiss
from ..vector_index import KMEANS_SEED, IndexKind, inner_product_index
from .config import BuildConfig

logger = logging.getLogger(__name__)


def _as_float32_matrix(x: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    """Copy to a fresh float32, C-contiguous ``[n, d]`` array (the caller's data is never modified)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float32).numpy()
    arr = np.array(x, dtype=np.float32, order="C", copy=True)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D matrix [n, d], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise ValueError(f"{what} has NaN or inf values (first in row {bad})")
    return arr


class ItemLocalizer:
    """Cosine top-f search over item embeddings plus the softmax-weighted mixture of the hits.

    Args:
        item_embeddings: ``[M, D]`` title embeddings (copied and L2-normalised here).
        index: ``"flat"`` (exact, default), ``"hnsw"`` or ``"ivf"`` (approximate, for millions of items).
        hnsw_m: HNSW graph degree.
        ef_search: HNSW search breadth (raised to at least ``top_f`` per call).
        nlist: IVF cluster count; default ``clip(4 * sqrt(M), 1, M // 39)``.
        nprobe: IVF clusters visited per query.
        seed: seed of the IVF k-means (FAISS's default, so builds are reproducible).
    """

    def __init__(
        self,
        item_embeddings: np.ndarray | torch.Tensor,
        index: IndexKind = "flat",
        hnsw_m: int = 32,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
        seed: int = KMEANS_SEED,
    ) -> None:
        items = _as_float32_matrix(item_embeddings, "item_embeddings")
        if items.shape[0] == 0:
            raise ValueError("item_embeddings is empty: the catalogue has no items")
        faiss.normalize_L2(items)
        self._items = items
        self.num_items, self.dim = items.shape
        self.index_kind = index
        self.ef_search = int(ef_search)
        if index == "ivf" and nlist is None:
            nlist = int(min(max(1, round(4 * math.sqrt(self.num_items))), max(1, self.num_items // 39)))
        # Any: FAISS's Python classes do not type the subclass attributes (hnsw.efSearch) search() sets
        self.index: Any = inner_product_index(
            items, index, hnsw_m=hnsw_m, ef_search=self.ef_search, nlist=nlist, nprobe=nprobe, seed=seed
        )
        logger.info("item localizer: %d items x %d dims, %s index", self.num_items, self.dim, index)

    @property
    def item_embeddings(self) -> np.ndarray:
        """The L2-normalised item matrix ``float32 [M, D]`` (read it, do not modify it)."""
        return self._items

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search of already-normalised float32 queries ``[Q, D]``.

        Returns (cosines ``[Q, k]``, row indices ``int64 [Q, k]``)."""
        if self.index_kind == "hnsw":
            self.index.hnsw.efSearch = max(self.ef_search, k)
        sims, idx = self.index.search(queries, k)
        return sims, idx.astype(np.int64, copy=False)

    def _search_excluding(
        self, queries: np.ndarray, k: int, exclude: Sequence[Sequence[int]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` for the k best items of each query that are not in its ``exclude`` rows
        (``-1`` / ``-inf`` pads a query left with fewer than k items)."""
        extra = max((len(set(rows)) for rows in exclude), default=0)
        sims, idx = self.search(queries, min(k + extra, self.num_items))
        out_sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_idx = np.full((len(queries), k), -1, dtype=np.int64)
        for r, banned in enumerate(exclude):
            keep = (idx[r] >= 0) & ~np.isin(idx[r], np.asarray(list(banned), dtype=np.int64))
            n = min(k, int(keep.sum()))
            out_sims[r, :n], out_idx[r, :n] = sims[r][keep][:n], idx[r][keep][:n]
        return out_sims, out_idx

    def localize(
        self,
        queries: np.ndarray | torch.Tensor,
        top_f: int,
        temperature: float = 1.0,
        batch_size: int = 65536,
        exclude: Sequence[Sequence[int]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Localise query embeddings ``[Q, D]`` onto the catalogue.

        ``exclude`` (one list of item rows per query) keeps those items out of a query's top f: the f most
        similar items among the others are used (e.g. a session's own items, where users do not repeat).

        Returns:
            vectors: ``float32 [Q, D]``: sum over the top-f items of weight * normalised item embedding
                (``top_f == 0``: the L2-normalised queries themselves).
            top_idx: ``int64 [Q, f]`` item rows by decreasing cosine; ``-1`` where an approximate
                index found fewer than f items.
            weights: ``float32 [Q, f]`` softmax of the f cosines / temperature; rows sum to 1
                (0 at ``-1`` slots).

        A query for which an approximate index finds no item at all keeps its normalised
        embedding (weights all 0); a warning says how many.
        """
        q = _as_float32_matrix(queries, "queries")
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, item embeddings {self.dim}")
        top_f = check_setting(BuildConfig, "top_f", top_f)  # the rules of the build's settings, declared there
        temperature = check_setting(BuildConfig, "softmax_temperature", temperature)
        if top_f > self.num_items:
            raise ValueError(f"top_f={top_f} is larger than the catalogue ({self.num_items} items)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if exclude is not None and len(exclude) != len(q):
            raise ValueError(f"exclude has {len(exclude)} rows, queries {len(q)}")
        faiss.normalize_L2(q)
        n = q.shape[0]
        top_idx = np.empty((n, top_f), dtype=np.int64)
        weights = np.zeros((n, top_f), dtype=np.float32)
        if top_f == 0 or n == 0:
            return q, top_idx, weights
        vectors = np.zeros_like(q)
        empty_rows = 0
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            rows = None if exclude is None else exclude[start:stop]
            block, idx, w, has_any = self._snap(q[start:stop], top_f, temperature, rows)
            if not has_any.all():
                empty_rows += int((~has_any).sum())
                block[~has_any] = q[start:stop][~has_any]
            vectors[start:stop] = block
            top_idx[start:stop] = idx
            weights[start:stop] = w
        if empty_rows:
            message = "%d of %d queries found no item in the %s index; kept their own embedding"
            logger.warning(message, empty_rows, n, self.index_kind)
        return vectors, top_idx, weights

    def _snap(
        self, q: np.ndarray, top_f: int, temperature: float, exclude: Sequence[Sequence[int]] | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One batch of normalised queries: the weighted sums ``[b, D]``, the top-f rows and weights, and which
        queries found any item (``exclude``: the batch's rows kept out of each top f)."""
        if exclude is None:
            sims, idx = self.search(q, top_f)
        else:
            sims, idx = self._search_excluding(q, top_f, exclude)
        valid = idx >= 0
        logits = np.where(valid, sims / np.float32(temperature), -np.inf)  # [b, f]
        row_max = logits.max(axis=1, keepdims=True)
        has_any = np.isfinite(row_max[:, 0])
        expo = np.exp(logits - np.where(np.isfinite(row_max), row_max, 0.0), dtype=np.float32)
        expo[~valid] = 0.0
        w = expo / np.maximum(expo.sum(axis=1, keepdims=True), np.finfo(np.float32).tiny)
        safe = np.where(valid, idx, 0)
        block = np.zeros((len(q), self.dim), dtype=np.float32)
        for j in range(top_f):  # one [b, D] gather per rank keeps memory at O(b * D)
            block += w[:, j : j + 1] * self._items[safe[:, j]]
        return block, idx, w, has_any
