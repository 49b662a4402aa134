"""NARM (Li et al., CIKM 2017): a GRU encoder with an attention readout.

* Items are embedded (dropout 0.25) and run through a one-layer GRU: states ``h_1..h_t``.
* Local embedding: the last state ``h_t`` (NARM's "global encoder", the sequential summary that ends
  at the most recent click; here it plays the recent-interest role of the enhancer's ``local``).
* Global embedding: ``c = sum_j alpha_j h_j`` with ``alpha_j = v^T sigmoid(A1 h_t + A2 h_j)`` (NARM's
  "local encoder", the attention readout over the whole session).
* Default fusion: ``B [h_t; c]`` after dropout 0.5 (NARM's bilinear decoder, folded into a linear
  map so that scores are a dot product with the item embeddings).
"""

from __future__ import annotations

import torch
from torch import nn

from ..batching import Batch
from .base import SessionBackbone


class NARM(SessionBackbone):
    def __init__(
        self, num_items: int, hidden_size: int = 100, emb_dropout: float = 0.25, ct_dropout: float = 0.5
    ) -> None:
        super().__init__(num_items, hidden_size)
        d = hidden_size
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.gru = nn.GRU(d, d, batch_first=True)
        self.att_last = nn.Linear(d, d, bias=False)
        self.att_item = nn.Linear(d, d, bias=False)
        self.att_out = nn.Linear(d, 1, bias=False)
        self.ct_dropout = nn.Dropout(ct_dropout)
        self.decoder = nn.Linear(2 * d, d, bias=False)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def session_embeddings(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.emb_dropout(self.embedding(batch.items))  # [B, L, d]
        packed = nn.utils.rnn.pack_padded_sequence(x, batch.lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, last = self.gru(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # [B, L, d]
        h_t = last[-1]  # [B, d]
        alpha = self.att_out(torch.sigmoid(self.att_last(h_t).unsqueeze(1) + self.att_item(states)))  # [B, L, 1]
        c = (alpha * states * batch.mask.unsqueeze(2)).sum(1)
        return h_t, c

    def fuse(self, h_local: torch.Tensor, h_global: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.ct_dropout(torch.cat([h_local, h_global], dim=1)))
