"""The k-nearest-neighbour selection of the session-kNN models (``NeighbourModel._top_k``): with the per-row
k-th-largest cut before the sort (the library's) against one lexsort over every candidate (the definition),
side by side in one run.

Each batch of validation prefixes is scored by both selections in turn (the order alternates batch by batch
so that load drift hits both); their raw scores must agree exactly.

    python benchmarks/bench_neighbour_selection.py --data /work/runs/paper/beauty/seed0 --models sknn vstan
"""

from __future__ import annotations

import time

import numpy as np

# the shared options and data loading of bench_baseline_ranks.py (this folder is on sys.path when run)
from bench_baseline_ranks import baseline_parser, load_one_thread

from llm4sbr_adapter.experiments.baselines.cli import BaselineData
from llm4sbr_adapter.experiments.baselines.search import MODELS, SPACES, batches


def no_cut(rows: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
    """A k-th-largest bound that keeps every candidate: ``_top_k`` then sorts them all, its definition."""
    return np.full(num_rows, -np.inf)


def bench(name: str, k: int, sample_size: int, data: BaselineData, batch_size: int) -> None:
    params = {**SPACES[name].start, "k": k, "sample_size": sample_size}
    cut = MODELS[name](**params).fit(data.sessions, data.num_items, data.session_times)
    plain = MODELS[name](**params).fit(data.sessions, data.num_items, data.session_times)
    plain._kth_largest = no_cut  # type: ignore[method-assign]
    seconds = {"cut": 0.0, "sort all": 0.0}
    for index, (_, prefixes, times, _) in enumerate(batches(data.queries["valid"], batch_size)):
        scores = {}
        for label, model in (("cut", cut), ("sort all", plain))[:: 1 if index % 2 else -1]:
            t0 = time.perf_counter()
            scores[label] = model.raw_scores(prefixes, times)
            seconds[label] += time.perf_counter() - t0
        if (scores["cut"] != scores["sort all"]).nnz:
            raise SystemExit(f"error: {name} k={k} sample_size={sample_size}: the two selections disagree")
    ratio = seconds["sort all"] / seconds["cut"]
    print(
        f"{name} k={k} sample_size={sample_size}: raw scores {seconds['sort all']:.2f} s -> {seconds['cut']:.2f} s"
        f" ({ratio:.2f}x)",
        flush=True,
    )


def main() -> None:
    parser = baseline_parser(__doc__, ["sknn", "vsknn", "stan", "vstan"])
    parser.add_argument("--k", nargs="+", type=int, default=[100, 1000])
    parser.add_argument("--sample-sizes", nargs="+", type=int, default=[1000, 0])
    args = parser.parse_args()
    data = load_one_thread(args.data)
    for name in args.models:
        for k in args.k:
            for sample_size in args.sample_sizes:
                bench(name, k, sample_size, data, args.batch_size)


if __name__ == "__main__":
    main()
