"""Paired differences between two sets of runs, with a bootstrap over users rather than rows.

One user gives many test rows (every prefix of a Beauty sequence, several sessions of a MovieLens user),
and rows of one user are not independent: resampling rows would make intervals too narrow. So test
rows are grouped into clusters by their user (``rows_test.tsv`` written by :mod:`.prepare_data`),
and whole users are resampled (a cluster bootstrap; the mean of a resample is its summed difference
over its summed row count, so users weigh by their rows as in the metric itself).

Runs are paired by seed. Seeds that share one test set (the same ``test.txt`` bytes) are averaged row by row
first, then their users resampled together; seeds with their own test sets (the paper protocol, where
the seed draws the split) are resampled independently, stratum by stratum, and the overall difference
is the mean over seeds. The interval covers test-set sampling for these seeds; the per-seed differences
returned beside it show how much the seeds themselves move.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llm4sbr_adapter.hashing import sha256_file

from .metrics import per_session_metrics


@dataclass
class Difference:
    """``b - a`` for one metric: the mean over seeds, its 95 % interval, each seed's own difference."""

    diff: float
    lo: float
    hi: float
    per_seed: dict[int, float] = field(default_factory=dict)
    clustered: bool = True  # False when some test set had no rows_test.tsv (rows resampled instead)

    @property
    def resolved(self) -> bool:
        """True when the interval excludes 0. False means "not resolved", never "the same"."""
        return not (self.lo <= 0 <= self.hi)


def user_clusters(data_dir: str | Path, rows: int) -> np.ndarray | None:
    """``int64 [rows]`` user code of every test row from ``<data_dir>/rows_test.tsv``; ``None`` when absent."""
    path = Path(data_dir) / "rows_test.tsv"
    if not path.is_file():
        return None
    codes: dict[str, int] = {}
    out = np.full(rows, -1, dtype=np.int64)
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if reader.fieldnames is None or not {"row", "user_id"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: line 1: needs columns 'row' and 'user_id', got {reader.fieldnames}")
        for lineno, rec in enumerate(reader, 2):
            row = int(rec["row"])
            if not 0 <= row < rows:
                raise ValueError(f"{path}: line {lineno}: row {row} outside the {rows} test rows")
            out[row] = codes.setdefault(rec["user_id"], len(codes))
    if (out < 0).any():
        first = int(np.argmax(out < 0))
        raise ValueError(f"{path}: {int((out < 0).sum())} test rows have no user (first: row {first})")
    return out


def test_set_key(data: str | None) -> str | None:
    """What identifies a test set: the sha256 of ``<data>/test.txt`` (folders holding the same test rows,
    e.g. ML-100K under the paper protocol, where the seed only draws the validation users, are one test
    set whose users are resampled together), or the folder name when there is no such file."""
    if data is None or not (Path(data) / "test.txt").is_file():
        return data
    return sha256_file(Path(data) / "test.txt")


def cluster_bootstrap(
    strata: Sequence[tuple[np.ndarray, np.ndarray]],
    resamples: int = 10_000,
    seed: int = 0,
    weights: Sequence[float] | None = None,
) -> tuple[float, float, float]:
    """Weighted mean over strata of each stratum's mean ``values``, and its 95 % percentile interval.

    Each stratum is ``(values [rows], clusters [rows])``; a resample draws, in every stratum independently,
    as many clusters as it has, with replacement, and takes ``sum(values) / rows`` over the drawn clusters.
    ``weights`` (default equal) weigh the strata, e.g. by the number of seeds that share a test set.
    """
    rng = np.random.default_rng(seed)
    w = np.ones(len(strata)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    point = float(sum(wk * values.mean() for wk, (values, _) in zip(w, strata, strict=True)))
    total = np.zeros(resamples)
    for wk, (values, clusters) in zip(w, strata, strict=True):
        _, codes = np.unique(clusters, return_inverse=True)
        sums = np.bincount(codes, weights=values)
        counts = np.bincount(codes).astype(np.float64)
        for start in range(0, resamples, 500):  # chunks bound memory at 500 x clusters
            n = min(500, resamples - start)
            idx = rng.integers(0, len(sums), size=(n, len(sums)))
            total[start : start + n] += wk * sums[idx].sum(1) / counts[idx].sum(1)
    lo, hi = np.percentile(total, [2.5, 97.5])
    return point, float(lo), float(hi)


def run_metrics(run: dict, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Per-row test metrics of one run, from the ``.ranks.npz`` beside its JSON (``run["_path"]``)."""
    ranks = np.load(Path(run["_path"]).with_name(run["ranks_file"]))["test_ranks"]
    return per_session_metrics(ranks, ks)


def paired_difference(
    a_runs: Sequence[dict], b_runs: Sequence[dict], metric: str, resamples: int = 10_000, seed: int = 0
) -> Difference:
    """``b - a`` for ``metric`` over the seeds both sets have; a pair must share its test set (``data``)."""
    ks = [int(metric.split("@")[1])]
    a_by, b_by = {r["seed"]: r for r in a_runs}, {r["seed"]: r for r in b_runs}
    seeds = sorted(set(a_by) & set(b_by))
    if not seeds:
        raise ValueError(f"no seed in common between {sorted(a_by)} and {sorted(b_by)}")
    by_data: dict[str | None, list[np.ndarray]] = {}
    per_seed = {}
    for s in seeds:
        data = a_by[s].get("data")
        if data != b_by[s].get("data"):
            raise ValueError(f"seed {s}: runs on different data ({data} vs {b_by[s].get('data')})")
        diff = run_metrics(b_by[s], ks)[metric] - run_metrics(a_by[s], ks)[metric]
        per_seed[s] = float(diff.mean())
        by_data.setdefault(data, []).append(diff)
    point, lo, hi, clustered = bootstrap_by_test_set(by_data, resamples, seed)
    return Difference(point, lo, hi, per_seed, clustered)


def bootstrap_by_test_set(
    by_data: dict[str | None, list[np.ndarray]], resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float, bool]:
    """Mean over seeds and 95 % interval of per-row values grouped by test set (``data`` folder -> one
    array per seed); the last item says whether every test set had users to resample."""
    merged: dict[str | None, tuple[str | None, list[np.ndarray]]] = {}
    for data, arrays in by_data.items():
        merged.setdefault(test_set_key(data), (data, []))[1].extend(arrays)
    strata, clustered = [], True
    for data, arrays in merged.values():
        values = np.mean(arrays, axis=0)
        clusters = user_clusters(data, len(values)) if data else None
        if clusters is None:
            clustered, clusters = False, np.arange(len(values))
        strata.append((values, clusters))
    weights = [len(arrays) for _, arrays in merged.values()]  # seeds per test set: the point is the mean over seeds
    point, lo, hi = cluster_bootstrap(strata, resamples, seed, weights)
    return point, lo, hi, clustered


def metric_interval(
    runs: Sequence[dict], metric: str, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean test ``metric`` over the runs' seeds and its 95 % interval from a bootstrap over test users."""
    ks = [int(metric.split("@")[1])]
    by_data: dict[str | None, list[np.ndarray]] = {}
    for run in runs:
        by_data.setdefault(run.get("data"), []).append(run_metrics(run, ks)[metric])
    point, lo, hi, _ = bootstrap_by_test_set(by_data, resamples, seed)
    return point, lo, hi
