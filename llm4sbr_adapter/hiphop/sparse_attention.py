"""Sparse normalisers for attention weights: sparsemax, 1.5-entmax and top-k softmax.

All three map a score vector to a probability vector (non-negative, sums to 1) that can hold
exact zeros, so an unrelated neighbour receives no weight at all rather than a small one.

* :func:`sparsemax` is the Euclidean projection onto the probability simplex:
  ``p = max(z - tau, 0)`` with the threshold ``tau`` chosen so that ``p`` sums to 1.
* :func:`entmax15` is the ``alpha = 1.5`` member of the entmax family:
  ``p = max(z / 2 - tau, 0) ** 2``, again with ``tau`` fixed by the sum; it is smoother than
  sparsemax (its gradient is continuous) and usually less sparse.
* :func:`topk_softmax` keeps the ``k`` largest scores, applies softmax over them and gives the
  rest exact zeros.

sparsemax and 1.5-entmax are computed by the ``entmax`` package (its exact sort-based thresholds
and closed-form backward passes); this module adds the masking. Against the hand-written version
it replaced, the outputs are bitwise equal and the gradients equal (sparsemax) or within a few ULP
(1.5-entmax: an analytic backward instead of autograd through the sort); ``tests/hiphop/test_hiphop_sparse.py``
keeps that version as its reference.

Every function takes an optional boolean ``mask`` (``True`` = valid entry). Masked entries get
exactly zero weight; a row whose entries are all masked returns all zeros (not NaN).
"""

from __future__ import annotations

import entmax
import torch
from torch import Tensor

__all__ = ["sparsemax", "entmax15", "topk_softmax", "sparse_normalise", "SPARSE_NORMALISERS"]

SPARSE_NORMALISERS = ("sparsemax", "entmax15", "topk", "softmax")


def _prepare(scores: Tensor, mask: Tensor | None, dim: int) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Move ``dim`` last, shift by the row maximum and push masked entries safely out of the support.

    A masked entry is replaced by ``row_max - 10`` (after shifting: ``-10``): for sparsemax any
    entry below ``max - 1`` is outside the support, for 1.5-entmax any entry below ``max - 2``,
    so the replacement always gets weight 0 without using ``-inf`` (which would turn cumulative
    sums into NaN).
    """
    z = scores.movedim(dim, -1)
    if mask is None:
        return z - z.max(dim=-1, keepdim=True).values.detach(), None, None
    if mask.shape != scores.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} differs from scores shape {tuple(scores.shape)}")
    m = mask.movedim(dim, -1).to(torch.bool)
    neg = torch.finfo(z.dtype).min
    row_max = torch.where(m, z, torch.full_like(z, neg)).max(dim=-1, keepdim=True).values.detach()
    empty = ~m.any(dim=-1, keepdim=True)
    row_max = torch.where(empty, torch.zeros_like(row_max), row_max)
    z = torch.where(m, z - row_max, torch.full_like(z, -10.0))
    return z, m, empty


def _finish(p: Tensor, m: Tensor | None, empty: Tensor | None, dim: int) -> Tensor:
    if m is not None and empty is not None:  # _prepare returns both or neither
        p = torch.where(m & ~empty, p, torch.zeros_like(p))
    return p.movedim(-1, dim)


def sparsemax(scores: Tensor, dim: int = -1, mask: Tensor | None = None) -> Tensor:
    """Sparsemax of ``scores`` along ``dim``.

    Args:
        scores: any shape, e.g. ``[batch, num_neighbours]``.
        dim: the axis that is normalised.
        mask: optional bool tensor of ``scores``' shape, ``True`` = valid.

    Returns:
        Tensor of ``scores``' shape: non-negative, sums to 1 along ``dim`` (0 for fully masked rows),
        with exact zeros outside the support.
    """
    z, m, empty = _prepare(scores, mask, dim)
    return _finish(entmax.sparsemax(z, dim=-1), m, empty, dim)


def entmax15(scores: Tensor, dim: int = -1, mask: Tensor | None = None) -> Tensor:
    """1.5-entmax of ``scores`` along ``dim``: ``p = max(scores / 2 - tau, 0) ** 2``, summing to 1.

    The threshold is exact (sorting, as in :func:`sparsemax`). Shapes and ``mask`` as in :func:`sparsemax`.
    """
    z, m, empty = _prepare(scores, mask, dim)
    return _finish(entmax.entmax15(z, dim=-1), m, empty, dim)


def topk_softmax(scores: Tensor, k: int, dim: int = -1, mask: Tensor | None = None) -> Tensor:
    """Softmax over the ``k`` largest (valid) scores along ``dim``; all other entries are exactly 0.

    Shapes and ``mask`` as in :func:`sparsemax`; ``k`` larger than the axis keeps every entry.
    """
    if k < 1:
        raise ValueError(f"topk_softmax needs k >= 1, got {k}")
    z, m, empty = _prepare(scores, mask, dim)
    if m is not None and empty is not None:  # _prepare returns both or neither
        z = torch.where(m, z, torch.full_like(z, float("-inf")))
        z = torch.where(empty, torch.zeros_like(z), z)
    n = z.shape[-1]
    if k < n:
        kth = torch.topk(z, k, dim=-1).values[..., -1:]
        z = torch.where(z >= kth, z, torch.full_like(z, float("-inf")))
    p = torch.softmax(z, dim=-1)
    return _finish(p, m, empty, dim)


def sparse_normalise(
    scores: Tensor, kind: str, *, dim: int = -1, mask: Tensor | None = None, k: int | None = None
) -> Tensor:
    """Dispatch on ``kind`` in :data:`SPARSE_NORMALISERS` (``"softmax"`` is the dense baseline).

    ``k`` is required for ``"topk"``.
    """
    if kind == "sparsemax":
        return sparsemax(scores, dim=dim, mask=mask)
    if kind == "entmax15":
        return entmax15(scores, dim=dim, mask=mask)
    if kind == "topk":
        if k is None:
            raise ValueError("sparse_normalise(kind='topk') needs k")
        return topk_softmax(scores, k, dim=dim, mask=mask)
    if kind == "softmax":
        z, m, empty = _prepare(scores, mask, dim)
        if m is not None and empty is not None:  # _prepare returns both or neither
            z = torch.where(m, z, torch.full_like(z, float("-inf")))
            z = torch.where(empty, torch.zeros_like(z), z)
        return _finish(torch.softmax(z, dim=-1), m, empty, dim)
    raise ValueError(f"unknown attention normaliser {kind!r}; choose one of {SPARSE_NORMALISERS}")
