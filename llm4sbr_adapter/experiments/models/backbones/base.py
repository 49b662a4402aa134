"""The interface shared by the harness's backbones."""

from __future__ import annotations

import abc
import math

import torch
from torch import nn

from ..batching import Batch


class SessionBackbone(nn.Module, abc.ABC):
    """A session encoder with an item embedding table ``[num_items + 1, d]`` (row 0 = padding).

    Subclasses implement :meth:`session_embeddings` and :meth:`fuse`. Without an enhancer the session
    representation is ``fuse(h_local, h_global)``; with one it is ``enhancer(h_local, h_global).session``.
    Either way :meth:`scores` ranks all items ``1..num_items`` by a dot product.
    """

    needs_graph: bool = False  # whether batches must carry a SessionGraph

    def __init__(self, num_items: int, hidden_size: int = 100) -> None:
        super().__init__()
        if num_items < 1 or hidden_size < 1:
            raise ValueError(f"num_items and hidden_size must be positive, got {num_items}, {hidden_size}")
        self.num_items = int(num_items)
        self.hidden_size = int(hidden_size)
        self.embedding = nn.Embedding(self.num_items + 1, self.hidden_size, padding_idx=0)

    def reset_uniform(self) -> None:
        """Initialise every parameter uniformly in ``[-1/sqrt(d), 1/sqrt(d)]`` (SR-GNN's scheme)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    @abc.abstractmethod
    def session_embeddings(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h_local [B, d], h_global [B, d])``: recent interest and whole-session preference."""

    @abc.abstractmethod
    def fuse(self, h_local: torch.Tensor, h_global: torch.Tensor) -> torch.Tensor:
        """The backbone's own session representation ``[B, d]`` from the two embeddings."""

    def scores(self, session: torch.Tensor) -> torch.Tensor:
        """``[B, num_items]`` scores; column ``j`` is item ``j + 1``."""
        return session @ self.embedding.weight[1:].t()

    def forward(self, batch: Batch) -> torch.Tensor:
        """Scores ``[B, num_items]`` with the backbone's own fusion."""
        h_local, h_global = self.session_embeddings(batch)
        return self.scores(self.fuse(h_local, h_global))
