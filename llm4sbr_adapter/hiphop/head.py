"""HiphopHead: the HIPHOP parts composed on top of any backbone's session encoder.

The backbone supplies, per batch, its item states ``[B, L, d]``, the mask ``[B, L]`` and its
session embedding ``[B, d]`` (for SR-GNN: the GNN node states gathered into sequence order,
``alias_inputs > 0`` and the attention-pooled ``s_h``). The head

1. reads ``K`` intents with :class:`MultiIntentCapture` and pools the target intent;
2. retrieves top-M training neighbours at the global and local level from a
   :class:`SessionNeighbourBank` and aggregates them with an
   :class:`IntentGuidedNeighbourAggregator` whose query is the intent (the pooled target intent,
   or an external intent such as :class:`~llm4sbr_adapter.enhancer.IntentEnhancer`'s output);
3. returns ``final = session + W [target_intent; neighbour_view]`` (only the enabled parts), and
4. auxiliary losses: ``contrastive`` (InfoNCE between the backbone session embedding and the
   neighbour view) and ``diversity`` (between intents), already weighted, summed in ``aux_loss``.

Score items with ``final @ item_embeddings.T`` as the backbone did with its own session vector.
Each part is also usable on its own (see the modules they live in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .contrastive import NeighbourContrastiveLoss, bank_hard_negatives, in_batch_hard_negatives
from .multi_intent import MultiIntentCapture, MultiIntentOutput, last_item_state
from .neighbours import BankRows, IntentGuidedNeighbourAggregator, NeighbourView, SessionNeighbourBank, last_items_mean

__all__ = ["HiphopConfig", "HiphopHead", "HiphopOutput", "BackboneBatch"]


@dataclass
class HiphopConfig:
    """Settings of :class:`HiphopHead`.

    Attributes:
        hidden_size: backbone dimension ``d``.
        use_intents: enable :class:`MultiIntentCapture`.
        num_intents, num_heads: ``K`` intents, attention heads.
        pool_query: ``"last"`` (last item state) or ``"session"`` (backbone session embedding) as
            the query that pools the K intents.
        diversity_weight: weight of the intent diversity regulariser (0 = off).
        use_neighbours: enable the neighbour bank + aggregator.
        top_m: neighbours per level.
        bank_index, bank_nprobe: FAISS index of the neighbour bank, ``"flat"`` (exact) or ``"ivf"``
            (approximate, for large banks), and the IVF cells searched per query (see
            :class:`SessionNeighbourBank`).
        local_last_n: items averaged for the local level vector.
        normaliser: ``"entmax15"``, ``"sparsemax"``, ``"topk"`` or ``"softmax"``.
        topk: ``k`` for ``"topk"``.
        attention_scale: initial score scale of the neighbour attention (see
            :class:`IntentGuidedNeighbourAggregator`'s ``scale_init``).
        use_contrastive: add InfoNCE(session, neighbour view) (needs ``use_neighbours``).
        contrastive_weight, temperature: its weight and temperature.
        hard_negatives: ``"none"``, ``"bank"`` (global-level bank ranks top_m..top_m+H) or ``"batch"``.
        num_hard_negatives: ``H`` (at least 1 when ``hard_negatives`` is not ``"none"``).
    """

    hidden_size: int = 100
    use_intents: bool = True
    num_intents: int = 4
    num_heads: int = 1
    pool_query: str = "last"
    diversity_weight: float = 0.0
    use_neighbours: bool = True
    top_m: int = 10
    bank_index: str = "flat"
    bank_nprobe: int = 16
    local_last_n: int = 3
    normaliser: str = "entmax15"
    topk: int | None = None
    attention_scale: float = 1.0
    use_contrastive: bool = True
    contrastive_weight: float = 0.1
    temperature: float = 0.2
    hard_negatives: str = "none"
    num_hard_negatives: int = 8

    def __post_init__(self) -> None:
        if self.pool_query not in ("last", "session"):
            raise ValueError(f"pool_query must be 'last' or 'session', got {self.pool_query!r}")
        if self.hard_negatives not in ("none", "bank", "batch"):
            raise ValueError(f"hard_negatives must be 'none', 'bank' or 'batch', got {self.hard_negatives!r}")
        if self.hard_negatives != "none" and self.num_hard_negatives < 1:
            raise ValueError(
                f"hard_negatives={self.hard_negatives!r} needs num_hard_negatives >= 1, got {self.num_hard_negatives}"
            )
        if self.use_contrastive and not self.use_neighbours:
            raise ValueError("use_contrastive needs use_neighbours (the positive is the neighbour view)")
        if self.top_m < 1:
            raise ValueError(f"top_m must be >= 1, got {self.top_m}")


@dataclass
class BackboneBatch:
    """What the backbone produces for one batch, for :meth:`HiphopHead.refresh_bank`.

    ``item_states [B, L, d]``, ``mask [B, L]`` bool, ``session [B, d]``, ``ids [B]`` int training
    row ids, optional ``groups [B]`` (original session) and ``targets [B]``.
    """

    item_states: Tensor
    mask: Tensor
    session: Tensor
    ids: Tensor
    groups: Tensor | None = None
    targets: Tensor | None = None


@dataclass
class HiphopOutput:
    """``session [B, d]`` final representation; ``aux_loss`` scalar (weighted sum);
    ``losses`` the unweighted parts; ``intents`` / ``neighbours`` the parts' outputs (or None)."""

    session: Tensor
    aux_loss: Tensor
    losses: dict[str, Tensor] = field(default_factory=dict)
    intents: MultiIntentOutput | None = None
    neighbours: NeighbourView | None = None
    neighbour_ids: dict[str, Tensor] | None = None


class HiphopHead(nn.Module):
    """Composes multi-intent capture, intent-guided neighbours and the contrastive loss.

    Args:
        config: :class:`HiphopConfig`.
        bank: the training-session bank (may be set later as ``head.bank``); it is not a
            parameter and is not saved in ``state_dict``.
    """

    def __init__(self, config: HiphopConfig, bank: SessionNeighbourBank | None = None) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.intent_capture = (
            MultiIntentCapture(d, config.num_intents, config.num_heads) if config.use_intents else None
        )
        self.aggregator = (
            IntentGuidedNeighbourAggregator(
                d, normaliser=config.normaliser, topk=config.topk, scale_init=config.attention_scale
            )
            if config.use_neighbours
            else None
        )
        self.contrastive = NeighbourContrastiveLoss(config.temperature) if config.use_contrastive else None
        parts = int(config.use_intents) + int(config.use_neighbours)
        self.fuse = nn.Linear(parts * d, d, bias=False) if parts else None
        self.bank = (
            bank
            if bank is not None
            else (
                SessionNeighbourBank(d, index=config.bank_index, nprobe=config.bank_nprobe)
                if config.use_neighbours
                else None
            )
        )

    def bank_vectors(self, item_states: Tensor, mask: Tensor, session: Tensor) -> dict[str, Tensor]:
        """The vectors stored in / queried against the bank: ``{"global": session [B, d],
        "local": mean of the last ``local_last_n`` item states [B, d]}``."""
        return {"global": session, "local": last_items_mean(item_states, mask, self.config.local_last_n)}

    def refresh_bank(
        self,
        batches: Iterable,
        run_backbone: Callable[[object], BackboneBatch],
        *,
        model: nn.Module | None = None,
        progress: bool = True,
    ) -> None:
        """Rebuild the bank from TRAINING batches: ``run_backbone(batch) -> BackboneBatch``.

        Call before the first epoch and then once per epoch; ``model`` (the whole recommender) is
        put in eval mode for the pass.
        """
        if self.bank is None:
            raise RuntimeError("this head has no neighbour bank (use_neighbours=False)")

        def encode(batch: object) -> BankRows:
            out = run_backbone(batch)
            return BankRows(
                ids=out.ids,
                vectors=self.bank_vectors(out.item_states, out.mask, out.session),
                groups=out.groups,
                targets=out.targets,
            )

        self.bank.refresh(batches, encode, model=model if model is not None else self, progress=progress)

    def forward(
        self,
        item_states: Tensor,
        mask: Tensor,
        session: Tensor,
        *,
        intent: Tensor | None = None,
        session_ids: Tensor | None = None,
        groups: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> HiphopOutput:
        """Compose the enabled parts.

        Args:
            item_states: ``[B, L, d]``; mask: ``[B, L]`` bool (True = item); session: ``[B, d]``.
            intent: optional external intent ``[B, d]`` (e.g. ``IntentEnhancer(...).session``); when
                given it is the neighbour-attention query instead of the pooled target intent.
            session_ids: ``[B]`` bank ids of these sessions -- pass during TRAINING only (self-exclusion).
            groups: ``[B]`` original-session ids -- pass during training to exclude sibling prefixes.
            targets: ``[B]`` -- training only, for hard-negative filtering; never pass test targets.

        Returns:
            :class:`HiphopOutput`.
        """
        cfg = self.config
        losses: dict[str, Tensor] = {}
        aux = session.new_zeros(())
        parts: list[Tensor] = []
        mi = None
        if self.intent_capture is not None:
            query = last_item_state(item_states, mask) if cfg.pool_query == "last" else session
            mi = self.intent_capture(item_states, mask, query)
            parts.append(mi.target)
            if cfg.diversity_weight > 0:
                losses["diversity"] = mi.diversity
                aux = aux + cfg.diversity_weight * mi.diversity
        nv = None
        hit_ids = None
        if self.aggregator is not None:
            if self.bank is None or len(self.bank) == 0:
                raise RuntimeError(
                    "neighbour bank is empty: call head.refresh_bank(train_batches, ...) before "
                    "training and once per epoch"
                )
            q_intent = intent if intent is not None else (mi.target if mi is not None else session)
            queries = self.bank_vectors(item_states, mask, session)
            neigh, valid, hit_ids = {}, {}, {}
            for lv in self.aggregator.levels:
                hits = self.bank.search(
                    lv, queries[lv].detach(), cfg.top_m, exclude_ids=session_ids, exclude_groups=groups
                )
                neigh[lv] = self.bank.gather(lv, hits.rows, device=session.device, dtype=session.dtype)
                valid[lv] = hits.valid
                hit_ids[lv] = hits.ids
            nv = self.aggregator(q_intent, neigh, valid)
            parts.append(nv.view)
            if self.contrastive is not None and self.training:
                hard = None
                if cfg.hard_negatives == "bank":
                    hard = bank_hard_negatives(
                        self.bank,
                        "global",
                        queries["global"].detach(),
                        top_m=cfg.top_m,
                        count=cfg.num_hard_negatives,
                        exclude_ids=session_ids,
                        exclude_groups=groups,
                        targets=targets,
                    )
                elif cfg.hard_negatives == "batch":
                    if targets is None:
                        raise ValueError("hard_negatives='batch' needs the batch's training targets")
                    hard = in_batch_hard_negatives(session, targets, cfg.num_hard_negatives, candidates=nv.view)
                c = self.contrastive(session, nv.view, hard)
                losses["contrastive"] = c
                aux = aux + cfg.contrastive_weight * c
        final = session if self.fuse is None else session + self.fuse(torch.cat(parts, dim=-1))
        return HiphopOutput(
            session=final, aux_loss=aux, losses=losses, intents=mi, neighbours=nv, neighbour_ids=hit_ids
        )
