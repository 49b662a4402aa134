"""Contrastive objective between a session and its neighbour-enhanced view, with hard negatives.

The positive pair is (session representation ``[B, d]``, neighbour-enhanced view ``[B, d]``);
the other rows' views in the batch are negatives, scored with
:class:`llm4sbr_adapter.losses.InfoNCELoss` (cosine / temperature, cross entropy on the diagonal).

Two optional sources of hard negatives ``[B, H, d]``:

* :func:`bank_hard_negatives` -- training sessions from the FAISS bank ranked just beyond the
  top-M used for the view (ranks ``M .. M+H``, after self/group exclusion). They resemble the
  session but were not chosen as its neighbours. When the bank has targets and the caller passes
  the batch's targets, bank sessions with the *same* target are dropped (they are likely
  positives, not negatives).
* :func:`in_batch_hard_negatives` -- the H other sessions of the batch most similar to the
  session whose target differs from its own (gradients flow through them).

If some row has fewer than H usable candidates, H is reduced to the smallest count over the
batch (so every row gets the same number of real negatives); with none, ``None`` is returned and
the loss uses in-batch negatives only.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import InfoNCELoss
from .neighbours import SessionNeighbourBank

logger = logging.getLogger(__name__)

__all__ = ["NeighbourContrastiveLoss", "bank_hard_negatives", "in_batch_hard_negatives"]


def _compact(candidates: Tensor, usable: Tensor, count: int) -> Tensor | None:
    """Keep the first ``count`` usable candidates per row (order preserved); ``[B, C, d]`` -> ``[B, h, d]``."""
    h = min(count, int(usable.sum(dim=1).min())) if usable.numel() else 0
    if h <= 0:
        return None
    order = torch.argsort((~usable).to(torch.int8), dim=1, stable=True)[:, :h]
    return torch.gather(candidates, 1, order.unsqueeze(-1).expand(-1, -1, candidates.shape[-1]))


def bank_hard_negatives(
    bank: SessionNeighbourBank,
    level: str,
    queries: Tensor,
    *,
    top_m: int,
    count: int,
    exclude_ids: Tensor | None = None,
    exclude_groups: Tensor | None = None,
    targets: Tensor | None = None,
) -> Tensor | None:
    """Bank sessions ranked ``top_m .. top_m + count`` (more if same-target ones are dropped).

    Args:
        bank: the training bank.
        level: which index to search.
        queries: ``[B, d]``.
        top_m: how many top hits form the positive view (skipped here).
        count: ``H`` negatives wanted.
        exclude_ids, exclude_groups: as in :meth:`SessionNeighbourBank.search`.
        targets: optional ``[B]`` targets of the queries; bank rows with the same target are dropped.

    Returns:
        ``[B, h, d]`` detached bank vectors with ``h <= count``, or ``None``.
    """
    extra = count if targets is not None else 0
    hits = bank.search(
        level, queries, count + extra, exclude_ids=exclude_ids, exclude_groups=exclude_groups, skip=top_m
    )
    usable = hits.valid
    if targets is not None and bank.targets is not None:
        usable = usable & (bank.targets_of(hits.rows) != targets.view(-1, 1).to(hits.rows.device))
    vecs = bank.gather(level, hits.rows, device=queries.device, dtype=queries.dtype)
    return _compact(vecs, usable, count)


def in_batch_hard_negatives(
    reps: Tensor, targets: Tensor, count: int, *, candidates: Tensor | None = None
) -> Tensor | None:
    """Most similar other rows of the batch whose target differs.

    Args:
        reps: ``[B, d]`` the sessions (similarity is cosine between ``reps`` rows).
        targets: ``[B]`` next-item targets.
        count: ``H``.
        candidates: ``[B, d]`` what to return for the chosen rows (default ``reps``; e.g. the
            views, so negatives live in the positive's space).

    Returns:
        ``[B, h, d]`` (differentiable) with ``h <= count``, or ``None``.
    """
    b = reps.shape[0]
    cand = reps if candidates is None else candidates
    u = F.normalize(reps.detach(), dim=-1)
    sim = u @ u.t()
    usable = targets.view(-1, 1) != targets.view(1, -1)  # excludes self too
    sim = sim.masked_fill(~usable, float("-inf"))
    k = min(count, b - 1)
    if k <= 0:
        return None
    top = sim.topk(k, dim=1)
    ok = torch.isfinite(top.values)
    chosen = cand[top.indices]  # [B, k, d]
    return _compact(chosen, ok, count)


class NeighbourContrastiveLoss(nn.Module):
    """InfoNCE(session, view) with optional hard negatives; see the module docstring.

    Args:
        temperature: InfoNCE temperature.
        symmetric: also score view -> session.
    """

    def __init__(self, temperature: float = 0.2, symmetric: bool = False) -> None:
        super().__init__()
        self.info_nce = InfoNCELoss(temperature=temperature, symmetric=symmetric)

    def forward(self, session: Tensor, view: Tensor, hard_negatives: Tensor | None = None) -> Tensor:
        """``session [B, d]``, ``view [B, d]``, ``hard_negatives [B, H, d]`` or None -> scalar."""
        return self.info_nce(session, view, hard_negatives)
