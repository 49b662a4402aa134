"""Sparse attention normalisers: simplex outputs with exact zeros, checked against bisection references
and against the hand-written sort-based version the ``entmax`` package replaced."""

import pytest
import torch

from llm4sbr_adapter.hiphop import sparse_attention
from llm4sbr_adapter.hiphop.sparse_attention import entmax15, sparse_normalise, sparsemax, topk_softmax


# The hand-written thresholds used before the entmax package (kept here only as the reference).
def handwritten_sparsemax(z: torch.Tensor) -> torch.Tensor:
    n = z.shape[-1]
    z_sorted, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, n + 1, device=z.device, dtype=z.dtype)
    cumsum = z_sorted.cumsum(dim=-1)
    in_support = 1.0 + k * z_sorted > cumsum
    support_size = in_support.sum(dim=-1, keepdim=True).clamp(min=1)
    tau = (cumsum.gather(-1, support_size - 1) - 1.0) / support_size.to(z.dtype)
    return torch.clamp(z - tau, min=0.0)


def handwritten_entmax15(z: torch.Tensor) -> torch.Tensor:
    x = z / 2.0
    n = x.shape[-1]
    x_sorted, _ = torch.sort(x, dim=-1, descending=True)
    k = torch.arange(1, n + 1, device=x.device, dtype=x.dtype)
    mean = x_sorted.cumsum(dim=-1) / k
    mean_sq = (x_sorted * x_sorted).cumsum(dim=-1) / k
    delta = (1.0 - k * (mean_sq - mean * mean)) / k
    positive = delta > 0
    root = torch.sqrt(torch.where(positive, delta, torch.ones_like(delta))) * positive
    tau_candidates = mean - root
    support_size = (tau_candidates <= x_sorted).sum(dim=-1, keepdim=True).clamp(min=1)
    tau = tau_candidates.gather(-1, support_size - 1)
    return torch.clamp(x - tau, min=0.0) ** 2


def handwritten(kind: str, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    z, m, empty = sparse_attention._prepare(scores, mask, -1)
    p = handwritten_sparsemax(z) if kind == "sparsemax" else handwritten_entmax15(z)
    return sparse_attention._finish(p, m, empty, -1)


@pytest.mark.parametrize("kind", ["sparsemax", "entmax15"])
@pytest.mark.parametrize("dtype, grad_tol", [(torch.float32, 1e-6), (torch.float64, 1e-14)])
@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0])
def test_entmax_package_matches_the_handwritten_version(kind, dtype, grad_tol, scale):
    g = torch.Generator().manual_seed(int(scale * 10))
    scores = torch.randn(256, 17, generator=g, dtype=dtype) * scale
    mask = torch.rand(256, 17, generator=g) > 0.3
    mask[0] = False  # one row with nothing valid
    upstream = torch.randn(256, 17, generator=g, dtype=dtype)
    new_in, old_in = scores.clone().requires_grad_(), scores.clone().requires_grad_()
    new, old = sparse_normalise(new_in, kind, mask=mask), handwritten(kind, old_in, mask)
    assert torch.equal(new, old)  # forward: bitwise the same
    (new * upstream).sum().backward()
    (old * upstream).sum().backward()
    assert torch.allclose(new_in.grad, old_in.grad, rtol=0, atol=grad_tol)  # backward: within a few ULP


def _bisection(z: torch.Tensor, p_of_tau) -> torch.Tensor:
    """Solve sum(p_of_tau(x, tau)) = 1 for tau by bisection (an independent reference).

    Both maps below have tau in [max(x) - 1, max(x)] for x = z (sparsemax) or z / 2 (entmax15).
    """
    hi = z.max(dim=-1, keepdim=True).values
    lo = hi - 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        too_big = p_of_tau(z, mid).sum(-1, keepdim=True) > 1
        lo = torch.where(too_big, mid, lo)
        hi = torch.where(too_big, hi, mid)
    return p_of_tau(z, (lo + hi) / 2)


def sparsemax_ref(z):
    return _bisection(z, lambda z, t: (z - t).clamp(min=0))


def entmax15_ref(z):
    return _bisection(z / 2, lambda x, t: (x - t).clamp(min=0) ** 2)


@pytest.mark.parametrize("fn,ref", [(sparsemax, sparsemax_ref), (entmax15, entmax15_ref)])
def test_matches_reference_and_is_sparse(fn, ref):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 9, generator=g, dtype=torch.float64) * 2
    p = fn(z)
    assert torch.allclose(p, ref(z), atol=1e-9)
    assert torch.allclose(p.sum(-1), torch.ones(64, dtype=torch.float64))
    assert (p >= 0).all()
    assert (p == 0).any(dim=-1).float().mean() > 0.5  # most rows have exact zeros at this scale


def test_small_known_values():
    z = torch.tensor([[1.0, 0.8, -1.0]])
    # sparsemax: support {0, 1}, tau = (1.8 - 1) / 2 = 0.4 -> [0.6, 0.4, 0]
    assert torch.allclose(sparsemax(z), torch.tensor([[0.6, 0.4, 0.0]]))
    assert sparsemax(z)[0, 2].item() == 0.0
    # entmax15 of two equal scores is uniform over them, zero elsewhere
    e = entmax15(torch.tensor([[2.0, 2.0, -5.0]]))
    assert torch.allclose(e, torch.tensor([[0.5, 0.5, 0.0]]))


@pytest.mark.parametrize("fn", [sparsemax, entmax15])
def test_gradcheck(fn):
    z = (torch.randn(3, 6, dtype=torch.float64) * 2).requires_grad_()
    assert torch.autograd.gradcheck(fn, (z,))


@pytest.mark.parametrize("kind", ["sparsemax", "entmax15", "topk", "softmax"])
def test_mask_gives_zero_weight_and_empty_rows_are_zero(kind):
    z = torch.tensor([[5.0, 1.0, 0.5, 0.2], [0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0]])
    mask = torch.tensor([[False, True, True, True], [True, True, True, True], [False, False, False, False]])
    p = sparse_normalise(z, kind, mask=mask, k=2)
    assert p[0, 0] == 0.0  # the largest score is masked out: still exactly zero
    assert torch.allclose(p[:2].sum(-1), torch.ones(2))
    assert (p[2] == 0).all() and not torch.isnan(p).any()


def test_topk_softmax_keeps_k():
    z = torch.randn(10, 8)
    p = topk_softmax(z, 3)
    assert ((p > 0).sum(-1) == 3).all()
    assert torch.allclose(p.sum(-1), torch.ones(10))


def test_other_dim():
    z = torch.randn(5, 4, 3)
    assert torch.allclose(entmax15(z, dim=1), entmax15(z.transpose(1, 2), dim=-1).transpose(1, 2))
