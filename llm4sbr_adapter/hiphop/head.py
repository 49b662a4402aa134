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

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from ..config import ConfigBase, setting
from ..pretrained import load_pretrained_weights, save_pretrained
from .contrastive import NeighbourContrastiveLoss, bank_hard_negatives, in_batch_hard_negatives
from .multi_intent import MultiIntentCapture, MultiIntentOutput, last_item_state
from .neighbours import BankRows, IntentGuidedNeighbourAggregator, NeighbourView, SessionNeighbourBank, last_items_mean

__all__ = ["HiphopConfig", "HiphopHead", "HiphopOutput", "BackboneBatch", "CONFIG_NAME", "WEIGHTS_NAME"]


CONFIG_NAME = "hiphop_config.json"
WEIGHTS_NAME = "hiphop.safetensors"


@dataclass
class HiphopConfig(ConfigBase):
    """Settings of :class:`HiphopHead`; validated on construction, saved beside the weights.

    Each field's help text is in its metadata (``dataclasses.fields(HiphopConfig)``); the command line of
    ``llm4sbr_adapter.experiments.training.hiphop_srgnn`` is generated from them (``use_intents`` is ``--intents``,
    ``use_neighbours`` ``--neighbours``, ``use_contrastive`` ``--contrastive``, ``topk`` ``--topk-attention``).
    """

    FORMAT: ClassVar[str] = "llm4sbr-hiphop-head"
    FORMAT_VERSION: ClassVar[int] = 1

    hidden_size: int = setting(100, "backbone dimension d", minimum=1)
    use_intents: bool = setting(True, "multi-intent capture (K learnable intent queries)", flag="--intents")
    num_intents: int = setting(4, "K intent queries", minimum=1)
    num_heads: int = setting(1, "heads of the intent-over-clicks attention (must divide hidden_size)", minimum=1)
    pool_query: Literal["last", "session"] = setting(
        "last", "what pools the K intents: the last item state or the backbone's session embedding"
    )
    diversity_weight: float = setting(0.0, "weight of the intent diversity regulariser (0 = off)", minimum=0.0)
    use_neighbours: bool = setting(
        True, "intent-guided training neighbours (neighbour bank + aggregator)", flag="--neighbours"
    )
    top_m: int = setting(10, "neighbours per level", minimum=1)
    bank_index: Literal["flat", "ivf"] = setting(
        "flat",
        "FAISS index of the neighbour bank: flat = exact; ivf = approximate inverted file, faster on large "
        "banks (Beauty: see docs/hiphop.md)",
    )
    bank_nprobe: int = setting(16, "IVF cells searched per query (bank_index ivf)", minimum=1)
    local_last_n: int = setting(3, "clicks averaged for the local level", minimum=1)
    normaliser: Literal["entmax15", "sparsemax", "topk", "softmax"] = setting(
        "entmax15", "neighbour attention normaliser (softmax = dense baseline)"
    )
    topk: int | None = setting(None, "k for normaliser topk", minimum=1, flag="--topk-attention")
    attention_scale: float = setting(
        1.0,
        "initial (learned) score scale of the neighbour attention; larger starts sparser",
        minimum=0.0,
        exclusive_minimum=True,
    )
    use_contrastive: bool = setting(
        True,
        "InfoNCE between the backbone's session vector and the neighbour view (needs the neighbours)",
        flag="--contrastive",
    )
    contrastive_weight: float = setting(0.1, "weight of the contrastive loss", minimum=0.0)
    temperature: float = setting(0.2, "InfoNCE temperature", minimum=0.0, exclusive_minimum=True)
    hard_negatives: Literal["none", "bank", "batch"] = setting(
        "none",
        "hard-negative source: none, bank (global-level bank ranks top_m..top_m+H) or batch",
    )
    num_hard_negatives: int = setting(
        8, "hard negatives H per row (used only with hard_negatives bank|batch; must be >= 1 then)", minimum=0
    )

    def validate(self) -> None:
        """Rules between fields: hard negatives need a count, contrastive the neighbours, topk its k."""
        if self.hard_negatives != "none" and self.num_hard_negatives < 1:
            self.fail(
                "num_hard_negatives",
                f"must be >= 1 when {self.ref('hard_negatives')} is {self.hard_negatives!r}, "
                f"got {self.num_hard_negatives}",
            )
        if self.use_contrastive and not self.use_neighbours:
            self.fail("use_contrastive", f"needs {self.ref('use_neighbours')} (the positive is the neighbour view)")
        if self.normaliser == "topk" and self.topk is None:
            self.fail("topk", f"must be given when {self.ref('normaliser')} is 'topk'")
        if self.use_intents and self.hidden_size % self.num_heads:
            self.fail("num_heads", f"must divide {self.ref('hidden_size')} {self.hidden_size}, got {self.num_heads}")


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

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``hiphop_config.json`` and ``hiphop.safetensors`` into ``directory`` (atomically each).

        The neighbour bank is not saved (it is rebuilt from the training split with :meth:`refresh_bank`).
        """
        save_pretrained(self, self.config, directory, config_name=CONFIG_NAME, weights_name=WEIGHTS_NAME)
        return Path(directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> HiphopHead:
        """Rebuild a head saved with :meth:`save_pretrained`; its bank is empty until :meth:`refresh_bank`.

        Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the tensors when the
        weights do not fit the config.
        """
        config = HiphopConfig.load(Path(directory) / CONFIG_NAME)
        model = cls(config)
        shaping = ("hidden_size", "use_intents", "num_intents", "use_neighbours")
        parts = ", ".join(f"{name}={getattr(config, name)!r}" for name in shaping)
        load_pretrained_weights(
            model,
            directory,
            config_name=CONFIG_NAME,
            weights_name=WEIGHTS_NAME,
            what="HIPHOP head",
            settings=parts,
            map_location=map_location,
        )
        return model

    def bank_vectors(self, item_states: Tensor, mask: Tensor, session: Tensor) -> dict[str, Tensor]:
        """The vectors stored in / queried against the bank: ``{"global": session [B, d],
        "local": mean of the last ``local_last_n`` item states [B, d]}``."""
        return {"global": session, "local": last_items_mean(item_states, mask, self.config.local_last_n)}

    def refresh_bank(
        self,
        batches: Iterable,
        run_backbone: Callable[[Any], BackboneBatch],
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
            nv, hit_ids = self._attend_neighbours(queries, q_intent, session, session_ids, groups)
            parts.append(nv.view)
            if self.contrastive is not None and self.training:
                hard = self._hard_negatives(queries, session, nv.view, session_ids, groups, targets)
                c = self.contrastive(session, nv.view, hard)
                losses["contrastive"] = c
                aux = aux + cfg.contrastive_weight * c
        final = session if self.fuse is None else session + self.fuse(torch.cat(parts, dim=-1))
        return HiphopOutput(
            session=final, aux_loss=aux, losses=losses, intents=mi, neighbours=nv, neighbour_ids=hit_ids
        )

    def _attend_neighbours(
        self,
        queries: dict[str, Tensor],
        q_intent: Tensor,
        session: Tensor,
        session_ids: Tensor | None,
        groups: Tensor | None,
    ) -> tuple[NeighbourView, dict[str, Tensor]]:
        """The neighbour view (each level's top-m bank rows, attended with ``q_intent``) and the hit ids."""
        assert self.aggregator is not None and self.bank is not None  # checked by forward
        neigh, valid, hit_ids = {}, {}, {}
        for lv in self.aggregator.levels:
            hits = self.bank.search(
                lv, queries[lv].detach(), self.config.top_m, exclude_ids=session_ids, exclude_groups=groups
            )
            neigh[lv] = self.bank.gather(lv, hits.rows, device=session.device, dtype=session.dtype)
            valid[lv] = hits.valid
            hit_ids[lv] = hits.ids
        return self.aggregator(q_intent, neigh, valid), hit_ids

    def _hard_negatives(
        self,
        queries: dict[str, Tensor],
        session: Tensor,
        candidates: Tensor,
        session_ids: Tensor | None,
        groups: Tensor | None,
        targets: Tensor | None,
    ) -> Tensor | None:
        """The contrastive loss's hard negatives: from the bank, from the batch, or none (``hard_negatives``)."""
        cfg = self.config
        if cfg.hard_negatives == "bank":
            assert self.bank is not None  # checked by forward
            return bank_hard_negatives(
                self.bank,
                "global",
                queries["global"].detach(),
                top_m=cfg.top_m,
                count=cfg.num_hard_negatives,
                exclude_ids=session_ids,
                exclude_groups=groups,
                targets=targets,
            )
        if cfg.hard_negatives == "batch":
            if targets is None:
                raise ValueError("hard_negatives='batch' needs the batch's training targets")
            return in_batch_hard_negatives(session, targets, cfg.num_hard_negatives, candidates=candidates)
        return None
