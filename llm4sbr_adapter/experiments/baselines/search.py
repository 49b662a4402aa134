"""Hyperparameters chosen on validation: each model's search space, the coordinate search, edge reports.

Every point is fitted on the training sessions and scored on ``valid.txt``, once with the prefix's own
items kept and once ranked last (``exclude_seen``; both from one scoring pass); a point's value is the
better of the two allowed ones. The search starts at the space's ``start`` and, one setting at a time in
the listed order, moves to the best value of that setting's list with the others held (a strict gain is
needed, so ties keep the earlier point); the passes repeat until one changes nothing (at most
``MAX_PASSES``). With one setting this is a plain grid search. A chosen number that is the smallest or
largest of its list is reported as *on the edge* (except the values that are limits by definition:
``sample_size`` 0 = every candidate, an IDF weight of 0 = off, ``lambda_snh`` 0 = no session recency), so the
list can be widened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.splits import SplitData
from ..evaluation.metrics import summarize_ranks
from .base import Baseline, Popularity
from .knn import VSKNN, WEIGHTINGS, SessionKNN
from .ranking import sparse_target_ranks
from .stan import STAN, VSTAN
from .transitions import ItemTransitions, SequentialRules

MODELS: dict[str, Callable[..., Baseline]] = {
    "pop": Popularity,
    "markov": ItemTransitions,
    "sr": SequentialRules,
    "sknn": SessionKNN,
    "vsknn": VSKNN,
    "stan": STAN,
    "vstan": VSTAN,
}

MAX_PASSES = 3
K = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
SAMPLE = (100, 250, 500, 1000, 2500, 5000, 10000, 0)  # 0 = every candidate
LAMBDA_POSITION = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)  # clicks
LAMBDA_DAYS = (0.25, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 365.0, 1000.0, 3000.0, 0.0)  # 0 = no recency
IDF = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0)  # 1 + w idf: from off to almost pure IDF
LIMITS = {"sample_size": (0,), "idf_weighting": (0.0,), "lambda_idf": (0.0,), "lambda_snh": (0.0,)}
UNBOUNDED_AT_ZERO = ("sample_size", "lambda_snh")  # 0 = every candidate / an infinite time scale: above all numbers


@dataclass
class Space:
    """Where the search starts and the values tried per setting (in search order)."""

    start: dict
    values: dict[str, tuple] = field(default_factory=dict)


STAN_VALUES = {
    "k": K,
    "sample_size": SAMPLE,
    "lambda_spw": LAMBDA_POSITION,
    "lambda_snh": LAMBDA_DAYS,
    "lambda_inh": LAMBDA_POSITION,
}
SPACES: dict[str, Space] = {
    "pop": Space({}),
    "markov": Space({}),
    "sr": Space({"steps": 10}, {"steps": (1, 2, 3, 5, 10, 15, 20, 30, 50)}),
    "sknn": Space(
        {"k": 100, "sample_size": 1000, "similarity": "cosine"},
        {"k": K, "sample_size": SAMPLE, "similarity": ("cosine", "jaccard")},
    ),
    "vsknn": Space(
        {"k": 100, "sample_size": 1000, "weighting": "div", "weighting_score": "div", "idf_weighting": 0.0},
        {"k": K, "sample_size": SAMPLE, "weighting": WEIGHTINGS, "weighting_score": WEIGHTINGS, "idf_weighting": IDF},
    ),
    "stan": Space(
        {"k": 100, "sample_size": 1000, "lambda_spw": 1.0, "lambda_snh": 5.0, "lambda_inh": 2.0}, dict(STAN_VALUES)
    ),
    "vstan": Space(
        {
            "k": 100,
            "sample_size": 1000,
            "lambda_spw": 1.0,
            "lambda_snh": 5.0,
            "lambda_inh": 2.0,
            "lambda_ipw": 1.0,
            "lambda_idf": 0.0,
        },
        {**STAN_VALUES, "lambda_ipw": LAMBDA_POSITION, "lambda_idf": IDF},
    ),
}


@dataclass
class Queries:
    """A split to score: its rows and, when known, the time of each prefix's last click."""

    data: SplitData
    times: np.ndarray | None = None


def batches(
    queries: Queries, batch_size: int
) -> Iterator[tuple[slice, list[np.ndarray], np.ndarray | None, np.ndarray]]:
    """``(rows, prefixes, their times, target columns int64 [B])`` for consecutive rows."""
    data = queries.data
    for start in range(0, len(data), batch_size):
        stop = min(start + batch_size, len(data))
        prefixes = [data.flat[data.offsets[r] : data.offsets[r + 1]] for r in range(start, stop)]
        times = None if queries.times is None else queries.times[start:stop]
        yield slice(start, stop), prefixes, times, data.targets[start:stop].astype(np.int64) - 1


def evaluate_exclusions(model: Baseline, queries: Queries, batch_size: int = 256) -> dict[bool, np.ndarray]:
    """``{exclude_seen: pessimistic target ranks int64 [rows]}`` in row order for both values, from one scoring
    pass: the ranks of ``target_ranks(model.scores(...))``, read from the sparse raw scores
    (:func:`.ranking.sparse_target_ranks`)."""
    out = {flag: np.zeros(len(queries.data), dtype=np.int64) for flag in (False, True)}
    for rows, prefixes, times, targets in batches(queries, batch_size):
        both = sparse_target_ranks(model.raw_scores(prefixes, times), model.pop, targets, prefixes)
        for flag, ranks in both.items():
            out[flag][rows] = ranks
    return out


def evaluate_ranks(model: Baseline, queries: Queries, batch_size: int = 256) -> np.ndarray:
    """The target ranks with the model's own ``exclude_seen`` (:func:`evaluate_exclusions`)."""
    return evaluate_exclusions(model, queries, batch_size)[model.exclude_seen]


def on_edge(space: Space, params: dict) -> list[str]:
    """``["k=2000 (largest tried)", ...]``: chosen numbers at an end of their list (limits by definition excepted).

    ``sample_size`` 0 (every candidate) sorts above all sizes; a chosen value in ``LIMITS`` is never reported.
    """
    out = []
    for name, values in space.values.items():
        value = params.get(name)
        if len(values) < 2 or any(isinstance(v, str) for v in values) or value in LIMITS.get(name, ()):
            continue
        ordered = sorted(values, key=lambda v: float("inf") if name in UNBOUNDED_AT_ZERO and v == 0 else v)
        if value == ordered[0]:
            out.append(f"{name}={value} (smallest tried)")
        elif value == ordered[-1]:
            out.append(f"{name}={value} (largest tried)")
    return out


@dataclass
class Choice:
    """The outcome of :func:`select_on_valid`: the chosen model (fitted, ``exclude_seen`` set), its validation
    ranks, every evaluated point (``log``) and the index of the chosen one."""

    model: Baseline
    valid_ranks: np.ndarray
    log: list[dict]
    best: int


@dataclass
class _Search:
    """What the coordinate search needs to evaluate one point (see :func:`select_on_valid`)."""

    name: str
    sessions: Sequence[np.ndarray]
    times: np.ndarray | None
    valid: Queries
    num_items: int
    ks: Sequence[int]
    metric: str
    batch_size: int
    exclusions: Sequence[bool]
    log: list[dict] = field(default_factory=list)
    seen: dict[tuple, float] = field(default_factory=dict)
    best: tuple[float, Baseline, np.ndarray, int] | None = None

    def value(self, params: dict) -> float:
        """The validation metric of ``params`` (the better allowed ``exclude_seen``), evaluated once."""
        key = tuple(sorted(params.items()))
        if key in self.seen:
            return self.seen[key]
        t0 = time.perf_counter()
        model = MODELS[self.name](**params).fit(self.sessions, self.num_items, self.times)
        t1 = time.perf_counter()
        variants = evaluate_exclusions(model, self.valid, self.batch_size)
        seconds = time.perf_counter() - t1
        point = float("-inf")
        for flag in (False, True):
            if flag not in self.exclusions:
                continue
            value = summarize_ranks(variants[flag], self.ks)[self.metric]
            entry = {"params": {**params, "exclude_seen": flag}, self.metric: value}
            self.log.append({**entry, "fit_seconds": t1 - t0, "valid_seconds_both": seconds})
            point = max(point, value)
            if self.best is None or value > self.best[0]:
                model.exclude_seen = flag
                self.best = (value, model, variants[flag], len(self.log) - 1)
        self.seen[key] = point
        return point


def select_on_valid(
    name: str,
    space: Space,
    sessions: Sequence[np.ndarray],
    valid: Queries,
    num_items: int,
    ks: Sequence[int],
    metric: str,
    *,
    times: np.ndarray | None = None,
    batch_size: int = 256,
    exclusions: Sequence[bool] = (False, True),
) -> Choice:
    """Coordinate search over ``space`` on validation (module docstring); test data is never seen here."""
    if not exclusions:
        raise ValueError(f"select_on_valid: nothing to choose from (exclusions {list(exclusions)})")
    search = _Search(name, sessions, times, valid, num_items, ks, metric, batch_size, exclusions)
    current = dict(space.start)
    best = search.value(current)
    for _ in range(MAX_PASSES):
        changed = False
        for setting, values in space.values.items():
            for value in values:
                candidate = {**current, setting: value}
                score = search.value(candidate)
                if score > best:
                    best, current, changed = score, candidate, True
        if not changed:
            break
    assert search.best is not None  # the start point is always evaluated
    _, model, ranks, index = search.best
    return Choice(model, ranks, search.log, index)
