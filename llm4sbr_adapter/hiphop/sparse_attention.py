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

Both thresholds are found exactly by sorting (``O(n log n)``) and every operation is an
ordinary differentiable torch op, so autograd yields the correct Jacobian (the threshold is
piecewise smooth in ``z``: the support is locally constant).

Every function takes an optional boolean ``mask`` (``True`` = valid entry). Masked entries get
exactly zero weight; a row whose entries are all masked returns all zeros (not NaN).
"""

from __future__ import annotations

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
    if m is not None:
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
    n = z.shape[-1]
    z_sorted, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, n + 1, device=z.device, dtype=z.dtype)
    cumsum = z_sorted.cumsum(dim=-1)
    in_support = 1.0 + k * z_sorted > cumsum  # true for a prefix of the sorted entries
    support_size = in_support.sum(dim=-1, keepdim=True).clamp(min=1)
    tau = (cumsum.gather(-1, support_size - 1) - 1.0) / support_size.to(z.dtype)
    p = torch.clamp(z - tau, min=0.0)
    return _finish(p, m, empty, dim)


def entmax15(scores: Tensor, dim: int = -1, mask: Tensor | None = None) -> Tensor:
    """1.5-entmax of ``scores`` along ``dim``: ``p = max(scores / 2 - tau, 0) ** 2``, summing to 1.

    The threshold is exact: with ``x`` the halved scores sorted in decreasing order, for each
    candidate support size ``k`` the threshold solving ``sum_{i<=k} (x_i - tau)^2 = 1`` is
    ``tau_k = mean_k - sqrt((1 - k * var_k) / k)`` (``mean_k``/``var_k`` of the top ``k``); the
    support is the largest ``k`` with ``tau_k <= x_k``.

    Shapes and ``mask`` as in :func:`sparsemax`.
    """
    z, m, empty = _prepare(scores, mask, dim)
    x = z / 2.0
    n = x.shape[-1]
    x_sorted, _ = torch.sort(x, dim=-1, descending=True)
    k = torch.arange(1, n + 1, device=x.device, dtype=x.dtype)
    mean = x_sorted.cumsum(dim=-1) / k
    mean_sq = (x_sorted * x_sorted).cumsum(dim=-1) / k
    var_k = k * (mean_sq - mean * mean)  # = sum over top-k of (x_i - mean_k)^2
    delta = (1.0 - var_k) / k
    # sqrt only where delta > 0: sqrt'(0) is infinite, and 0 * inf in the backward pass would put
    # NaN into gradients of candidates that are never selected.
    positive = delta > 0
    root = torch.sqrt(torch.where(positive, delta, torch.ones_like(delta))) * positive
    tau_candidates = mean - root
    in_support = tau_candidates <= x_sorted
    support_size = in_support.sum(dim=-1, keepdim=True).clamp(min=1)
    tau = tau_candidates.gather(-1, support_size - 1)
    p = torch.clamp(x - tau, min=0.0) ** 2
    return _finish(p, m, empty, dim)


def topk_softmax(scores: Tensor, k: int, dim: int = -1, mask: Tensor | None = None) -> Tensor:
    """Softmax over the ``k`` largest (valid) scores along ``dim``; all other entries are exactly 0.

    Shapes and ``mask`` as in :func:`sparsemax`; ``k`` larger than the axis keeps every entry.
    """
    if k < 1:
        raise ValueError(f"topk_softmax needs k >= 1, got {k}")
    z, m, empty = _prepare(scores, mask, dim)
    if m is not None:
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
        if m is not None:
            z = torch.where(m, z, torch.full_like(z, float("-inf")))
            z = torch.where(empty, torch.zeros_like(z), z)
        return _finish(torch.softmax(z, dim=-1), m, empty, dim)
    raise ValueError(f"unknown attention normaliser {kind!r}; choose one of {SPARSE_NORMALISERS}")
