"""SR-GNN (Wu et al., AAAI 2019): a gated graph network over each session's item graph.

* Node states start as item embeddings and go through ``steps`` gated-GNN updates; each update mixes
  messages along incoming and outgoing edges (adjacency normalised by in-/out-degree, see
  :class:`~examples.session_data.SessionGraph`) through GRU-style gates.
* Local embedding ``s_l``: the state of the last clicked item.
* Global embedding ``s_g = sum_i alpha_i v_i`` with ``alpha_i = q^T sigmoid(W1 v_last + W2 v_i + c)``.
* Default fusion: ``s_h = W3 [s_l; s_g]``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..session_data import Batch
from .base import SessionBackbone


class GatedGraphCell(nn.Module):
    """One gated-GNN propagation step: ``h [B, n, d] -> h' [B, n, d]`` given ``adj_in``/``adj_out`` ``[B, n, n]``."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        d = hidden_size
        self.edge_in = nn.Linear(d, d)
        self.edge_out = nn.Linear(d, d)
        self.bias_in = nn.Parameter(torch.zeros(d))
        self.bias_out = nn.Parameter(torch.zeros(d))
        self.input_gates = nn.Linear(2 * d, 3 * d)  # reset, update, candidate from the messages
        self.hidden_gates = nn.Linear(d, 3 * d)  # the same three from the current state

    def forward(self, h: torch.Tensor, adj_in: torch.Tensor, adj_out: torch.Tensor) -> torch.Tensor:
        msg_in = torch.bmm(adj_in, self.edge_in(h)) + self.bias_in  # [B, n, d]
        msg_out = torch.bmm(adj_out, self.edge_out(h)) + self.bias_out  # [B, n, d]
        gi = self.input_gates(torch.cat([msg_in, msg_out], dim=2))
        gh = self.hidden_gates(h)
        i_r, i_z, i_n = gi.chunk(3, dim=2)
        h_r, h_z, h_n = gh.chunk(3, dim=2)
        reset = torch.sigmoid(i_r + h_r)
        update = torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + reset * h_n)
        return candidate + update * (h - candidate)


class SRGNN(SessionBackbone):
    """SR-GNN with the common backbone interface (``needs_graph = True``)."""

    needs_graph = True

    def __init__(self, num_items: int, hidden_size: int = 100, steps: int = 1) -> None:
        super().__init__(num_items, hidden_size)
        d = hidden_size
        self.steps = int(steps)
        self.cell = GatedGraphCell(d)
        self.att_last = nn.Linear(d, d)
        self.att_item = nn.Linear(d, d)
        self.att_out = nn.Linear(d, 1, bias=False)
        self.hybrid = nn.Linear(2 * d, d)
        self.reset_uniform()

    def session_embeddings(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        g = batch.graph
        if g is None:
            raise ValueError("SRGNN needs batches with a session graph (iterate_batches(..., graph=True))")
        h = self.embedding(g.nodes)  # [B, n, d]
        for _ in range(self.steps):
            h = self.cell(h, g.adj_in, g.adj_out)
        d = h.shape[2]
        seq = torch.gather(h, 1, g.alias.unsqueeze(2).expand(-1, -1, d))  # [B, L, d] state of each click
        last = seq[torch.arange(seq.shape[0]), batch.lengths - 1]  # [B, d]
        alpha = self.att_out(torch.sigmoid(self.att_last(last).unsqueeze(1) + self.att_item(seq)))  # [B, L, 1]
        glob = (alpha * seq * batch.mask.unsqueeze(2)).sum(1)  # [B, d]
        return last, glob

    def fuse(self, h_local: torch.Tensor, h_global: torch.Tensor) -> torch.Tensor:
        return self.hybrid(torch.cat([h_local, h_global], dim=1))
