"""SR-GNN (Wu et al., AAAI 2019): a gated graph network over each session's item graph.

* Node states start as item embeddings and go through ``steps`` gated-GNN updates; each update mixes
  messages along incoming and outgoing edges (adjacency normalised by in-/out-degree, see
  :class:`~llm4sbr_adapter.experiments.models.batching.SessionGraph`) through GRU-style gates.
* Local embedding ``s_l``: the state of the last clicked item.
* Global embedding ``s_g = sum_i alpha_i v_i`` with ``alpha_i = q^T sigmoid(W1 v_last + W2 v_i + c)``.
* Default fusion: ``s_h = W3 [s_l; s_g]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..batching import Batch, SessionGraph
from .base import SessionBackbone


class EdgeIndex(NamedTuple):
    """A batch's session-graph edges in packed node numbering (see :class:`SessionGraph`)."""

    src: torch.Tensor  # int64 [E] packed index of each edge's first node
    dst: torch.Tensor  # int64 [E] packed index of its second node
    in_weight: torch.Tensor  # float32 [E] 1 / indeg(dst)
    out_weight: torch.Tensor  # float32 [E] 1 / outdeg(src)

    @classmethod
    def from_graph(cls, g: SessionGraph) -> EdgeIndex:
        first = g.node_offsets.index_select(0, g.edge_row)
        return cls(first + g.edge_src, first + g.edge_dst, g.in_weight, g.out_weight)


def propagate(x: torch.Tensor, to: torch.Tensor, frm: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``out[to[e]] += weight[e] * x[frm[e]]`` over all edges: a sparse ``adj @ x`` on packed nodes ``[N, d]``."""
    return x.new_zeros(x.shape).index_add(0, to, x.index_select(0, frm) * weight.unsqueeze(1))


class GatedGraphCell(nn.Module):
    """One gated-GNN propagation step over the real nodes of a batch of session graphs.

    States are *packed*: ``h [N, d]`` holds only the batch's real nodes (see :class:`SessionGraph`), and
    the messages ``adj_in @ edge_in(h)`` / ``adj_out @ edge_out(h)`` are sums over the real edges. This is
    exactly SR-GNN's dense update on every real node (padded nodes have no edges), at a cost that grows
    with the clicks instead of with ``B * n^2``: on prefix-augmented data such as Beauty most of the
    ``[B, n]`` grid is padding.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        d = hidden_size
        self.edge_in = nn.Linear(d, d)
        self.edge_out = nn.Linear(d, d)
        self.bias_in = nn.Parameter(torch.zeros(d))
        self.bias_out = nn.Parameter(torch.zeros(d))
        self.input_gates = nn.Linear(2 * d, 3 * d)  # reset, update, candidate from the messages
        self.hidden_gates = nn.Linear(d, 3 * d)  # the same three from the current state

    def forward(self, h: torch.Tensor, edges: EdgeIndex) -> torch.Tensor:
        """``h [N, d]`` -> ``h' [N, d]``."""
        # adj_in: node j hears from its predecessors i; adj_out: node i hears from its successors j
        msg_in = propagate(self.edge_in(h), edges.dst, edges.src, edges.in_weight) + self.bias_in
        msg_out = propagate(self.edge_out(h), edges.src, edges.dst, edges.out_weight) + self.bias_out
        gi = self.input_gates(torch.cat([msg_in, msg_out], dim=1))
        gh = self.hidden_gates(h)
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
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

    def states(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(seq [B, L, d], h_local [B, d], h_global [B, d])``; ``seq`` is each click's node state, 0 at padding.

        Everything after the embedding lookup runs on real nodes and real clicks only (packed rows).
        """
        g = batch.graph
        if g is None:
            raise ValueError("SRGNN needs batches with a session graph (iterate_batches(..., graph=True))")
        edges = EdgeIndex.from_graph(g)
        h = self.embedding(g.node_items)  # [N, d] real nodes only
        for _ in range(self.steps):
            h = self.cell(h, edges)
        bsz, length = batch.mask.shape
        d = h.shape[1]
        # real clicks, packed: click c (row click_row[c], position click_pos[c]) is the state of its node
        click_row, click_pos = torch.nonzero(batch.mask, as_tuple=True)  # [C]
        click_node = g.node_offsets.index_select(0, click_row) + g.alias[click_row, click_pos]
        clicks = h.index_select(0, click_node)  # [C, d]
        seq = h.new_zeros(bsz * length, d).index_copy(0, click_row * length + click_pos, clicks).view(bsz, length, d)
        last = seq[torch.arange(bsz, device=seq.device), batch.lengths - 1]  # [B, d]
        alpha = self.att_out(torch.sigmoid(self.att_last(last).index_select(0, click_row) + self.att_item(clicks)))
        glob = h.new_zeros(bsz, d).index_add(0, click_row, alpha * clicks)  # [B, d]: sum_i alpha_i v_i
        return seq, last, glob

    def session_embeddings(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        _, last, glob = self.states(batch)
        return last, glob

    def fuse(self, h_local: torch.Tensor, h_global: torch.Tensor) -> torch.Tensor:
        return self.hybrid(torch.cat([h_local, h_global], dim=1))


def dense_reference_embeddings(model: SRGNN, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h_local, h_global)`` computed the textbook way: every linear map over the padded ``[B, n, d]``
    grid and dense ``adj @ x`` products, as in the published code.

    Kept as the reference that the packed :meth:`SRGNN.states` is tested against
    (``tests/experiments/models/test_examples_models.py``) and timed against (``benchmarks/bench_srgnn_packed.py``).
    """
    g, cell = batch.graph, model.cell
    if g is None:
        raise ValueError("SRGNN needs batches with a session graph (iterate_batches(..., graph=True))")
    h = model.embedding(g.nodes)  # [B, n, d]
    for _ in range(model.steps):
        msg_in = torch.bmm(g.adj_in, cell.edge_in(h)) + cell.bias_in
        msg_out = torch.bmm(g.adj_out, cell.edge_out(h)) + cell.bias_out
        i_r, i_z, i_n = cell.input_gates(torch.cat([msg_in, msg_out], 2)).chunk(3, 2)
        h_r, h_z, h_n = cell.hidden_gates(h).chunk(3, 2)
        update, reset = torch.sigmoid(i_z + h_z), torch.sigmoid(i_r + h_r)
        candidate = torch.tanh(i_n + reset * h_n)
        h = (1 - update) * candidate + update * h
    seq = torch.gather(h, 1, g.alias.unsqueeze(2).expand(-1, -1, h.shape[2]))  # [B, L, d]
    last = seq[torch.arange(len(seq), device=seq.device), batch.lengths - 1]
    alpha = model.att_out(torch.sigmoid(model.att_last(last).unsqueeze(1) + model.att_item(seq)))
    return last, (alpha * seq * batch.mask.unsqueeze(2)).sum(1)
