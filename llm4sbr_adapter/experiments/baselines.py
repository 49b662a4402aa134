"""Simple session-based baselines (Ludewig & Jannach's comparisons), scored like the neural models of :mod:`.train`.

Every model is fitted on the **training sessions** only (:func:`training_sessions`: each row of
``train.txt`` is ``inputs + [target]``; with ``rows_train.tsv`` a row whose sequence is a proper prefix
of another row of the same user is dropped, so Beauty's prefix-augmented rows count each user's sequence
once). For a prefix ``q = (q_1 .. q_L)`` each model gives a score per item ``i`` (``last = q_L``):

* ``pop`` (:class:`Popularity`): ``score(i)`` = clicks on ``i`` in the training sessions (inputs and
  targets). Grid: none.
* ``markov`` (:class:`ItemTransitions`, first-order Markov): ``score(i) = #(last directly followed by i)``
  over the training sessions. Grid: none.
* ``sr`` (:class:`SequentialRules`, SR): every pair ``s_a`` at position ``a``, ``s_b`` at ``b > a`` with
  ``b - a <= steps`` in a training session adds ``1 / (b - a)`` to ``w(s_a, s_b)``; ``score(i) = w(last, i)``.
  Grid: ``steps`` in {1, 2, 3, 5, 10, 20}.
* ``sknn`` (:class:`SessionKNN`, SKNN): binary session vectors; ``sim(q, s) = |q ∩ s| / sqrt(|q| |s|)``
  (cosine over distinct items); ``N_k(q)`` = the ``k`` most similar training sessions (ties: the later
  session, i.e. the higher row of train.txt); ``score(i) = sum_{s in N_k(q), i in s} sim(q, s)``.
  Candidates: all sessions sharing an item with ``q``; with ``sample > 0`` only the ``sample`` latest of
  them, where "latest" means the highest row of ``train.txt`` (SplitData has no timestamps, but both
  protocols of ``llm4sbr_adapter.experiments.data.prepare_data`` write training rows in time order). Grid: ``k`` in
  {20, 50, 100, 200, 500}, ``sample = 0``.
* ``vsknn`` (:class:`VSKNN`, V-SKNN): the prefix's items are weighted by their distance ``d`` from the
  end (``d = 0`` for the last click; an item clicked twice keeps its latest, largest weight):
  ``"div"``: ``w = 1 / (d + 1)``; ``"linear"``: ``w = max(1 - 0.1 d, 0.1)``; with ``idf`` each weight is
  multiplied by ``log(S / df(i))`` (``S`` training sessions, ``df`` sessions containing ``i``), so shared
  rare items count more. ``sim(q, s) = sum_{i in q ∩ s} w(i)`` (not normalised: dividing by ``|q|`` as
  in the original is the same for all neighbours of one query and changes no ranking);
  neighbours and scores as in SKNN. Grid: ``k`` in {20, 50, 100, 200, 500} x ``weighting`` in
  {div, linear} x ``idf`` in {False, True}.

STAN is not implemented (skipped for time; V-SKNN covers the sequence-aware kNN family).

**Ties and unseen scores.** Every model ranks by its score and then by training popularity
(:func:`popularity_tie_break`, exact, no epsilon): items with score 0 are ordered by popularity instead
of all sharing the last rank under the pessimistic tie rule of :mod:`.metrics`. A target never seen
in training has popularity 0 and score 0, so it ranks (pessimistically) last.

**exclude_seen.** Every grid point is also tried with ``exclude_seen=True``: the prefix's own items get
score -1, below all others (both points come from one scoring pass). Validation decides, as for any
hyperparameter. It matters for the kNN models, whose nearest neighbour is often the user's own earlier
history: on Beauty (temporal protocol) no valid target occurs in its prefix, and excluding the prefix
raised SKNN's valid MRR@20 from 0.010 to 0.025.

**Protocol** (as :mod:`.train`): each grid point is fitted on train and evaluated on ``valid.txt``;
the point with the best ``--select-metric`` (first in grid order on ties, exclude_seen False before True) is
evaluated on ``test.txt``
once. Ranks come from :func:`llm4sbr_adapter.experiments.evaluation.metrics.target_ranks` on the scores, in batches of
256 rows (a
``[256, N]`` float64 block is small enough for the allocator to reuse; 1000-row blocks were 3x slower),
so they are computed by the same code as the neural models'. Per model the CLI writes ``<runs>/<model><suffix>.json``
and ``<same stem>.ranks.npz`` in the shape of ``llm4sbr_adapter.experiments.training.train``'s results (readable by
``llm4sbr_adapter.experiments.evaluation.summarize``)::

    python -m llm4sbr_adapter.experiments.baselines --data DIR --runs OUTDIR [--models pop markov sr sknn vsknn]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from llm4sbr_adapter.atomic_files import atomic_write_text
from llm4sbr_adapter.errors import interruptible
from llm4sbr_adapter.output_paths import check_writes, folder_outputs

from .data.catalogue import count_items
from .data.prepared_files import data_inputs, require_rows
from .data.splits import SplitData, load_split
from .evaluation.metrics import summarize_ranks, target_ranks
from .training.loop import atomic_savez, check_select_metric, peak_rss_mb

SPLITS = ("train", "valid", "test")


# --------------------------------------------------------------------------- training sessions
def read_row_users(data_dir: str | Path, split: str) -> np.ndarray | None:
    """``int64 [rows]``: a user code per row of ``<split>.txt`` from ``rows_<split>.tsv`` (None if the file is absent).

    User ids are read as strings and numbered in sorted order (only equality matters). The ``row`` column
    must list ``0..n-1`` once each. Raises ``ValueError`` naming the file and line of a bad header or row.
    """
    path = Path(data_dir) / f"rows_{split}.tsv"
    if not path.is_file():
        return None
    rows, names = [], []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or "row" not in header or "user_id" not in header:
            raise ValueError(f"{path}: line 1: expected a header with columns 'row' and 'user_id', got {header!r}")
        ri, ui = header.index("row"), header.index("user_id")
        for lineno, fields in enumerate(reader, 2):
            if not fields:
                continue
            try:
                rows.append(int(fields[ri]))
                names.append(fields[ui])
            except (ValueError, IndexError):
                raise ValueError(
                    f"{path}: line {lineno}: expected an integer 'row' and a 'user_id', got {fields!r}"
                ) from None
    order = np.asarray(rows, dtype=np.int64)
    if not np.array_equal(np.sort(order), np.arange(len(order))):
        raise ValueError(f"{path}: the 'row' column must list 0..{len(order) - 1} once each")
    users = np.empty(len(order), dtype=np.int64)
    users[order] = np.unique(np.asarray(names, dtype=str), return_inverse=True)[1]
    return users


def training_sessions(data: SplitData, users: np.ndarray | None = None) -> list[np.ndarray]:
    """The training sessions ``inputs + [target]`` of the rows of ``data`` (kept rows in row order).

    Without ``users`` every row is a session. With ``users`` (a code per row), a row's sequence is dropped
    when it is a proper prefix of, or equal to a later copy of, another row's sequence of the same user:
    prefix-augmented data then counts each user's sequence once, while identical sequences of different
    users are all kept. Sorting ``(user, sequence)`` puts any sequence right before its extensions, so
    comparing neighbours in that order finds every prefix.
    """
    bounds = zip(data.offsets[:-1], data.offsets[1:], data.targets, strict=True)
    full = [np.append(data.flat[a:b], t) for a, b, t in bounds]
    if users is None:
        return full
    if len(users) != len(full):
        raise ValueError(f"{len(users)} user codes for {len(full)} rows")
    owner = np.asarray(users).tolist()
    keys = [tuple(s.tolist()) for s in full]
    order = sorted(range(len(full)), key=lambda r: (owner[r], keys[r]))
    drop = np.zeros(len(full), dtype=bool)
    for a, b in itertools.pairwise(order):
        if owner[a] == owner[b] and keys[b][: len(keys[a])] == keys[a]:
            drop[a] = True  # a is a prefix of b (or equal to it: one copy is kept)
    return [s for s, d in zip(full, drop, strict=True) if not d]


def flatten(seqs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(items int64 [total], owner int64 [total])``: all items of ``seqs`` and the index of their sequence."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    items = np.concatenate(seqs).astype(np.int64) if len(seqs) else np.zeros(0, dtype=np.int64)
    return items, np.repeat(np.arange(len(seqs)), lengths)


# --------------------------------------------------------------------------- models
def popularity_tie_break(raw: sp.csr_matrix, pop: np.ndarray) -> np.ndarray:
    """``float64 [B, N]`` that orders each row by ``raw`` (non-negative) and then by ``pop``, exactly.

    Value = ``dense_rank_of_raw_in_row * R + dense_rank_of_pop`` (``R`` distinct popularities; rank 0 for
    ``raw == 0``). Both factors are below ``N + 1``, so the value is an exact integer in float64 and
    ties remain only where both score and popularity tie.
    """
    levels, pop_rank = np.unique(pop, return_inverse=True)
    raw = sp.csr_matrix(raw)
    raw.sum_duplicates()
    coo = raw.tocoo()
    keep = coo.data > 0
    r, c, v = coo.row[keep], coo.col[keep], coo.data[keep]
    order = np.lexsort((v, r))
    r, c, v = r[order], c[order], v[order]
    new_value = np.ones(len(r), dtype=bool)
    new_value[1:] = (r[1:] != r[:-1]) | (v[1:] != v[:-1])
    group = np.cumsum(new_value)
    row_start = np.ones(len(r), dtype=bool)
    row_start[1:] = r[1:] != r[:-1]
    dense = group - np.maximum.accumulate(np.where(row_start, group - 1, 0))  # 1.. within each row
    out = np.tile(pop_rank.astype(np.float64), (raw.shape[0], 1))
    out[r, c] += dense * float(len(levels))
    return out


def rank_prefix_items_last(scores: np.ndarray, prefixes: Sequence[np.ndarray]) -> np.ndarray:
    """Set the scores of each prefix's own items to -1, below every other item (in place; returns ``scores``)."""
    items, owner = flatten(prefixes)
    scores[owner, items - 1] = -1.0
    return scores


class Baseline:
    """Shared parts: ``fit`` keeps the catalogue size and the training popularity; ``scores`` breaks ties by it.

    Subclasses set ``params`` (their constructor's keyword arguments) and implement ``_fit(items, owner)``
    and ``raw_scores(prefixes) -> csr [B, N]``. With ``exclude_seen`` the prefix's own items rank last.
    """

    params: dict
    exclude_seen: bool = False

    def settings(self) -> dict:
        """All hyperparameters: ``params`` and ``exclude_seen`` (``MODELS[name](**settings())`` rebuilds the model)."""
        return {**self.params, "exclude_seen": self.exclude_seen}

    def fit(self, sessions: Sequence[np.ndarray], num_items: int) -> Baseline:
        """Fit on the training sessions (item ids ``1..num_items``); returns ``self``."""
        self.num_items = num_items
        items, owner = flatten(sessions)
        self.pop = np.bincount(items - 1, minlength=num_items).astype(np.float64)
        self.num_sessions = len(sessions)
        self._fit(items, owner)
        return self

    def _fit(self, items: np.ndarray, owner: np.ndarray) -> None:
        raise NotImplementedError

    def raw_scores(self, prefixes: Sequence[np.ndarray]) -> sp.csr_matrix:
        """``csr float64 [B, num_items]``: the model's own scores (column ``j`` = item ``j + 1``)."""
        raise NotImplementedError

    def scores(self, prefixes: Sequence[np.ndarray]) -> np.ndarray:
        """``float64 [B, num_items]`` ranking scores: :meth:`raw_scores`, ties broken by popularity."""
        out = popularity_tie_break(self.raw_scores(prefixes), self.pop)
        return rank_prefix_items_last(out, prefixes) if self.exclude_seen else out


class Popularity(Baseline):
    """Training click counts; the same list for every prefix (the raw scores are empty: popularity decides)."""

    def __init__(self, exclude_seen: bool = False) -> None:
        self.params, self.exclude_seen = {}, exclude_seen

    def _fit(self, items: np.ndarray, owner: np.ndarray) -> None:
        pass

    def raw_scores(self, prefixes: Sequence[np.ndarray]) -> sp.csr_matrix:
        return sp.csr_matrix((len(prefixes), self.num_items), dtype=np.float64)


def transition_matrix(
    items: np.ndarray, owner: np.ndarray, num_items: int, steps: int, weight: Callable[[int], float]
) -> sp.csr_matrix:
    """``csr [N, N]``: ``T[a-1, b-1] = sum weight(d)`` over pairs ``a`` then ``b`` ``d <= steps`` clicks later in one
    session."""
    src, dst, w = [], [], []
    for d in range(1, steps + 1):  # one vectorised pass per distance
        same = owner[:-d] == owner[d:]
        src.append(items[:-d][same] - 1)
        dst.append(items[d:][same] - 1)
        w.append(np.full(int(same.sum()), weight(d)))
    coo = sp.coo_matrix((np.concatenate(w), (np.concatenate(src), np.concatenate(dst))), shape=(num_items, num_items))
    return coo.tocsr()  # duplicates are summed


def last_items(prefixes: Sequence[np.ndarray]) -> np.ndarray:
    """``int64 [B]`` the last item of each prefix."""
    return np.fromiter((p[-1] for p in prefixes), dtype=np.int64, count=len(prefixes))


class SequentialRules(Baseline):
    """SR: ``w(a, b) = sum 1 / d`` over ``b`` following ``a`` ``d <= steps`` clicks later; scores from the last item."""

    def __init__(self, steps: int = 10, exclude_seen: bool = False) -> None:
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps, self.exclude_seen = steps, exclude_seen
        self.params = {"steps": steps}

    def _weight(self, d: int) -> float:
        return 1.0 / d

    def _fit(self, items: np.ndarray, owner: np.ndarray) -> None:
        self.rules = transition_matrix(items, owner, self.num_items, self.steps, self._weight)

    def raw_scores(self, prefixes: Sequence[np.ndarray]) -> sp.csr_matrix:
        return self.rules[last_items(prefixes) - 1]


class ItemTransitions(SequentialRules):
    """First-order Markov chain: counts of ``a`` directly followed by ``b``; scores from the last item."""

    def __init__(self, exclude_seen: bool = False) -> None:
        super().__init__(steps=1, exclude_seen=exclude_seen)
        self.params = {}

    def _weight(self, d: int) -> float:
        return 1.0


class SessionKNN(Baseline):
    """SKNN: cosine over binary session vectors, the ``k`` nearest training sessions vote with their similarity."""

    def __init__(self, k: int = 100, sample: int = 0, exclude_seen: bool = False) -> None:
        if k < 1 or sample < 0:
            raise ValueError(f"need k >= 1 and sample >= 0, got k={k}, sample={sample}")
        self.k, self.sample, self.exclude_seen = k, sample, exclude_seen
        self.params = {"k": k, "sample": sample}

    def _fit(self, items: np.ndarray, owner: np.ndarray) -> None:
        shape = (self.num_sessions, self.num_items)
        x = sp.coo_matrix((np.ones(len(items)), (owner, items - 1)), shape=shape).tocsr()
        x.data[:] = 1.0  # binary: a repeated click counts once
        self.sessions = x
        self.sessions_t = x.T.tocsr()
        self.session_sizes = np.diff(x.indptr).astype(np.float64)

    def query(self, prefixes: Sequence[np.ndarray]) -> sp.csr_matrix:
        """``csr [B, N]``: binary vector of each prefix's distinct items."""
        items, owner = flatten(prefixes)
        q = sp.coo_matrix((np.ones(len(items)), (owner, items - 1)), shape=(len(prefixes), self.num_items)).tocsr()
        q.data[:] = 1.0
        return q

    def similarities(self, prefixes: Sequence[np.ndarray]) -> sp.csr_matrix:
        """``csr [B, S]``: cosine ``|q ∩ s| / sqrt(|q| |s|)`` with every training session sharing an item."""
        q = self.query(prefixes)
        sim = (q @ self.sessions_t).tocsr()
        rows = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
        q_sizes = np.diff(q.indptr).astype(np.float64)
        sim.data /= np.sqrt(q_sizes[rows] * self.session_sizes[sim.indices])
        return sim

    def neighbours(self, prefixes: Sequence[np.ndarray]) -> sp.csr_matrix:
        """``csr [B, S]``: the similarities of each prefix's ``k`` nearest sessions, 0 elsewhere."""
        sim = self.similarities(prefixes)
        sim.sort_indices()
        counts = np.diff(sim.indptr)
        rows = np.repeat(np.arange(sim.shape[0]), counts)
        keep = sim.data > 0
        if self.sample > 0:  # only the `sample` latest candidates (highest rows) per prefix
            keep &= np.repeat(sim.indptr[1:], counts) - np.arange(len(sim.data)) <= self.sample
        r, c, v = rows[keep], sim.indices[keep], sim.data[keep]
        order = np.lexsort((-c, -v, r))  # by row, most similar first, later session first on ties
        r, c, v = r[order], c[order], v[order]
        first = np.searchsorted(r, np.arange(sim.shape[0]))
        top = np.arange(len(r)) - first[r] < self.k
        return sp.csr_matrix((v[top], (r[top], c[top])), shape=sim.shape)

    def raw_scores(self, prefixes: Sequence[np.ndarray]) -> sp.csr_matrix:
        """``score(i) = sum of the similarities of the neighbours that contain i``."""
        return (self.neighbours(prefixes) @ self.sessions).tocsr()


class VSKNN(SessionKNN):
    """V-SKNN: SKNN whose similarity sums position weights (recent clicks count more), optionally times IDF."""

    WEIGHTINGS = ("div", "linear")

    def __init__(
        self, k: int = 100, weighting: str = "div", idf: bool = False, sample: int = 0, exclude_seen: bool = False
    ) -> None:
        super().__init__(k, sample, exclude_seen)
        if weighting not in self.WEIGHTINGS:
            raise ValueError(f"weighting must be one of {self.WEIGHTINGS}, got {weighting!r}")
        self.weighting, self.idf = weighting, idf
        self.params = {"k": k, "weighting": weighting, "idf": idf, "sample": sample}

    def _fit(self, items: np.ndarray, owner: np.ndarray) -> None:
        super()._fit(items, owner)
        df = np.diff(self.sessions_t.indptr).astype(np.float64)
        self.item_idf = np.where(df > 0, np.log(max(self.num_sessions, 1) / np.maximum(df, 1)), 0.0)

    def position_weights(self, distance: np.ndarray) -> np.ndarray:
        """Weight of a click ``distance`` clicks before the last one (0 = the last click)."""
        if self.weighting == "div":
            return 1.0 / (distance + 1.0)
        return np.maximum(1.0 - 0.1 * distance, 0.1)

    def query(self, prefixes: Sequence[np.ndarray]) -> sp.csr_matrix:
        """``csr [B, N]``: each prefix item's weight at its latest click (times IDF with ``idf``)."""
        items, owner = flatten(prefixes)
        ends = np.cumsum(np.fromiter((len(p) for p in prefixes), dtype=np.int64, count=len(prefixes)))
        distance = ends[owner] - 1 - np.arange(len(items))
        key = owner * (self.num_items + 1) + items
        _, latest = np.unique(key[::-1], return_index=True)  # first in reverse = latest click
        latest = len(items) - 1 - latest
        w = self.position_weights(distance[latest].astype(np.float64))
        if self.idf:
            w = w * self.item_idf[items[latest] - 1]
        shape = (len(prefixes), self.num_items)
        return sp.csr_matrix((w, (owner[latest], items[latest] - 1)), shape=shape)

    def similarities(self, prefixes: Sequence[np.ndarray]) -> sp.csr_matrix:
        """``csr [B, S]``: sum of the prefix's item weights over the items each training session contains."""
        return (self.query(prefixes) @ self.sessions_t).tocsr()


MODELS: dict[str, Callable[..., Baseline]] = {
    "pop": Popularity,
    "markov": ItemTransitions,
    "sr": SequentialRules,
    "sknn": SessionKNN,
    "vsknn": VSKNN,
}

GRIDS: dict[str, list[dict]] = {
    "pop": [{}],
    "markov": [{}],
    "sr": [{"steps": s} for s in (1, 2, 3, 5, 10, 20)],
    "sknn": [{"k": k} for k in (20, 50, 100, 200, 500)],
    "vsknn": [
        {"k": k, "weighting": w, "idf": i}
        for w, i, k in itertools.product(("div", "linear"), (False, True), (20, 50, 100, 200, 500))
    ],
}


# --------------------------------------------------------------------------- evaluation
def batches(data: SplitData, batch_size: int) -> Iterator[tuple[slice, list[np.ndarray], torch.Tensor]]:
    """``(rows, prefixes, target columns int64 [B])`` for consecutive rows of ``data`` (a loop per row only to
    slice)."""
    for start in range(0, len(data), batch_size):
        stop = min(start + batch_size, len(data))
        prefixes = [data.flat[data.offsets[r] : data.offsets[r + 1]] for r in range(start, stop)]
        yield slice(start, stop), prefixes, torch.from_numpy(data.targets[start:stop] - 1)


def ranks_of(scores: np.ndarray, targets: torch.Tensor) -> np.ndarray:
    """``llm4sbr_adapter.experiments.evaluation.metrics.target_ranks`` of numpy scores: the neural models' rank code."""
    return target_ranks(torch.from_numpy(scores), targets).numpy()


@torch.no_grad()
def evaluate_ranks(model: Baseline, data: SplitData, batch_size: int = 256) -> np.ndarray:
    """Pessimistic target ranks ``int64 [rows]`` of ``data`` in row order, from ``model.scores``.

    Ranks go into one preallocated array: keeping a small array per batch between the large score
    blocks fragmented the heap (peak RSS grew by ~16 MiB per batch on Beauty).
    """
    ranks = np.zeros(len(data), dtype=np.int64)
    for rows, prefixes, targets in batches(data, batch_size):
        ranks[rows] = ranks_of(model.scores(prefixes), targets)
    return ranks


@torch.no_grad()
def evaluate_exclusions(model: Baseline, data: SplitData, batch_size: int = 256) -> dict[bool, np.ndarray]:
    """``{exclude_seen: ranks}`` for both values from one scoring pass (the same as two :func:`evaluate_ranks`)."""
    keep, model.exclude_seen = model.exclude_seen, False
    out = {False: np.zeros(len(data), dtype=np.int64), True: np.zeros(len(data), dtype=np.int64)}
    try:
        for rows, prefixes, targets in batches(data, batch_size):
            scores = model.scores(prefixes)
            out[False][rows] = ranks_of(scores, targets)
            out[True][rows] = ranks_of(rank_prefix_items_last(scores, prefixes), targets)
    finally:
        model.exclude_seen = keep
    return out


def select_on_valid(
    name: str,
    grid: Sequence[dict],
    sessions: list[np.ndarray],
    valid: SplitData,
    num_items: int,
    ks: Sequence[int],
    metric: str,
    batch_size: int = 256,
    exclusions: Sequence[bool] = (False, True),
) -> tuple[Baseline, np.ndarray, list[dict], int]:
    """Fit each grid point on ``sessions`` and score ``valid``: ``(best model, its valid ranks, grid log, best index)``.

    Every grid point is tried with each ``exclude_seen`` value in ``exclusions`` (one scoring pass for both). The best
    setting has the highest validation ``metric``; the first in log order wins ties. Test data is never
    seen here.
    """
    best: tuple[float, Baseline, bool, np.ndarray, int] | None = None
    log: list[dict] = []
    for params in grid:
        t0 = time.perf_counter()
        model = MODELS[name](**params).fit(sessions, num_items)
        t1 = time.perf_counter()
        variants = evaluate_exclusions(model, valid, batch_size)
        seconds = time.perf_counter() - t1
        for flag, ranks in variants.items():
            if flag not in exclusions:
                continue
            value = summarize_ranks(ranks, ks)[metric]
            log.append(
                {
                    "params": {**params, "exclude_seen": flag},
                    metric: value,
                    "fit_seconds": t1 - t0,
                    "valid_seconds_both": seconds,
                }
            )
            if best is None or value > best[0]:
                best = (value, model, flag, ranks, len(log) - 1)
    if best is None:
        raise ValueError(
            f"select_on_valid: nothing to choose from ({len(grid)} grid points, exclusions {list(exclusions)})"
        )
    _, model, flag, ranks, index = best
    model.exclude_seen = flag
    return model, ranks, log, index


def run_model(
    name: str, data: dict[str, SplitData], sessions: list[np.ndarray], num_items: int, args: argparse.Namespace
) -> tuple[dict, dict[str, np.ndarray]]:
    """Select ``name``'s hyperparameters on valid, test once: ``(result dict, arrays for the .ranks.npz)``."""
    ks = sorted(set(args.topk))
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    exclusions = (False, True) if args.exclude_seen == "choose" else (False,)
    model, valid_ranks, grid_log, best = select_on_valid(
        name, GRIDS[name], sessions, data["valid"], num_items, ks, args.select_metric, args.batch_size, exclusions
    )
    grid_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    test_ranks = evaluate_ranks(model, data["test"], args.batch_size)
    result = {
        "model": name,
        "enhancer": False,
        "seed": args.seed,
        "data": str(Path(args.data).resolve()),
        "rows": {split: len(d) for split, d in data.items()},
        "num_items": num_items,
        "config": {
            "params": model.settings(),
            "grid": GRIDS[name],
            "exclude_seen": list(exclusions),
            "training_sessions": len(sessions),
            "topk": ks,
            "select_metric": args.select_metric,
            "batch_size": args.batch_size,
        },
        "best_epoch": 0,
        "select_metric": args.select_metric,
        "valid_at_best": summarize_ranks(valid_ranks, ks),
        "test": summarize_ranks(test_ranks, ks),
        "epochs_run": 0,
        "seconds_per_epoch_train": grid_log[best]["fit_seconds"],
        "seconds_per_epoch_valid": grid_log[best]["valid_seconds_both"],
        "seconds_test": time.perf_counter() - t1,
        "seconds_grid": grid_seconds,
        "peak_rss_mb_before_training": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "valid_grid": grid_log,
        "log": [],
        "ranks_file": None,
    }
    arrays = {
        "test_ranks": test_ranks.astype(np.int64),
        "valid_ranks": valid_ranks.astype(np.int64),
        "test_targets": data["test"].targets,
    }
    return result, arrays


def write_result(result: dict, arrays: dict[str, np.ndarray], out: Path) -> None:
    """Write ``<stem>.ranks.npz`` and then ``out`` (JSON, naming the npz), both atomically."""
    ranks_path = out.with_name(out.stem + ".ranks.npz")
    atomic_savez(ranks_path, **arrays)
    result["ranks_file"] = ranks_path.name
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")


# --------------------------------------------------------------------------- command line
def load_data(data_dir: Path) -> tuple[dict[str, SplitData], list[np.ndarray], int]:
    """``({split: data}, training sessions, catalogue size)``; prefixes of one user are merged via rows_train.tsv."""
    data = {split: load_split(data_dir / f"{split}.txt") for split in SPLITS}
    require_rows(data_dir, data)
    num_items = count_items(data_dir, list(data.values()))
    users = read_row_users(data_dir, "train")
    if users is not None and len(users) != len(data["train"]):
        raise ValueError(f"{data_dir / 'rows_train.tsv'} has {len(users)} rows but train.txt has {len(data['train'])}")
    return data, training_sessions(data["train"], users), num_items


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Popularity, Markov, SR, SKNN and V-SKNN baselines: hyperparameters "
        "chosen on valid, test once, results in llm4sbr_adapter.experiments.training.train's format."
    )
    p.add_argument(
        "--data", required=True, help="folder with train.txt, valid.txt, test.txt (items.tsv, rows_train.tsv)"
    )
    p.add_argument("--runs", required=True, help="output folder for <model><suffix>.json and .ranks.npz")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS), help="models to run")
    p.add_argument("--seed", type=int, default=0, help="recorded in the results (the baselines are deterministic)")
    p.add_argument(
        "--name-suffix",
        help="file name suffix (default _s<seed>, as llm4sbr_adapter.experiments.evaluation.summarize --by-name "
        "expects)",
    )
    p.add_argument("--topk", type=int, nargs="+", default=[5, 10, 20], help="cut-offs K for HR/MRR/NDCG")
    p.add_argument("--select-metric", default="MRR@20", help="validation metric that picks the hyperparameters")
    p.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="prefixes scored at once (256: the [B, N] blocks stay small enough to be reused)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (for the rank computation)")
    p.add_argument(
        "--exclude-seen",
        choices=("choose", "never"),
        default="choose",
        help="choose: try ranking the prefix's own items last at every grid point, validation decides; "
        "never: keep them, like the neural models (for a like-for-like comparison)",
    )
    p.add_argument("--force", action="store_true", help="recompute models whose result JSON already exists")
    args = p.parse_args(argv)
    try:
        if min(args.topk) < 1 or args.batch_size < 1:
            raise ValueError("--topk and --batch-size must be positive")
        check_select_metric(args.select_metric, sorted(set(args.topk)))
    except ValueError as err:
        p.error(str(err))
    return args


def run(args: argparse.Namespace) -> list[dict]:
    """Run every requested model not yet done; returns the new results."""
    suffix = f"_s{args.seed}" if args.name_suffix is None else args.name_suffix
    names = [f"{name}{suffix}{ext}" for name in dict.fromkeys(args.models) for ext in (".json", ".ranks.npz")]
    check_writes(folder_outputs("--runs", args.runs, names), data_inputs(args.data))
    torch.set_num_threads(args.threads)
    data, sessions, num_items = load_data(Path(args.data))
    done = []
    for name in dict.fromkeys(args.models):
        out = Path(args.runs) / f"{name}{suffix}.json"
        if out.exists() and not args.force:
            print(f"{name}: {out} exists, skipped (--force recomputes)")
            continue
        result, arrays = run_model(name, data, sessions, num_items, args)
        write_result(result, arrays, out)
        test = result["test"]
        print(
            f"{name} {result['config']['params']}: valid {args.select_metric} "
            f"{result['valid_at_best'][args.select_metric]:.4f}; test HR@20 {test.get('HR@20', float('nan')):.4f} "
            f"MRR@20 {test.get('MRR@20', float('nan')):.4f}; grid {result['seconds_grid']:.1f}s -> {out}"
        )
        done.append(result)
    return done


@interruptible
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (OSError, ValueError) as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
