"""Representation losses used by the intent enhancer and the HIPHOP modules.

* :class:`AlignUniformLoss` -- alignment + uniformity on the unit hypersphere (DirectAU,
  Wang et al. 2022). LLM4SBR uses it to pull each projected intent towards the behaviour
  embedding it is paired with while keeping both spread out.
* :class:`InfoNCELoss` -- contrastive cross entropy over cosine similarities with in-batch
  negatives and optional per-row hard negatives.

Both take paired rows: row ``i`` of the first input belongs with row ``i`` of the second.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AlignUniformLoss",
    "InfoNCELoss",
    "align_uniform_terms",
    "l2_normalize",
    "normalized_align_uniform_terms",
    "pairwise_sq_dists",
    "sq_dist_matrix",
    "uniformity",
]


def _check_pair(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str]) -> None:
    a, b = names
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{a} and {b} must be tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.dim() != 2 or y.dim() != 2:
        raise ValueError(f"{a} and {b} must be [batch, d], got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape != y.shape:
        raise ValueError(f"{a} has shape {tuple(x.shape)} but {b} has shape {tuple(y.shape)}; rows must be paired")
    if x.shape[0] == 0:
        raise ValueError(f"{a} and {b} are empty (batch size 0); a loss needs at least one row")


def _row_scale(x: torch.Tensor) -> torch.Tensor:
    """Each row's largest magnitude (1 for an all-zero row), ``[..., 1]``: dividing by it first keeps the
    squares of an L2 norm inside the float range for any finite input scale (1e20 overflows, 1e-30 underflows)."""
    scale = x.detach().abs().amax(dim=-1, keepdim=True)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``F.normalize(x, dim=-1, eps=eps)`` that is right for any finite scale of ``x``: each row is divided by
    its largest magnitude first (all-zero rows stay zero)."""
    return F.normalize(x / _row_scale(x), dim=-1, eps=eps)


def pairwise_sq_dists(z: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances of all pairs ``i < j`` of rows of ``z``.

    Args:
        z: ``[batch, d]``.

    Returns:
        ``[batch * (batch - 1) / 2]`` in the order of ``torch.triu_indices(batch, batch, 1)``.

    The upper triangle of :func:`sq_dist_matrix`.
    """
    n = z.shape[0]
    i, j = torch.triu_indices(n, n, offset=1, device=z.device)
    return sq_dist_matrix(z)[i, j]


def sq_dist_matrix(z: torch.Tensor) -> torch.Tensor:
    """``[..., batch, batch]`` squared Euclidean distances between the rows of each ``[..., batch, d]`` block.

    Computed from the Gram matrix (``|a|^2 + |b|^2 - 2 a.b``, clamped at 0, one ``baddbmm``) rather than
    with ``torch.pdist``: pdist differentiates through a square root, whose gradient is infinite when two
    rows coincide, and the Gram form needs no ``[pairs, d]`` difference tensor.
    """
    sq_norm = z.pow(2).sum(dim=-1)
    base = sq_norm.unsqueeze(-1) + sq_norm.unsqueeze(-2)
    if z.dim() == 2:
        return torch.addmm(base, z, z.t(), alpha=-2.0).clamp_min(0.0)
    flat = z.reshape(-1, *z.shape[-2:])
    gram = torch.baddbmm(base.reshape(-1, *base.shape[-2:]), flat, flat.transpose(1, 2), alpha=-2.0)
    return gram.clamp_min(0.0).reshape(base.shape)


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """``log(mean over pairs i<j of exp(-t * ||z_i - z_j||^2))`` for ``z`` ``[batch, d]``.

    ``z`` may also be a stack ``[..., batch, d]`` of blocks: the result is then ``[...]``, one value per
    block, computed with one batched matrix product (the enhancer stacks all its perspectives).
    Evaluated over the whole ``batch x batch`` matrix of ``-t * d2`` (one ``baddbmm`` from the Gram
    matrix) with its diagonal set to ``-inf``: ``logsumexp - log(batch * (batch - 1))``, every pair counted
    twice so the mean is the one over ``i < j``. That needs no gather of the upper triangle and few passes
    over the matrix, never overflows and never takes the log of zero. (Rounding can make a ``d2`` of two
    equal rows a hair below 0; unlike :func:`sq_dist_matrix` it is not clamped here, which changes the
    result by no more than the rounding itself.) With fewer than two rows there are no pairs and the
    result is ``0``. Rows are used as given (normalise them first for DirectAU's definition).
    """
    n = z.shape[-2]
    if n < 2:
        return z.new_zeros(z.shape[:-2])
    flat = z.reshape(-1, n, z.shape[-1])
    half = flat.pow(2).sum(dim=-1).mul(-t)  # -t |z_i|^2
    logits = torch.baddbmm(half.unsqueeze(-1) + half.unsqueeze(-2), flat, flat.transpose(1, 2), alpha=2.0 * t)
    logits.diagonal(dim1=-2, dim2=-1).fill_(-math.inf)  # no pair of a row with itself
    out = torch.logsumexp(logits.flatten(-2), dim=-1) - math.log(n * (n - 1))
    return out.reshape(z.shape[:-2])


def align_uniform_terms(pairs: torch.Tensor, t: float, uniform_weight: float) -> dict[str, torch.Tensor]:
    """Alignment and uniformity of paired blocks of L2-normalised rows.

    Args:
        pairs: ``[2, ..., batch, d]``: ``pairs[0]`` and ``pairs[1]`` are the paired inputs ``x`` and ``y``
            of :class:`AlignUniformLoss` (row ``i`` of one belongs with row ``i`` of the other), for every
            block of the middle dimensions at once.
        t, uniform_weight: as in :class:`AlignUniformLoss`.

    Returns:
        ``{"align", "uniform", "loss"}``, each ``[...]`` (one value per block). The uniformity terms of all
        blocks of ``x`` and ``y`` go through one :func:`uniformity` call (one batched Gram matrix).
    """
    align = (pairs[0] - pairs[1]).pow(2).sum(dim=-1).mean(dim=-1)
    both = uniformity(pairs, t)
    uniform = 0.5 * (both[0] + both[1])
    return {"align": align, "uniform": uniform, "loss": align + uniform_weight * uniform}


class _NormalizedAlignUniform(torch.autograd.Function):
    """``raw [2, P, B, d]`` -> ``(align [P], uniformity [2, P])`` of the L2-normalised rows, backward by hand.

    The same values as ``F.normalize`` + :func:`align_uniform_terms`; its backward is one ``baddbmm``
    (``d uniformity / d z_k = 2t * sum_j S_kj (z_j - z_k)`` with ``S = W + W^T``, ``W`` the softmax of the
    logits) and a few elementwise passes, where autograd would replay every op of the forward.
    Needs ``B >= 2`` and is differentiable once.
    """

    @staticmethod
    def forward(ctx, raw: torch.Tensor, t: float, eps: float):
        scale = _row_scale(raw)  # rows brought to max-abs 1 first: no overflow or underflow in the norm
        norm = (raw / scale).norm(dim=-1, keepdim=True)
        z = raw / scale / norm.clamp_min(eps)
        diff = z[0] - z[1]
        align = diff.pow(2).sum(dim=-1).mean(dim=-1)
        n, d = z.shape[-2:]
        flat = z.reshape(-1, n, d)
        half = flat.pow(2).sum(dim=-1).mul_(-t)  # -t |z_i|^2
        logits = torch.baddbmm(half.unsqueeze(-1) + half.unsqueeze(-2), flat, flat.transpose(1, 2), alpha=2.0 * t)
        logits.diagonal(dim1=-2, dim2=-1).fill_(-math.inf)
        lse = torch.logsumexp(logits, dim=(-2, -1), keepdim=True)
        weights = logits.sub_(lse).exp_()  # softmax over all pairs, in place of the logits
        ctx.save_for_backward(z, norm, scale, diff, weights)
        ctx.t, ctx.eps = t, eps
        return align, lse.reshape(z.shape[:-2]) - math.log(n * (n - 1))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_align: torch.Tensor, g_uniform: torch.Tensor):
        z, norm, scale, diff, weights = ctx.saved_tensors
        n, d = z.shape[-2:]
        flat = z.reshape(-1, n, d)
        s = weights + weights.transpose(1, 2)
        s.mul_(g_uniform.reshape(-1, 1, 1) * (2.0 * ctx.t))
        g = torch.baddbmm(flat * s.sum(dim=-1, keepdim=True), s, flat, beta=-1.0).view_as(z)
        da = diff * (g_align.unsqueeze(-1).unsqueeze(-1) * (2.0 / n))
        g[0] += da
        g[1] -= da
        # through z = raw / (scale * max(|raw / scale|, eps)): the radial part is removed only where the norm
        # was not clamped; |raw| = scale * norm (inf only where the true gradient is below float resolution)
        radial = z * (z * g).sum(dim=-1, keepdim=True).masked_fill_(norm <= ctx.eps, 0.0)
        return (g - radial) / (norm.clamp_min(ctx.eps) * scale), None, None


def normalized_align_uniform_terms(
    raw: torch.Tensor, t: float, uniform_weight: float, eps: float = 1e-12
) -> dict[str, torch.Tensor]:
    """:func:`align_uniform_terms` of ``F.normalize(raw, dim=-1, eps=eps)`` for ``raw`` ``[2, ..., batch, d]``.

    Equal values and gradients (up to rounding), computed by one autograd function with a hand-written
    backward: the enhancer's training step spends a fraction of the time autograd's replay of the
    reference takes. Batches of fewer than two rows go through the reference.
    """
    if raw.shape[-2] < 2:
        return align_uniform_terms(l2_normalize(raw, eps), t, uniform_weight)
    lead = raw.shape[1:-2]
    align, both = _NormalizedAlignUniform.apply(raw.reshape(2, -1, *raw.shape[-2:]), t, eps)
    align, both = align.reshape(lead), both.reshape(2, *lead)
    uniform = 0.5 * (both[0] + both[1])
    return {"align": align, "uniform": uniform, "loss": align + uniform_weight * uniform}


class AlignUniformLoss(nn.Module):
    """DirectAU alignment + uniformity on L2-normalised rows.

    For paired inputs ``x``, ``y`` (``[batch, d]``), after L2-normalising every row:

    * ``align = mean_i ||x_i - y_i||^2``
    * ``uniform = (uniformity(x) + uniformity(y)) / 2`` with
      ``uniformity(z) = log(mean_{i<j} exp(-t * ||z_i - z_j||^2))`` (see :func:`uniformity`)
    * ``loss = align + uniform_weight * uniform``

    **The loss may be negative.** ``align`` is in ``[0, 4]``, but ``uniform`` is the log of a mean of
    ``exp(-t * d^2) <= 1``, so it is ``<= 0`` (down to ``-4 t`` when the rows are spread apart):
    ``loss`` lies in ``[-4 t * uniform_weight, 4]`` and falls below zero once the rows spread out.
    A falling value is the signal, not its sign.

    A batch of one row has no pairs: its uniformity is defined as ``0`` (so ``loss == align``).
    An empty batch raises ``ValueError``. All-zero rows stay zero after normalisation
    (``F.normalize`` guards the division), so they do not produce NaN. Each row is divided by its largest
    magnitude before its norm is taken, so the value is right for any finite input scale (rows of 1e20 or
    1e-30 give the same loss as rows of 1).

    Args:
        t: uniformity temperature (DirectAU uses 2).
        uniform_weight: weight of the uniformity term in ``loss``.
        eps: normalisation guard passed to ``F.normalize``.

    ``forward(x, y)`` returns the scalar ``loss`` tensor, like every torch loss;
    :meth:`components` returns ``{"align", "uniform", "loss"}`` (all differentiable) for logging.
    """

    def __init__(self, t: float = 2.0, uniform_weight: float = 1.0, eps: float = 1e-12) -> None:
        super().__init__()
        if not t > 0:
            raise ValueError(f"t must be > 0, got {t}")
        if uniform_weight < 0:
            raise ValueError(f"uniform_weight must be >= 0, got {uniform_weight}")
        self.t = float(t)
        self.uniform_weight = float(uniform_weight)
        self.eps = float(eps)

    def extra_repr(self) -> str:
        return f"t={self.t}, uniform_weight={self.uniform_weight}"

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x``, ``y``: ``[batch, d]`` paired rows -> scalar ``align + uniform_weight * uniform`` (may be < 0)."""
        return self.components(x, y)["loss"]

    def components(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``, ``y``: ``[batch, d]`` paired rows -> ``{"align", "uniform", "loss"}`` scalar tensors."""
        _check_pair(x, y, ("x", "y"))
        return normalized_align_uniform_terms(torch.stack([x, y]), self.t, self.uniform_weight, self.eps)


class InfoNCELoss(nn.Module):
    """InfoNCE over cosine similarities with in-batch and optional hard negatives.

    Row ``i`` of ``anchor`` is scored against every row of ``positive`` (its own positive is the
    target; the other rows' positives are its in-batch negatives) and against its own
    ``hard_negatives[i]`` (``K`` extra negatives). Logits are cosine similarities divided by
    ``temperature``; the loss is the cross entropy with the diagonal as target, averaged over rows.

    With ``symmetric=True`` the positive -> anchor direction (each positive scored against all
    anchors, in-batch negatives only) is added and the two directions are averaged.

    Args:
        temperature: divides the cosine similarities (> 0).
        symmetric: also use the reverse direction.
        eps: normalisation guard passed to ``F.normalize``.
    """

    def __init__(self, temperature: float = 0.2, symmetric: bool = False, eps: float = 1e-12) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.symmetric = bool(symmetric)
        self.eps = float(eps)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, symmetric={self.symmetric}"

    def forward(
        self,
        anchor: torch.Tensor,
        positive: torch.Tensor,
        hard_negatives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``anchor``, ``positive``: ``[batch, d]``; ``hard_negatives``: ``[batch, K, d]`` or None.

        Returns a scalar loss.
        """
        _check_pair(anchor, positive, ("anchor", "positive"))
        a = l2_normalize(anchor, self.eps)
        p = l2_normalize(positive, self.eps)
        sim = a @ p.t() / self.temperature  # [B, B]
        logits = sim
        if hard_negatives is not None:
            b, d = anchor.shape
            if hard_negatives.dim() != 3 or hard_negatives.shape[0] != b or hard_negatives.shape[2] != d:
                raise ValueError(
                    f"hard_negatives must be [batch, K, d] = [{b}, K, {d}], got shape {tuple(hard_negatives.shape)}"
                )
            n = l2_normalize(hard_negatives, self.eps)
            hard = torch.einsum("bd,bkd->bk", a, n) / self.temperature  # [B, K]
            logits = torch.cat([sim, hard], dim=1)
        target = torch.arange(anchor.shape[0], device=anchor.device)
        loss = F.cross_entropy(logits, target)
        if self.symmetric:
            loss = 0.5 * (loss + F.cross_entropy(sim.t(), target))
        return loss
