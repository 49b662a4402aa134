"""STAMP (Liu et al., KDD 2018): short-term attention/memory priority, no recurrence.

* ``m_s``: mean of the session's item embeddings; ``m_t``: embedding of the last click.
* ``alpha_i = w0^T sigmoid(W1 x_i + W2 m_t + W3 m_s + b)``, ``m_a = sum_i alpha_i x_i``.
* Global embedding ``h_s = tanh(MLP_A(m_a))``; local embedding ``h_t = tanh(MLP_B(m_t))``.
* Default fusion: the element-wise product ``h_s * h_t`` (scores ``<h_s * h_t, x_j>`` are STAMP's
  trilinear product before the softmax).
"""

from __future__ import annotations

import torch
from torch import nn

from ..batching import Batch
from .base import SessionBackbone


class STAMP(SessionBackbone):
    def __init__(self, num_items: int, hidden_size: int = 100) -> None:
        super().__init__(num_items, hidden_size)
        d = hidden_size
        self.w1 = nn.Linear(d, d, bias=False)
        self.w2 = nn.Linear(d, d, bias=False)
        self.w3 = nn.Linear(d, d, bias=True)
        self.w0 = nn.Linear(d, 1, bias=False)
        self.mlp_a = nn.Linear(d, d)
        self.mlp_b = nn.Linear(d, d)
        nn.init.normal_(self.embedding.weight, std=0.002)
        for layer in (self.w1, self.w2, self.w3, self.w0, self.mlp_a, self.mlp_b):
            nn.init.normal_(layer.weight, std=0.05)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def session_embeddings(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embedding(batch.items)  # [B, L, d]
        mask = batch.mask.unsqueeze(2).to(x.dtype)
        m_s = (x * mask).sum(1) / batch.lengths.unsqueeze(1).to(x.dtype)  # [B, d]
        m_t = x[torch.arange(x.shape[0]), batch.lengths - 1]  # [B, d]
        alpha = self.w0(torch.sigmoid(self.w1(x) + self.w2(m_t).unsqueeze(1) + self.w3(m_s).unsqueeze(1)))
        m_a = (alpha * x * mask).sum(1)
        h_s = torch.tanh(self.mlp_a(m_a))
        h_t = torch.tanh(self.mlp_b(m_t))
        return h_t, h_s

    def fuse(self, h_local: torch.Tensor, h_global: torch.Tensor) -> torch.Tensor:
        return h_local * h_global
