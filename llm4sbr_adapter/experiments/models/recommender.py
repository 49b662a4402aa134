"""Models the training loop can train: :class:`RecommenderModules` (shared plumbing) and :class:`Session`.

:class:`Session` is a session-based backbone (:mod:`.backbones`: SR-GNN, NARM, STAMP) with, optionally, the
LLM4SBR :class:`~llm4sbr_adapter.enhancer.IntentEnhancer` between its two behaviour embeddings and its
scores; both follow :class:`llm4sbr_adapter.experiments.training.loop.Recommender`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .backbones import BACKBONES, SessionBackbone
from .batching import Batch, batch_to_device

if TYPE_CHECKING:
    from llm4sbr_adapter.enhancer import IntentEnhancer


def build_backbone(name: str, num_items: int, hidden_size: int, gnn_steps: int = 1) -> SessionBackbone:
    """A backbone of :data:`~llm4sbr_adapter.experiments.models.backbones.BACKBONES` (``gnn_steps``: SR-GNN only)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(BACKBONES)}")
    if name == "srgnn":
        return BACKBONES[name](num_items, hidden_size, steps=gnn_steps)
    return BACKBONES[name](num_items, hidden_size)


class RecommenderModules:
    """The parts of a :class:`Recommender` that only depend on its list of modules and the optional enhancer.

    Subclasses implement :meth:`modules` and set ``enhancer`` (an ``IntentEnhancer`` or ``None``) and
    ``stores`` (``{split: IntentStore}``, filled when there is an enhancer).
    """

    enhancer: IntentEnhancer | None = None
    stores: dict

    def modules(self) -> list[torch.nn.Module]:
        raise NotImplementedError

    def parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters of all modules, each once (modules may share one, e.g. an item table)."""
        seen, out = set(), []
        for m in self.modules():
            for p in m.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        return out

    def train(self, mode: bool = True) -> None:
        for m in self.modules():
            m.train(mode)

    def use_split(self, split: str) -> None:
        """Bind the enhancer to ``split``'s intent store (row ids are per split).

        Forgetting it is an error, not a silent mix-up: each batch names its pickle and the enhancer
        refuses a bound store whose ``sessions_sha256`` is another file's.
        """
        if self.enhancer is not None:
            self.enhancer.bind_store(self.stores[split])


class Session(RecommenderModules):
    """The model, the optional enhancer and its per-split stores (a :class:`Recommender`)."""

    def __init__(
        self, backbone: SessionBackbone, enhancer=None, stores: dict | None = None, device: torch.device | str = "cpu"
    ) -> None:
        self.backbone = backbone
        self.enhancer = enhancer
        self.stores = stores or {}
        self.device = torch.device(device)

    @property
    def needs_graph(self) -> bool:
        return self.backbone.needs_graph

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.backbone, self.enhancer) if m is not None]

    def loss_and_scores(self, batch: Batch, training: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(CE loss, aux loss, scores [B, num_items])`` for one batch (the same computation in every mode)."""
        batch = batch_to_device(batch, self.device)
        h_local, h_global = self.backbone.session_embeddings(batch)
        if self.enhancer is None:
            session = self.backbone.fuse(h_local, h_global)
            aux = session.new_zeros(())
        else:
            out = self.enhancer(
                h_local,
                h_global,
                session_ids=batch.row_ids.cpu(),
                sessions_sha256=batch.sessions_sha256,
                sessions_source=batch.sessions_source,
            )
            session, aux = out.session, out.aux_loss
        scores = self.backbone.scores(session)
        ce = F.cross_entropy(scores, batch.targets - 1)
        return ce, aux, scores

    def state(self) -> dict:
        return {
            name: copy.deepcopy(m.state_dict())
            for name, m in (("backbone", self.backbone), ("enhancer", self.enhancer))
            if m is not None
        }

    def load_state(self, state: dict) -> None:
        self.backbone.load_state_dict(state["backbone"])
        if self.enhancer is not None:
            self.enhancer.load_state_dict(state["enhancer"])
