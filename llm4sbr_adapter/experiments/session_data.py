"""Loading SR-GNN pickles and batching sessions (padded tensors and session graphs) without per-item loops.

Every example keeps a stable **row id**: its index in the pickle it came from. Shuffling permutes
whole rows, so ``batch.row_ids[k]`` always names the row whose inputs are ``batch.items[k]`` and whose
target is ``batch.targets[k]``; intent stores are looked up by these ids. Row ids of two pickles look
alike (``0..N-1`` in each), so every batch also names its pickle (``batch.sessions_source``,
``batch.sessions_sha256``), which the enhancer compares with the bound store's ``sessions_sha256``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from llm4sbr_adapter.errors import Llm4sbrError
from llm4sbr_adapter.offline.srgnn_pickle import read_srgnn_pickle


class SplitFormatError(Llm4sbrError, ValueError):
    """A pickle is not an SR-GNN ``(sequences, targets)`` tuple of positive item ids."""


@dataclass
class SplitData:
    """One split held as flat arrays.

    Attributes:
        flat: ``int64 [total_inputs]`` all input items, row after row.
        offsets: ``int64 [rows + 1]`` row ``r`` is ``flat[offsets[r]:offsets[r + 1]]``.
        targets: ``int64 [rows]`` target item per row (ids ``1..N``).
        path: the pickle it was read from (``None`` when built in memory).
        row_ids: ``int64 [rows]`` each row's index in ``path`` when this is a part of it (:meth:`subset`);
            ``None``: the rows are the whole file, ids ``0..rows-1``.
    """

    flat: np.ndarray
    offsets: np.ndarray
    targets: np.ndarray
    path: Path | None = None
    row_ids: np.ndarray | None = None
    _sha256: str | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def sha256(self) -> str | None:
        """Hex sha256 of the pickle's bytes (the intent stores' ``sessions_sha256``); ``None`` when built
        in memory. Computed on first use (only runs with an enhancer ask for it) and kept."""
        if self._sha256 is None and self.path is not None:
            from llm4sbr_adapter.hashing import sha256_file

            self._sha256 = sha256_file(self.path)
        return self._sha256

    @property
    def ids(self) -> np.ndarray:
        """``int64 [rows]``: each row's index in the pickle ``path`` (the intent stores' session ids)."""
        return np.arange(len(self.targets), dtype=np.int64) if self.row_ids is None else self.row_ids

    def subset(self, rows: np.ndarray) -> SplitData:
        """The given rows, in that order, still naming their rows of the same pickle (ids and sha256)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = self.flat[np.arange(offsets[-1]) + np.repeat(self.offsets[rows] - offsets[:-1], lengths)]
        part = SplitData(flat=flat, offsets=offsets, targets=self.targets[rows], path=self.path, row_ids=self.ids[rows])
        part._sha256 = self._sha256
        return part

    @property
    def lengths(self) -> np.ndarray:
        """``int64 [rows]`` input length per row."""
        return np.diff(self.offsets)

    def sequence(self, row: int) -> list[int]:
        return self.flat[self.offsets[row] : self.offsets[row + 1]].tolist()

    @property
    def max_item(self) -> int:
        return int(max(self.flat.max(initial=0), self.targets.max(initial=0)))

    @classmethod
    def from_lists(
        cls,
        sequences: Sequence[Sequence[int]],
        targets: Sequence[int],
        path: Path | None = None,
        source: str = "<memory>",
    ) -> SplitData:
        if len(sequences) != len(targets):
            raise SplitFormatError(f"{source}: {len(sequences)} sequences but {len(targets)} targets")
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        if len(lengths) and lengths.min() < 1:
            row = int(np.argmin(lengths))
            raise SplitFormatError(f"{source}: row {row} has an empty input sequence")
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        try:
            flat = np.fromiter((int(i) for s in sequences for i in s), dtype=np.int64, count=int(offsets[-1]))
            tgt = np.asarray([int(t) for t in targets], dtype=np.int64)
        except (TypeError, ValueError) as err:
            raise SplitFormatError(f"{source}: item ids must be integers ({err})") from None
        for name, arr, rows_of in (
            ("input", flat, lambda k: int(np.searchsorted(offsets, k, side="right") - 1)),
            ("target", tgt, lambda k: k),
        ):
            if len(arr) and arr.min() < 1:
                k = int(np.argmin(arr))
                raise SplitFormatError(f"{source}: row {rows_of(k)}: {name} item id {arr[k]} < 1 (0 is padding)")
        return cls(flat=flat, offsets=offsets, targets=tgt, path=path)


def load_split(path: str | os.PathLike) -> SplitData:
    """Read one SR-GNN pickle (``train.txt`` / ``valid.txt`` / ``test.txt``; trusted input only: a pickle can
    run code) through the package's one reader, :func:`~llm4sbr_adapter.offline.srgnn_pickle.read_srgnn_pickle`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    sequences, targets = read_srgnn_pickle(path, SplitFormatError)
    if targets is None:
        raise SplitFormatError(f"{path}: the pickle holds no targets (sequences, None); a split needs them")
    return SplitData.from_lists(sequences, targets, path=path, source=str(path))


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
