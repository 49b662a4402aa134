"""Tests for llm4sbr_adapter.losses: values checked against hand arithmetic."""

from __future__ import annotations

import math

import pytest
import torch

from llm4sbr_adapter.losses import (
    AlignUniformLoss,
    InfoNCELoss,
    align_uniform_terms,
    normalized_align_uniform_terms,
    pairwise_sq_dists,
    uniformity,
)


# --------------------------------------------------------------------------- AlignUniformLoss
def test_align_uniform_matches_hand_computation():
    # Unnormalised rows on purpose: after L2 normalisation
    #   x = [(1,0), (0,1), (-1,0)],  y = [(1,0), (1,0), (0,1)].
    x = torch.tensor([[3.0, 0.0], [0.0, 2.0], [-0.5, 0.0]])
    y = torch.tensor([[7.0, 0.0], [1.0, 0.0], [0.0, 4.0]])
    out = AlignUniformLoss(t=2.0).components(x, y)

    # alignment: ||x_i - y_i||^2 = 0, 2, 2  -> mean 4/3
    align = (0.0 + 2.0 + 2.0) / 3
    # uniformity(x): pair distances^2 (0,1)=2, (0,2)=4, (1,2)=2
    ux = math.log((math.exp(-2 * 2) + math.exp(-2 * 4) + math.exp(-2 * 2)) / 3)
    # uniformity(y): (0,1)=0, (0,2)=2, (1,2)=2
    uy = math.log((math.exp(0.0) + math.exp(-2 * 2) + math.exp(-2 * 2)) / 3)
    uniform = (ux + uy) / 2

    assert out["align"].item() == pytest.approx(align, abs=1e-6)
    assert out["uniform"].item() == pytest.approx(uniform, abs=1e-6)
    assert out["loss"].item() == pytest.approx(align + uniform, abs=1e-6)


def test_forward_returns_the_loss_tensor_like_every_torch_loss():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 8, generator=g, requires_grad=True), torch.randn(16, 8, generator=g)
    loss_fn = AlignUniformLoss(t=2.0, uniform_weight=0.7)
    loss = loss_fn(x, y)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.requires_grad
    parts = loss_fn.components(x, y)
    assert set(parts) == {"align", "uniform", "loss"}
    assert torch.equal(loss, parts["loss"]) and torch.equal(loss, parts["align"] + 0.7 * parts["uniform"])
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_the_loss_is_negative_once_rows_spread_out():
    # perfectly aligned pairs (align 0) spread over the circle: uniformity < 0, so the loss is too
    angles = torch.arange(8) * (2 * math.pi / 8)
    x = torch.stack([angles.cos(), angles.sin()], dim=1)
    loss = AlignUniformLoss(t=2.0)(x, x.clone())
    assert loss.item() < 0
    assert loss.item() >= -4 * 2.0  # bounded below by -4 t * uniform_weight (d^2 <= 4 on the sphere)


def test_uniform_weight_and_temperature():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    out = AlignUniformLoss(t=3.0, uniform_weight=0.5).components(x, y)
    # align: both rows distance^2 2 -> 2; one pair each at distance^2 2 -> log(exp(-6)) = -6
    assert out["align"].item() == pytest.approx(2.0, abs=1e-6)
    assert out["uniform"].item() == pytest.approx(-6.0, abs=1e-5)
    assert out["loss"].item() == pytest.approx(2.0 + 0.5 * -6.0, abs=1e-5)


def test_identical_vectors_are_stable_with_finite_gradients():
    x = torch.ones(64, 8, requires_grad=True)
    y = torch.ones(64, 8, requires_grad=True)
    out = AlignUniformLoss(t=2.0).components(x, y)
    # all pairs coincide: mean exp(0) = 1 -> log 1 = 0; aligned exactly -> 0
    assert out["align"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["uniform"].item() == pytest.approx(0.0, abs=1e-6)
    out["loss"].backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


def test_far_apart_vectors_large_t_do_not_underflow():
    # exp(-t * 4) with t = 500 underflows to 0 in float32; logsumexp must still give -2000.
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    out = AlignUniformLoss(t=500.0).components(x, x.clone())
    assert torch.isfinite(out["loss"])
    assert out["uniform"].item() == pytest.approx(-2000.0, rel=1e-6)


def test_zero_rows_do_not_produce_nan():
    x = torch.zeros(3, 4, requires_grad=True)
    y = torch.randn(3, 4)
    out = AlignUniformLoss().components(x, y)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and torch.isfinite(x.grad).all()


def test_batch_of_one_has_zero_uniformity_and_real_alignment():
    x = torch.tensor([[1.0, 0.0]], requires_grad=True)
    y = torch.tensor([[0.0, 2.0]])
    out = AlignUniformLoss().components(x, y)
    assert out["uniform"].item() == 0.0
    assert out["align"].item() == pytest.approx(2.0, abs=1e-6)
    assert out["loss"].item() == pytest.approx(2.0, abs=1e-6)
    out["loss"].backward()
    assert x.grad.abs().sum() > 0


def test_empty_batch_and_bad_shapes_raise():
    loss = AlignUniformLoss()
    with pytest.raises(ValueError, match="batch size 0"):
        loss(torch.zeros(0, 4), torch.zeros(0, 4))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 4\)"):
        loss(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="batch, d"):
        loss(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError):
        AlignUniformLoss(t=0.0)


def test_pairwise_sq_dists_agrees_with_explicit_differences():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    # (0,1): 25, (0,2): 2, (1,2): 4 + 9 = 13
    assert pairwise_sq_dists(z).tolist() == pytest.approx([25.0, 2.0, 13.0], abs=1e-5)
    assert uniformity(z[:1]).item() == 0.0


def test_uniformity_prefers_spread_out_points():
    spread = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    bunched = torch.tensor([[1.0, 0.0], [0.99, 0.14], [0.98, 0.2], [0.97, 0.24]])
    lo = AlignUniformLoss().components(spread, spread)["uniform"]
    hi = AlignUniformLoss().components(bunched, bunched)["uniform"]
    assert lo < hi


# --------------------------------------------------------------------------- InfoNCELoss
def test_infonce_matches_hand_computation():
    anchor = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    positive = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    tau = 0.5
    # cosines: a0.p0 = 1, a0.p1 = 1/sqrt2, a1.p0 = 0, a1.p1 = 1/sqrt2
    c = 1 / math.sqrt(2)
    row0 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(c / tau)))
    row1 = -math.log(math.exp(c / tau) / (math.exp(0.0) + math.exp(c / tau)))
    got = InfoNCELoss(temperature=tau)(anchor, positive)
    assert got.item() == pytest.approx((row0 + row1) / 2, abs=1e-5)


def test_infonce_with_hard_negatives_matches_hand_computation():
    anchor = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positive = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # row 0 hard negatives: cos -1 and 0; row 1: cos 1 (a duplicate of the anchor) and -1
    hard = torch.tensor([[[-2.0, 0.0], [0.0, 5.0]], [[0.0, 3.0], [0.0, -1.0]]])
    tau = 0.2
    e = lambda s: math.exp(s / tau)  # noqa: E731
    row0 = -math.log(e(1) / (e(1) + e(0) + e(-1) + e(0)))
    row1 = -math.log(e(1) / (e(0) + e(1) + e(1) + e(-1)))
    got = InfoNCELoss(temperature=tau)(anchor, positive, hard)
    assert got.item() == pytest.approx((row0 + row1) / 2, abs=1e-5)
    # hard negatives must make the loss larger than in-batch negatives alone
    assert got > InfoNCELoss(temperature=tau)(anchor, positive)


def test_infonce_symmetric_averages_both_directions():
    anchor = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    positive = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    tau = 1.0
    c = 1 / math.sqrt(2)
    # anchor -> positive: row0 logits [1, 0], row1 logits [c, c]
    fwd = (-math.log(math.e / (math.e + 1)) + math.log(2)) / 2
    # positive -> anchor: p0 vs anchors [1, c]; p1 vs anchors [0, c]
    bwd = (-math.log(math.exp(1) / (math.exp(1) + math.exp(c))) - math.log(math.exp(c) / (1 + math.exp(c)))) / 2
    got = InfoNCELoss(temperature=tau, symmetric=True)(anchor, positive)
    assert got.item() == pytest.approx((fwd + bwd) / 2, abs=1e-5)


def test_infonce_bad_hard_negative_shape_raises():
    with pytest.raises(ValueError, match="hard_negatives"):
        InfoNCELoss()(torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(temperature=0.0)


def test_infonce_gradients_flow():
    a = torch.randn(4, 5, requires_grad=True)
    p = torch.randn(4, 5, requires_grad=True)
    n = torch.randn(4, 2, 5, requires_grad=True)
    InfoNCELoss(symmetric=True)(a, p, n).backward()
    for g in (a.grad, p.grad, n.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


# --------------------------------------------------------------------------- stacked uniformity (issue 17)
def _uniformity_by_pairs(z: torch.Tensor, t: float) -> torch.Tensor:
    """The definition, one pair at a time: log of the mean of exp(-t * |z_i - z_j|^2) over i < j."""
    n = z.shape[0]
    terms = [torch.exp(-t * (z[i] - z[j]).pow(2).sum()) for i in range(n) for j in range(i + 1, n)]
    return torch.log(torch.stack(terms).mean())


def test_stacked_uniformity_equals_the_pairwise_definition_block_by_block_with_gradients():
    z = torch.randn(2, 3, 7, 5, dtype=torch.float64, requires_grad=True)
    got = uniformity(z, 1.5)
    assert got.shape == (2, 3)
    (got * torch.arange(1.0, 7.0, dtype=torch.float64).view(2, 3)).sum().backward()
    fast_grad = z.grad.clone()
    z.grad = None
    want = torch.stack([_uniformity_by_pairs(z[a, b], 1.5) for a in range(2) for b in range(3)]).view(2, 3)
    (want * torch.arange(1.0, 7.0, dtype=torch.float64).view(2, 3)).sum().backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(fast_grad, z.grad)


def test_align_uniform_terms_of_a_stack_equal_the_loss_of_each_pair():
    x, y = torch.randn(3, 6, 4), torch.randn(3, 6, 4)
    pairs = torch.nn.functional.normalize(torch.stack([x, y]), dim=-1)
    terms = align_uniform_terms(pairs, 2.0, 0.7)
    loss = AlignUniformLoss(t=2.0, uniform_weight=0.7)
    for k in range(3):
        one = loss.components(x[k], y[k])
        for name in ("align", "uniform", "loss"):
            torch.testing.assert_close(terms[name][k], one[name])


@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (2, 9, 4), (2, 2, 1, 3, 6)])
def test_normalized_align_uniform_terms_equal_the_reference_with_gradients(shape):
    """The hand-written backward against autograd through F.normalize + align_uniform_terms (the definition)."""
    torch.manual_seed(3)
    raw = torch.randn(*shape, dtype=torch.float64)
    raw[1, ..., 0, :] = raw[0, ..., 0, :] * 3.0  # a perfectly aligned pair
    raw[0, ..., -1, :] = 0.0  # a zero row (its norm is clamped at eps)
    weights = {k: torch.rand(shape[1:-2], dtype=torch.float64) for k in ("align", "uniform", "loss")}
    results = []
    for fn in (
        lambda r: align_uniform_terms(torch.nn.functional.normalize(r, dim=-1), 1.7, 0.6),
        lambda r: normalized_align_uniform_terms(r, 1.7, 0.6),
    ):
        r = raw.clone().requires_grad_()
        terms = fn(r)
        sum((terms[k] * w).sum() for k, w in weights.items()).backward()
        results.append((terms, r.grad))
    (want, want_grad), (got, got_grad) = results
    for k in ("align", "uniform", "loss"):
        torch.testing.assert_close(got[k], want[k])
    torch.testing.assert_close(got_grad, want_grad)
    assert got_grad.abs().sum() > 0
