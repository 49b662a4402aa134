"""A baseline's validation pass: the dense rank path (``target_ranks`` of ``Baseline.scores``, a ``[B, N]`` float64
block per batch) against the sparse one (``baselines.ranking.sparse_target_ranks``), side by side in one run.

Both paths share the model's raw scores, which are computed once per batch and timed apart; the two rank
computations alternate batch by batch so that load drift hits both, and their ranks must agree exactly.

    python benchmarks/bench_baseline_ranks.py --data /work/runs/paper/beauty/seed0 --models sknn vstan
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from llm4sbr_adapter.experiments.baselines.cli import BaselineData, load_data
from llm4sbr_adapter.experiments.baselines.ranking import dense_target_ranks, sparse_target_ranks
from llm4sbr_adapter.experiments.baselines.search import MODELS, SPACES, batches


def bench(name: str, data: BaselineData, batch_size: int) -> None:
    model = MODELS[name](**SPACES[name].start).fit(data.sessions, data.num_items, data.session_times)
    seconds = {"raw scores": 0.0, "dense ranks": 0.0, "sparse ranks": 0.0}
    for _, prefixes, times, targets in batches(data.queries["valid"], batch_size):
        t0 = time.perf_counter()
        raw = model.raw_scores(prefixes, times)
        t1 = time.perf_counter()
        a = dense_target_ranks(raw, model.pop, targets, prefixes)
        t2 = time.perf_counter()
        b = sparse_target_ranks(raw, model.pop, targets, prefixes)
        t3 = time.perf_counter()
        for flag in (False, True):
            if not np.array_equal(a[flag], b[flag]):
                raise SystemExit(f"error: {name}: the two paths disagree (exclude_seen={flag})")
        seconds["raw scores"] += t1 - t0
        seconds["dense ranks"] += t2 - t1
        seconds["sparse ranks"] += t3 - t2
    before = seconds["raw scores"] + seconds["dense ranks"]
    after = seconds["raw scores"] + seconds["sparse ranks"]
    parts = ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
    print(f"{name}: {parts}; validation pass {before:.2f} s -> {after:.2f} s ({before / after:.2f}x)", flush=True)


def baseline_parser(doc: str | None, models: list[str]) -> argparse.ArgumentParser:
    """The options the baseline benchmarks share: ``--data``, ``--models`` (default ``models``), ``--batch-size``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a prepared folder (train.txt, valid.txt, rows_*.tsv, ...)")
    parser.add_argument("--models", nargs="+", default=models, choices=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=256)
    return parser


def load_one_thread(folder: str) -> BaselineData:
    """The prepared folder's data, torch on one thread, and a header line saying so."""
    torch.set_num_threads(1)
    data = load_data(Path(folder))
    print(f"{folder}: {len(data.queries['valid'].data)} validation rows, {data.num_items} items, one thread")
    return data


def main() -> None:
    args = baseline_parser(__doc__, ["sr", "sknn", "vsknn", "stan", "vstan"]).parse_args()
    data = load_one_thread(args.data)
    for name in args.models:
        bench(name, data, args.batch_size)


if __name__ == "__main__":
    main()
