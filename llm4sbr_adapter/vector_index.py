"""The one place FAISS indexes are made: exact flat, HNSW or inverted-file (IVF), all inner product.

Both users search L2-normalised float32 rows, where inner product is cosine similarity: the intent
localiser of stage one (:mod:`llm4sbr_adapter.offline.localize`, item titles) and HIPHOP's neighbour
bank (:mod:`llm4sbr_adapter.hiphop.neighbours`, training sessions). Normalising is the caller's job.

IVF trains a k-means over the vectors; its seed is set here explicitly (:data:`KMEANS_SEED`), so two
builds over the same vectors give the same clusters and the same search results.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .faiss_import import faiss

__all__ = ["INDEX_KINDS", "KMEANS_SEED", "IndexKind", "inner_product_index"]

IndexKind = Literal["flat", "hnsw", "ivf"]
INDEX_KINDS: tuple[str, ...] = ("flat", "hnsw", "ivf")

# FAISS's own default ClusteringParameters.seed, written down so an upstream change cannot move results.
KMEANS_SEED = 1234


def inner_product_index(
    vectors: np.ndarray,
    kind: IndexKind = "flat",
    *,
    hnsw_m: int = 32,
    ef_search: int = 128,
    nlist: int | None = None,
    nprobe: int = 16,
    seed: int = KMEANS_SEED,
) -> faiss.Index:
    """A FAISS inner-product index holding ``vectors`` (``float32 [n, d]``, C-contiguous).

    Args:
        vectors: the rows to search, usually L2-normalised (then scores are cosines).
        kind: ``"flat"`` (exact), ``"hnsw"`` (graph) or ``"ivf"`` (inverted file over k-means clusters).
        hnsw_m: HNSW graph degree (``efConstruction`` is ``max(40, 2 * hnsw_m)``).
        ef_search: HNSW search breadth.
        nlist: IVF cluster count, required for ``"ivf"``: ``1 <= nlist <= n``.
        nprobe: IVF clusters visited per query (clipped to ``1..nlist``).
        seed: seed of the IVF k-means.
    """
    n, dim = vectors.shape
    index: faiss.Index
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = max(40, 2 * int(hnsw_m))
        hnsw.hnsw.efSearch = int(ef_search)
        index = hnsw
    elif kind == "ivf":
        if nlist is None or not 1 <= nlist <= n:
            raise ValueError(f"nlist must be in 1..{n} (number of vectors), got {nlist}")
        # FAISS keeps the quantizer alive with the index (the constructor records a reference to it)
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, int(nlist), faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = int(seed)
        ivf.train(vectors)
        ivf.nprobe = int(min(max(1, nprobe), nlist))
        index = ivf
    else:
        raise ValueError(f"index must be one of {INDEX_KINDS}, got {kind!r}")
    index.add(vectors)
    return index
