"""Neighbour sessions from a bank of training sessions, weighted by the session's intent.

:class:`SessionNeighbourBank` keeps one FAISS index per level over L2-normalised float32 vectors of
*training* sessions (cosine similarity): exact ``IndexFlatIP`` by default, or an inverted-file
``IndexIVFFlat`` (``index="ivf"``) for large banks, where exact search dominates the epoch:

* ``"global"``: a whole-session embedding (e.g. SR-GNN's attention-pooled ``s_g``);
* ``"local"``: an embedding of the last few items (see :func:`last_items_mean`).

It is (re)built from the backbone's current embeddings, normally once per epoch, with
:meth:`SessionNeighbourBank.refresh` (runs under ``torch.no_grad``). The stored vectors are
therefore detached and up to one epoch stale (a memory bank); gradients reach the querying
session and the aggregator, not the neighbours.

Leakage rules. The bank only ever holds what the caller put in: build it from the training
split only. During training a session must not retrieve itself (``exclude_ids``: its row id in
the bank) and, with prefix-augmented data (SR-GNN style, where ``[a, b, c] -> d`` and
``[a, b, c, d] -> e`` come from the same original session), should not retrieve other prefixes of
its own original session either (``exclude_groups``), since those contain its target item. At
test time no id is excluded and the returned neighbours are training sessions by construction;
the query depends only on the test session itself.

:class:`IntentGuidedNeighbourAggregator` turns the retrieved neighbours into one vector per
session: per level, an attention whose query is the session's intent scores the M neighbours,
a sparse normaliser (1.5-entmax by default, or sparsemax / top-k softmax) gives unrelated
neighbours exactly zero weight, and a learned gate mixes the per-level summaries into the
neighbour-enhanced view ``[batch, d]``.
"""

from __future__ import annotations

import functools
import logging
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..faiss_import import faiss
from ..vector_index import inner_product_index
from .sparse_attention import SPARSE_NORMALISERS, sparse_normalise

logger = logging.getLogger(__name__)

__all__ = [
    "BankRows",
    "NeighbourHits",
    "NeighbourView",
    "SessionNeighbourBank",
    "IntentGuidedNeighbourAggregator",
    "last_items_mean",
]

LEVELS = ("global", "local")


def last_items_mean(item_states: Tensor, mask: Tensor, last_n: int = 3) -> Tensor:
    """Mean of the states of each session's last ``last_n`` valid positions.

    Args:
        item_states: ``[batch, length, d]``.
        mask: ``[batch, length]`` bool, True at real items (any padding layout; "last" = highest
            valid positions).
        last_n: how many trailing items to average (sessions shorter than that use all items).

    Returns:
        ``[batch, d]``.
    """
    if last_n < 1:
        raise ValueError(f"last_n must be >= 1, got {last_n}")
    mask = mask.bool()
    if not bool(mask.any(dim=1).all()):
        raise ValueError("a session has no item (mask all False)")
    # rank of each valid position counted from the end: 1 for the last item
    from_end = mask.flip(1).long().cumsum(1).flip(1)
    keep = (mask & (from_end <= last_n)).to(item_states.dtype).unsqueeze(-1)
    return (item_states * keep).sum(1) / keep.sum(1)


def _as_faiss(x: Tensor | np.ndarray) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    # always a copy: faiss.normalize_L2 works in place, and a detached tensor's .numpy() shares
    # memory with the caller's tensor (normalising it would silently rescale the session embedding)
    arr = np.array(arr, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(arr)
    return arr


@overload
def _as_int64(x: None, n: int, name: str) -> None: ...
@overload
def _as_int64(x: Tensor | np.ndarray | Sequence[int], n: int, name: str) -> np.ndarray: ...
def _as_int64(x: Tensor | np.ndarray | Sequence[int] | None, n: int, name: str) -> np.ndarray | None:
    if x is None:
        return None
    arr = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape [{n}], got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


@dataclass
class BankRows:
    """One batch of training sessions to store: ``ids [n]`` int64, ``vectors {level: [n, d]}``,
    optional ``groups [n]`` (original session of each prefix) and ``targets [n]`` (next item)."""

    ids: Tensor | np.ndarray
    vectors: Mapping[str, Tensor]
    groups: Tensor | np.ndarray | None = None
    targets: Tensor | np.ndarray | None = None


@dataclass
class NeighbourHits:
    """Result of :meth:`SessionNeighbourBank.search` for one level.

    Attributes:
        rows: ``[batch, M]`` int64 bank rows, ``-1`` where fewer than M neighbours exist.
        ids: ``[batch, M]`` int64 session ids of those rows (``-1`` likewise).
        scores: ``[batch, M]`` float32 cosine similarities (``-inf`` at missing slots).
        valid: ``[batch, M]`` bool.
    """

    rows: Tensor
    ids: Tensor
    scores: Tensor
    valid: Tensor


class SessionNeighbourBank:
    """FAISS bank of training-session vectors at the ``"global"`` and ``"local"`` levels.

    Args:
        hidden_size: vector size ``d``.
        levels: which levels to keep (subset of ``("global", "local")`` or any names you pass in
            :meth:`build`).
        index: ``"flat"`` (exact, the default) or ``"ivf"``: ``IndexIVFFlat`` with ``nlist`` cells
            (default ``4 * sqrt(N)``, k-means trained on the bank itself at every build) of which
            ``nprobe`` are searched per query. Approximate: a true neighbour in an unvisited cell is
            missed. A bank smaller than ``ivf_min_rows`` stays exact.
        nlist, nprobe, ivf_min_rows: the IVF settings above.
    """

    def __init__(
        self,
        hidden_size: int,
        levels: Sequence[str] = LEVELS,
        *,
        index: str = "flat",
        nlist: int | None = None,
        nprobe: int = 16,
        ivf_min_rows: int = 10_000,
    ) -> None:
        if index not in ("flat", "ivf"):
            raise ValueError(f"index must be 'flat' or 'ivf', got {index!r}")
        if nprobe < 1 or (nlist is not None and nlist < 1):
            raise ValueError(f"nlist and nprobe must be >= 1, got nlist={nlist}, nprobe={nprobe}")
        self.hidden_size = hidden_size
        self.levels = tuple(levels)
        self.index_kind, self.nlist, self.nprobe, self.ivf_min_rows = index, nlist, nprobe, ivf_min_rows
        self._index: dict[str, faiss.Index] = {}
        self._vectors: dict[str, Tensor] = {}
        self._ids = np.zeros(0, dtype=np.int64)
        self._groups: np.ndarray | None = None
        self._targets: np.ndarray | None = None
        self._max_group = 1
        self.version = 0  # bumped on each build, so callers can tell a refresh happened

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    @property
    def ids(self) -> np.ndarray:
        """``[N]`` int64 session ids stored, in bank-row order."""
        return self._ids

    @property
    def targets(self) -> np.ndarray | None:
        return self._targets

    @property
    def groups(self) -> np.ndarray | None:
        return self._groups

    # ------------------------------------------------------------------ building
    def build(
        self,
        ids: Tensor | np.ndarray | Sequence[int],
        vectors: Mapping[str, Tensor | np.ndarray],
        *,
        groups: Tensor | np.ndarray | None = None,
        targets: Tensor | np.ndarray | None = None,
    ) -> None:
        """Replace the bank's content.

        Args:
            ids: ``[N]`` unique int session ids (e.g. row numbers of the training file).
            vectors: ``{level: [N, d]}`` for every level in ``self.levels``.
            groups: optional ``[N]`` int original-session id per row (for ``exclude_groups``).
            targets: optional ``[N]`` int target item per row (for hard-negative filtering).
        """
        ids_np = np.asarray(ids.detach().cpu().numpy() if isinstance(ids, Tensor) else ids)
        if ids_np.ndim != 1 or not np.issubdtype(ids_np.dtype, np.integer):
            raise ValueError(f"ids must be a 1-D integer array, got shape {ids_np.shape} dtype {ids_np.dtype}")
        n = ids_np.shape[0]
        if n == 0:
            raise ValueError("cannot build a neighbour bank from zero sessions")
        uniq, counts = np.unique(ids_np, return_counts=True)
        if uniq.shape[0] != n:
            raise ValueError(
                f"session ids must be unique; e.g. id {int(uniq[counts > 1][0])} occurs {int(counts.max())} times"
            )
        missing = [lv for lv in self.levels if lv not in vectors]
        if missing:
            raise ValueError(f"vectors lack levels {missing}; got {sorted(vectors)}")
        index: dict[str, faiss.Index] = {}
        stored: dict[str, Tensor] = {}
        for lv in self.levels:
            v = vectors[lv]
            v_t = (
                v.detach().float().cpu() if isinstance(v, Tensor) else torch.as_tensor(np.asarray(v, dtype=np.float32))
            )
            if v_t.shape != (n, self.hidden_size):
                raise ValueError(f"level {lv!r}: vectors must be [{n}, {self.hidden_size}], got {tuple(v_t.shape)}")
            if not bool(torch.isfinite(v_t).all()):
                raise ValueError(f"level {lv!r}: vectors contain NaN or inf")
            index[lv] = self._make_index(_as_faiss(v_t))
            stored[lv] = v_t.contiguous()
        self._groups = _as_int64(groups, n, "groups")
        self._targets = _as_int64(targets, n, "targets")
        self._max_group = int(np.unique(self._groups, return_counts=True)[1].max()) if self._groups is not None else 1
        self._index, self._vectors, self._ids = index, stored, ids_np.astype(np.int64)
        self.version += 1
        logger.info(
            "neighbour bank v%d: %d sessions, levels %s, largest group %d",
            self.version,
            n,
            self.levels,
            self._max_group,
        )

    def _make_index(self, x: np.ndarray) -> faiss.Index:
        """A filled FAISS index over the normalised ``x [N, d]`` of one level."""
        if self.index_kind == "flat" or len(x) < self.ivf_min_rows:
            return inner_product_index(x, "flat")
        nlist = self.nlist or int(4 * np.sqrt(len(x)))
        nlist = max(1, min(nlist, len(x) // 39))  # FAISS wants >= 39 training points per centroid
        return inner_product_index(x, "ivf", nlist=nlist, nprobe=self.nprobe)  # seeded k-means: reproducible

    def refresh(
        self,
        batches: Iterable,
        encode: Callable[[object], BankRows],
        *,
        model: nn.Module | None = None,
        progress: bool = True,
    ) -> None:
        """Rebuild from the current model: ``encode(batch) -> BankRows`` for each training batch.

        Runs under ``torch.no_grad()``; if ``model`` is given it is put in eval mode for the pass
        and restored to its previous mode afterwards (so dropout does not perturb the bank).
        """
        was_training = model.training if model is not None else None
        if model is not None:
            model.eval()
        ids, groups, targets = [], [], []
        vecs: dict[str, list[Tensor]] = {lv: [] for lv in self.levels}
        try:
            with torch.no_grad():
                for batch in tqdm(batches, desc="neighbour bank", disable=not progress, leave=False):
                    rows = encode(batch)
                    ids.append(np.asarray(rows.ids.cpu().numpy() if isinstance(rows.ids, Tensor) else rows.ids))
                    for lv in self.levels:
                        vecs[lv].append(rows.vectors[lv].detach().float().cpu())
                    if rows.groups is not None:
                        groups.append(
                            np.asarray(rows.groups.cpu().numpy() if isinstance(rows.groups, Tensor) else rows.groups)
                        )
                    if rows.targets is not None:
                        targets.append(
                            np.asarray(rows.targets.cpu().numpy() if isinstance(rows.targets, Tensor) else rows.targets)
                        )
        finally:
            if model is not None and was_training:
                model.train()
        if not ids:
            raise ValueError("refresh() got no batches")
        if groups and len(groups) != len(ids):
            raise ValueError("encode() returned groups for some batches but not others")
        if targets and len(targets) != len(ids):
            raise ValueError("encode() returned targets for some batches but not others")
        self.build(
            np.concatenate(ids),
            {lv: torch.cat(vecs[lv]) for lv in self.levels},
            groups=np.concatenate(groups) if groups else None,
            targets=np.concatenate(targets) if targets else None,
        )

    # ------------------------------------------------------------------ querying
    def search(
        self,
        level: str,
        queries: Tensor,
        top_m: int,
        *,
        exclude_ids: Tensor | None = None,
        exclude_groups: Tensor | None = None,
        skip: int = 0,
    ) -> NeighbourHits:
        """Top-``top_m`` bank sessions by cosine to ``queries`` ``[batch, d]``.

        Args:
            level: which index to search.
            queries: ``[batch, d]`` (detached and normalised internally).
            top_m: neighbours per query.
            exclude_ids: optional ``[batch]`` int; a hit with that session id is dropped (training:
                the query's own row).
            exclude_groups: optional ``[batch]`` int; hits from that group are dropped (needs
                ``groups`` at build time).
            skip: drop the best ``skip`` (post-exclusion) hits first; ranks ``skip .. skip+top_m``
                are returned (used to mine hard negatives just beyond the top-M).

        Returns:
            :class:`NeighbourHits` on ``queries``' device.
        """
        if not self._index:
            raise RuntimeError("the neighbour bank is empty: build() or refresh() it from the training sessions first")
        if level not in self._index:
            raise KeyError(f"level {level!r} not in bank levels {self.levels}")
        if queries.dim() != 2 or queries.shape[1] != self.hidden_size:
            raise ValueError(f"queries must be [batch, {self.hidden_size}], got {tuple(queries.shape)}")
        want = top_m + skip
        slack = (1 if exclude_ids is not None else 0) + (self._max_group if exclude_groups is not None else 0)
        k = min(want + slack, len(self))
        scores, rows = self._index[level].search(_as_faiss(queries), k)  # [B, k]
        keep = self._kept(rows, exclude_ids, exclude_groups)
        # stable compaction: kept hits first, in score order
        order = np.argsort(~keep, axis=1, kind="stable")
        rows = np.take_along_axis(rows, order, 1)
        scores = np.take_along_axis(scores, order, 1)
        keep = np.take_along_axis(keep, order, 1)
        rows, scores, keep = rows[:, skip:want], scores[:, skip:want], keep[:, skip:want]
        if rows.shape[1] < top_m:  # bank smaller than asked
            pad = top_m - rows.shape[1]
            rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)))
            keep = np.pad(keep, ((0, 0), (0, pad)))
        rows = np.where(keep, rows, -1)
        ids = np.where(keep, self._ids[np.where(keep, rows, 0)], -1)
        scores = np.where(keep, scores, -np.inf).astype(np.float32)
        dev = queries.device
        return NeighbourHits(
            rows=torch.from_numpy(rows.astype(np.int64)).to(dev),
            ids=torch.from_numpy(ids.astype(np.int64)).to(dev),
            scores=torch.from_numpy(scores).to(dev),
            valid=torch.from_numpy(keep).to(dev),
        )

    def _kept(self, rows: np.ndarray, exclude_ids: Tensor | None, exclude_groups: Tensor | None) -> np.ndarray:
        """``bool [B, k]``: the hits of ``rows`` that exist and are neither the query's own id nor of its group."""
        b = rows.shape[0]
        keep = rows >= 0
        if exclude_ids is not None:
            ex = _as_int64(exclude_ids, b, "exclude_ids")
            keep &= self._ids[np.where(rows >= 0, rows, 0)] != ex[:, None]
        if exclude_groups is not None:
            if self._groups is None:
                raise ValueError("exclude_groups needs a bank built with groups=")
            exg = _as_int64(exclude_groups, b, "exclude_groups")
            keep &= self._groups[np.where(rows >= 0, rows, 0)] != exg[:, None]
        return keep

    def gather(
        self, level: str, rows: Tensor, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Tensor:
        """Stored (un-normalised) vectors of bank ``rows`` ``[batch, M]`` -> ``[batch, M, d]``; zeros at ``-1``."""
        store = self._vectors[level]
        r = rows.detach().cpu()
        out = store[r.clamp(min=0)] * (r >= 0).unsqueeze(-1).to(store.dtype)
        return out.to(device=device or rows.device, dtype=dtype or store.dtype)

    def targets_of(self, rows: Tensor) -> Tensor:
        """Targets of bank ``rows`` ``[batch, M]`` (``-1`` at missing rows); needs ``targets`` at build."""
        if self._targets is None:
            raise ValueError("the bank was built without targets=")
        r = rows.detach().cpu().numpy()
        return torch.from_numpy(np.where(r >= 0, self._targets[np.where(r >= 0, r, 0)], -1)).to(rows.device)


@dataclass
class NeighbourView:
    """Result of :class:`IntentGuidedNeighbourAggregator`.

    Attributes:
        view: ``[batch, d]`` the neighbour-enhanced session view.
        level_views: ``{level: [batch, d]}`` per-level weighted neighbour summaries.
        weights: ``{level: [batch, M]}`` sparse attention weights (exact zeros; rows sum to 1, or
            to 0 where a session has no valid neighbour).
        gate: ``[batch, num_levels]`` the level mixing weights.
    """

    view: Tensor
    level_views: dict[str, Tensor]
    weights: dict[str, Tensor]
    gate: Tensor


class IntentGuidedNeighbourAggregator(nn.Module):
    """Sparse, intent-queried attention over neighbour sessions, mixed across levels by a gate.

    For level ``l`` with neighbours ``n_1..n_M`` and intent ``q``:
    ``s_j = scale * <W_q^l q, W_k^l n_j> / sqrt(d)``, ``a = normaliser(s)`` (exact zeros),
    ``v_l = sum_j a_j n_j``. Then ``g = softmax(W_g [q; v_1; ...; v_L])`` and
    ``view = sum_l g_l v_l``.

    Args:
        hidden_size: ``d``.
        levels: level names, in the order of the gate.
        normaliser: ``"entmax15"`` (default), ``"sparsemax"``, ``"topk"`` or ``"softmax"`` (dense).
        topk: ``k`` for ``"topk"``.
        scale_init: initial value of the learned score scale ``scale = exp(log_scale)``. Scores of
            size ``<q, k> / sqrt(d)`` are small at initialisation, and 1.5-entmax (sparsemax) only
            zeroes a neighbour whose score is more than 2 (1) below the best one, so with the default
            1.0 the attention starts nearly dense and becomes sparse only as the scale is learnt;
            a larger value starts sparser.
    """

    def __init__(
        self,
        hidden_size: int,
        levels: Sequence[str] = LEVELS,
        normaliser: str = "entmax15",
        topk: int | None = None,
        scale_init: float = 1.0,
    ) -> None:
        super().__init__()
        if normaliser not in SPARSE_NORMALISERS:
            raise ValueError(f"normaliser must be one of {SPARSE_NORMALISERS}, got {normaliser!r}")
        if normaliser == "topk" and (topk is None or topk < 1):
            raise ValueError("normaliser='topk' needs topk >= 1")
        self.hidden_size = hidden_size
        self.levels = tuple(levels)
        self.normaliser = normaliser
        self.topk = topk
        self.query = nn.ModuleDict({lv: nn.Linear(hidden_size, hidden_size, bias=False) for lv in self.levels})
        self.key = nn.ModuleDict({lv: nn.Linear(hidden_size, hidden_size, bias=False) for lv in self.levels})
        if not scale_init > 0:
            raise ValueError(f"scale_init must be > 0, got {scale_init}")
        self.log_scale = nn.Parameter(torch.tensor(float(scale_init)).log())
        self.gate = nn.Linear(hidden_size * (1 + len(self.levels)), len(self.levels))

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, levels={self.levels}, normaliser={self.normaliser!r}"

    def forward(
        self, intent: Tensor, neighbours: Mapping[str, Tensor], valid: Mapping[str, Tensor] | None = None
    ) -> NeighbourView:
        """``intent [B, d]``, ``neighbours {level: [B, M, d]}``, ``valid {level: [B, M]}`` bool
        -> :class:`NeighbourView`."""
        if intent.dim() != 2 or intent.shape[1] != self.hidden_size:
            raise ValueError(f"intent must be [batch, {self.hidden_size}], got {tuple(intent.shape)}")
        views, weights = {}, {}
        for lv in self.levels:
            if lv not in neighbours:
                raise KeyError(f"neighbours lack level {lv!r}")
            n = neighbours[lv]
            if n.dim() != 3 or n.shape[0] != intent.shape[0] or n.shape[2] != self.hidden_size:
                raise ValueError(f"neighbours[{lv!r}] must be [batch, M, {self.hidden_size}], got {tuple(n.shape)}")
            mask = valid[lv].bool() if valid is not None else None
            q = self.query[lv](intent)
            k = self.key[lv](n)
            scores = torch.einsum("bd,bmd->bm", q, k) * (self.log_scale.exp() / self.hidden_size**0.5)
            a = sparse_normalise(scores, self.normaliser, dim=-1, mask=mask, k=self.topk)
            weights[lv] = a
            views[lv] = torch.einsum("bm,bmd->bd", a, n)
        gate = torch.softmax(self.gate(torch.cat([intent] + [views[lv] for lv in self.levels], dim=-1)), dim=-1)
        terms = [gate[:, i : i + 1] * views[lv] for i, lv in enumerate(self.levels)]
        view = functools.reduce(operator.add, terms)  # the same additions, in the same order, as sum()
        return NeighbourView(view=view, level_views=views, weights=weights, gate=gate)
