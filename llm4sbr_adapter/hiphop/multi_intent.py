"""Multi-intent capture: K learnable intent queries read a session's item states.

A session often mixes several purposes (a gift, a refill, browsing a genre). HIPHOP models this
with ``K`` learnable query vectors; each attends over the session's item states and produces
one intent vector. A second, small attention then picks the intent that matters for the next
click: its query is the last item's state (default) or any session summary the caller passes
(e.g. the backbone's session embedding or an :class:`~llm4sbr_adapter.enhancer.IntentEnhancer`
output).

Optional diversity regulariser: the mean squared cosine similarity between distinct intents of
the same session, ``mean_{i != j} cos(u_i, u_j)^2``. It is 0 when the K intents are mutually
orthogonal and 1 when they collapse onto one direction; adding it (times a small weight) to the
training loss keeps the K queries from learning the same intent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MultiIntentCapture", "MultiIntentOutput", "last_item_state", "intent_diversity_loss"]


def last_item_state(item_states: Tensor, mask: Tensor) -> Tensor:
    """State of the last valid position of each session.

    Args:
        item_states: ``[batch, length, d]``.
        mask: ``[batch, length]`` bool, ``True`` at real items (any padding layout).

    Returns:
        ``[batch, d]``.

    Raises:
        ValueError: if a session has no valid position.
    """
    mask = mask.bool()
    if not bool(mask.any(dim=1).all()):
        bad = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"sessions at batch rows {bad[:10]} have no item (mask all False)")
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask, positions, torch.full_like(positions, -1)).max(dim=1).values
    return item_states[torch.arange(item_states.shape[0], device=item_states.device), last]


def intent_diversity_loss(intents: Tensor) -> Tensor:
    """Mean squared cosine similarity between distinct intents, ``[batch, K, d]`` -> scalar.

    Returns 0 for ``K == 1``.
    """
    b, k, _ = intents.shape
    if k < 2:
        return intents.new_zeros(())
    u = F.normalize(intents, dim=-1)
    gram = u @ u.transpose(1, 2)  # [B, K, K]
    off = ~torch.eye(k, dtype=torch.bool, device=intents.device)
    return gram[:, off].pow(2).mean()


@dataclass
class MultiIntentOutput:
    """Result of :class:`MultiIntentCapture`.

    Attributes:
        intents: ``[batch, K, d]`` one vector per intent query.
        target: ``[batch, d]`` the intents pooled by the target attention.
        intent_weights: ``[batch, K]`` the target attention's weights (sum to 1).
        item_attention: ``[batch, K, length]`` each intent's weights over positions (0 on padding).
        diversity: scalar, :func:`intent_diversity_loss` of ``intents``.
    """

    intents: Tensor
    target: Tensor
    intent_weights: Tensor
    item_attention: Tensor
    diversity: Tensor


class MultiIntentCapture(nn.Module):
    """K learnable intent queries over item states, pooled into one target intent.

    Args:
        hidden_size: ``d`` of the item states.
        num_intents: ``K``.
        num_heads: heads of the query-over-items attention (``d`` must be divisible by it).
        dropout: attention dropout.
        residual_query: add the pooling query to the pooled intent (``target = q + sum_k w_k u_k``);
            off by default, so ``target`` is a convex combination of the intents.

    Forward:
        ``item_states [B, L, d]``, ``mask [B, L]`` bool (True = real item), optional
        ``query [B, d]`` (default: the last valid item's state) -> :class:`MultiIntentOutput`.
    """

    def __init__(
        self,
        hidden_size: int,
        num_intents: int = 4,
        num_heads: int = 1,
        dropout: float = 0.0,
        residual_query: bool = False,
    ) -> None:
        super().__init__()
        if num_intents < 1:
            raise ValueError(f"num_intents must be >= 1, got {num_intents}")
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.hidden_size = hidden_size
        self.num_intents = num_intents
        self.residual_query = residual_query
        self.intent_queries = nn.Parameter(torch.randn(num_intents, hidden_size) * hidden_size**-0.5)
        self.item_attention = nn.MultiheadAttention(hidden_size, num_heads, dropout=dropout, batch_first=True)
        self.pool_query = nn.Linear(hidden_size, hidden_size)
        self.pool_key = nn.Linear(hidden_size, hidden_size, bias=False)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, num_intents={self.num_intents}"

    def attend_items(self, item_states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The K intent queries attend over each session's items: ``(intents [B, K, d], weights [B, K, L])``.

        The computation of ``self.item_attention`` (an ``nn.MultiheadAttention``, whose parameters it uses;
        weights averaged over heads), with the keys and values projected for the real clicks only (``mask``)
        rather than for every padded position: on prefix-augmented data such as Beauty a batch's longest
        session is many times its mean, so the padded grid is mostly padding. The K queries are projected
        once, not once per row.
        """
        mha, (b, length, d) = self.item_attention, item_states.shape
        heads = mha.num_heads
        w_q, w_kv = mha.in_proj_weight.split([d, 2 * d])
        b_q, b_kv = mha.in_proj_bias.split([d, 2 * d])
        q = F.linear(self.intent_queries, w_q, b_q).view(-1, heads, d // heads)  # [K, h, d/h]
        kv = item_states.new_zeros(b, length, 2 * d)
        kv[mask] = F.linear(item_states[mask], w_kv, b_kv)  # real clicks only
        k, v = kv.view(b, length, 2, heads, d // heads).unbind(2)  # [B, L, h, d/h] each
        scores = torch.einsum("khe,blhe->bhkl", q, k) * (d // heads) ** -0.5
        weights = torch.softmax(scores.masked_fill(~mask[:, None, None, :], float("-inf")), dim=-1)
        weights = F.dropout(weights, mha.dropout, self.training)
        out = torch.einsum("bhkl,blhe->bkhe", weights, v).reshape(b, -1, d)
        return mha.out_proj(out), weights.mean(dim=1)

    def forward(self, item_states: Tensor, mask: Tensor, query: Tensor | None = None) -> MultiIntentOutput:
        if item_states.dim() != 3 or item_states.shape[-1] != self.hidden_size:
            raise ValueError(f"item_states must be [batch, length, {self.hidden_size}], got {tuple(item_states.shape)}")
        if mask.shape != item_states.shape[:2]:
            raise ValueError(f"mask must be [batch, length] = {tuple(item_states.shape[:2])}, got {tuple(mask.shape)}")
        mask = mask.bool()
        if query is None:
            query = last_item_state(item_states, mask)  # also rejects empty sessions
        elif not bool(mask.any(dim=1).all()):
            raise ValueError("a session has no item (mask all False); MultiIntentCapture needs >= 1 item per row")
        intents, attn = self.attend_items(item_states, mask)
        scores = torch.einsum("bd,bkd->bk", self.pool_query(query), self.pool_key(intents)) / self.hidden_size**0.5
        weights = torch.softmax(scores, dim=-1)
        target = torch.einsum("bk,bkd->bd", weights, intents)
        if self.residual_query:
            target = target + query
        return MultiIntentOutput(
            intents=intents,
            target=target,
            intent_weights=weights,
            item_attention=attn,
            diversity=intent_diversity_loss(intents),
        )
