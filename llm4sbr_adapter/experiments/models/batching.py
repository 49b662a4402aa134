"""Batching sessions (padded tensors and session graphs) without per-item loops.

Shuffling permutes whole rows, so ``batch.row_ids[k]`` always names the row (of the split file, see
:mod:`..data.splits`) whose inputs are ``batch.items[k]`` and whose target is ``batch.targets[k]``;
intent stores are looked up by these ids. Row ids of two pickles look alike (``0..N-1`` in each), so
every batch also names its pickle (``batch.sessions_source``, ``batch.sessions_sha256``), which the
enhancer compares with the bound store's ``sessions_sha256``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..data.splits import SplitData


@dataclass
class SessionGraph:
    """SR-GNN's per-session graphs for a batch (unique items as nodes, consecutive clicks as edges).

    Kept sparse: the real nodes of all sessions are numbered ``0..N-1`` row after row (*packed* order:
    row ``b``'s nodes are ``node_offsets[b] .. node_offsets[b + 1] - 1``, sorted by item id), and the
    distinct edges ``A[i, j] = 1`` ("a click on node i is directly followed by one on node j") are listed
    once each. The dense ``[B, n, n]`` matrices of the published code are built only when asked for
    (:attr:`adj_in`, :attr:`adj_out`).

    Attributes:
        nodes: ``int64 [B, n]`` item id of each node (0 = no node), nodes sorted by item id per session.
        alias: ``int64 [B, L]`` node index (within its row) of each click (0 at padded positions).
        node_items: ``int64 [N]`` item id of each real node, in packed order.
        node_offsets: ``int64 [B + 1]`` packed index of each row's first node.
        edge_row, edge_src, edge_dst: ``int64 [E]`` row and within-row node indices of each distinct edge.
        in_weight: ``float32 [E]`` ``1 / indeg(dst)``; out_weight: ``float32 [E]`` ``1 / outdeg(src)``.
    """

    nodes: torch.Tensor
    alias: torch.Tensor
    node_items: torch.Tensor
    node_offsets: torch.Tensor
    edge_row: torch.Tensor
    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    in_weight: torch.Tensor
    out_weight: torch.Tensor

    def _dense(self, rows: torch.Tensor, cols: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        bsz, n = self.nodes.shape
        adj = torch.zeros(bsz, n, n, dtype=weight.dtype, device=weight.device)
        adj[self.edge_row, rows, cols] = weight
        return adj

    @property
    def adj_in(self) -> torch.Tensor:
        """``float32 [B, n, n]`` with ``adj_in[b, j, i] = A[i, j] / indeg(j)`` (built on each access)."""
        return self._dense(self.edge_dst, self.edge_src, self.in_weight)

    @property
    def adj_out(self) -> torch.Tensor:
        """``float32 [B, n, n]`` with ``adj_out[b, i, j] = A[i, j] / outdeg(i)`` (built on each access)."""
        return self._dense(self.edge_src, self.edge_dst, self.out_weight)

    def to(self, device: torch.device | str) -> SessionGraph:
        """The same graph with every tensor on ``device``."""
        return SessionGraph(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))


@dataclass
class Batch:
    """A padded batch. ``items``/``mask`` are ``[B, L]`` with the inputs left-aligned (0 = padding).

    ``source`` is the split the ``row_ids`` index (``None`` for batches made by hand).
    """

    row_ids: torch.Tensor  # int64 [B]
    items: torch.Tensor  # int64 [B, L]
    mask: torch.Tensor  # bool [B, L]
    lengths: torch.Tensor  # int64 [B]
    targets: torch.Tensor  # int64 [B] item ids 1..N
    graph: SessionGraph | None = None
    source: SplitData | None = None

    @property
    def sessions_sha256(self) -> str | None:
        """sha256 of the pickle the row ids refer to (``None``: unknown, e.g. data built in memory)."""
        return self.source.sha256 if self.source is not None else None

    @property
    def sessions_source(self) -> str | None:
        """Path of the pickle the row ids refer to (``None``: unknown)."""
        return str(self.source.path) if self.source is not None and self.source.path is not None else None


def session_graph(items: torch.Tensor, mask: torch.Tensor) -> SessionGraph:
    """Build SR-GNN session graphs for a whole batch with tensor operations (no loop over items).

    Args:
        items: ``int64 [B, L]`` left-aligned inputs, 0 at padded positions.
        mask: ``bool [B, L]`` true at real clicks (a prefix of each row).
    """
    bsz, length = items.shape
    vocab = int(items.max().item()) + 1 if items.numel() else 1
    rows = torch.arange(bsz).unsqueeze(1).expand(bsz, length)
    keys = rows * vocab + items  # unique per (session, item)
    uniq, inverse = torch.unique(keys[mask], sorted=True, return_inverse=True)
    owner = uniq // vocab
    counts = torch.bincount(owner, minlength=bsz)
    first = torch.cumsum(counts, 0) - counts
    local = torch.arange(len(uniq)) - first[owner]  # node index inside its session
    n = max(int(counts.max().item()) if bsz else 0, 1)
    nodes = torch.zeros(bsz, n, dtype=torch.long)
    nodes[owner, local] = uniq % vocab
    alias = torch.zeros(bsz, length, dtype=torch.long)
    alias[mask] = local[inverse]
    edge = mask[:, 1:] & mask[:, :-1]
    src, dst, eb = alias[:, :-1][edge], alias[:, 1:][edge], rows[:, 1:][edge]
    edge_keys = torch.unique((eb * n + src) * n + dst, sorted=True)  # each distinct edge once
    edge_row, src, dst = edge_keys // (n * n), edge_keys // n % n, edge_keys % n
    out_deg = torch.bincount(edge_row * n + src, minlength=bsz * n)  # distinct successors per node
    in_deg = torch.bincount(edge_row * n + dst, minlength=bsz * n)  # distinct predecessors per node
    offsets = torch.zeros(bsz + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(counts, 0)
    return SessionGraph(
        nodes=nodes,
        alias=alias,
        node_items=uniq % vocab,
        node_offsets=offsets,
        edge_row=edge_row,
        edge_src=src,
        edge_dst=dst,
        in_weight=1.0 / in_deg[edge_row * n + dst].float(),
        out_weight=1.0 / out_deg[edge_row * n + src].float(),
    )


def make_batch(data: SplitData, rows: np.ndarray, *, max_len: int = 0, graph: bool = False) -> Batch:
    """Pad the given rows of ``data`` into a :class:`Batch` (keeping the last ``max_len`` clicks if > 0)."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, ends = data.offsets[rows], data.offsets[rows + 1]
    if max_len > 0:
        starts = np.maximum(starts, ends - max_len)
    lengths = ends - starts
    width = int(lengths.max())
    pos = np.arange(width)[None, :]
    mask = pos < lengths[:, None]
    idx = np.where(mask, starts[:, None] + pos, 0)
    items = np.where(mask, data.flat[idx], 0)
    items_t, mask_t = torch.from_numpy(items), torch.from_numpy(mask)
    return Batch(
        row_ids=torch.from_numpy(data.ids[rows].copy()),
        items=items_t,
        mask=mask_t,
        lengths=torch.from_numpy(lengths),
        targets=torch.from_numpy(data.targets[rows]),
        graph=session_graph(items_t, mask_t) if graph else None,
        source=data,
    )


def iterate_batches(
    data: SplitData,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    max_len: int = 0,
    graph: bool = False,
) -> Iterator[Batch]:
    """Yield batches over all rows; with ``shuffle`` the row order is a permutation drawn from ``seed``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.random.default_rng(seed).permutation(len(data)) if shuffle else np.arange(len(data))
    for start in range(0, len(order), batch_size):
        yield make_batch(data, order[start : start + batch_size], max_len=max_len, graph=graph)


def batch_to_device(batch: Batch, device: torch.device | str) -> Batch:
    """``batch`` with every tensor on ``device``; ``row_ids`` stay on the CPU (they index stores and banks).

    On the CPU the same object is returned unchanged.
    """
    device = torch.device(device)
    if device.type == "cpu":
        return batch
    g = batch.graph.to(device) if batch.graph is not None else None
    return Batch(
        row_ids=batch.row_ids,
        items=batch.items.to(device),
        mask=batch.mask.to(device),
        lengths=batch.lengths.to(device),
        targets=batch.targets.to(device),
        graph=g,
        source=batch.source,
    )
