"""Test metrics split by whether the target item ever occurs in the training split.

Under a temporal split, new products appear among the test targets (on Beauty 4,501 of 18,000): their
item embeddings never receive a positive gradient, so no model here ranks them high. This splits each
run group's per-session test metrics into rows whose target is *seen* in ``train.txt`` (as an input
or a target) and rows whose target is *unseen*, so that gains on the learnable part are visible.
Uses the ``.ranks.npz`` files that ``llm4sbr_adapter.experiments.training.train`` writes; nothing is retrained.

    python -m llm4sbr_adapter.experiments.evaluation.seen_targets --data /work/runs/beauty --runs
    /work/runs/beauty/results
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm4sbr_adapter.errors import interruptible

from ..data.splits import load_split
from .summarize import load_named_runs, session_metrics


def seen_mask(data_dir: Path) -> np.ndarray:
    """``bool [test rows]``: the row's target occurs somewhere in ``train.txt``."""
    train, test = load_split(data_dir / "train.txt"), load_split(data_dir / "test.txt")
    seen = np.zeros(max(train.max_item, test.max_item) + 1, dtype=bool)
    seen[train.flat] = True
    seen[train.targets] = True
    return seen[test.targets]


@interruptible
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="HR/MRR@K of run groups on test rows with seen vs unseen targets.")
    p.add_argument("--data", required=True, help="prepared data folder (train.txt, test.txt)")
    p.add_argument(
        "--runs", required=True, help="folder of result JSON + .ranks.npz files (grouped by name without _s<seed>)"
    )
    p.add_argument("--metrics", nargs="+", default=["HR@20", "MRR@20"], help="metrics to report")
    args = p.parse_args(argv)
    mask = seen_mask(Path(args.data))
    ks = sorted({int(m.split("@")[1]) for m in args.metrics})
    print(f"{int(mask.sum())} of {len(mask)} test rows have a target seen in training, {int((~mask).sum())} unseen\n")
    print("| runs | seeds | " + " | ".join(f"{m} seen | {m} unseen" for m in args.metrics) + " |")
    print("|---|---|" + "---:|---:|" * len(args.metrics))
    for name, runs in sorted(load_named_runs(Path(args.runs)).items()):
        per = session_metrics(runs, ks)
        if len(per[args.metrics[0]]) != len(mask):
            raise SystemExit(f"{name}: {len(per[args.metrics[0]])} test ranks but {len(mask)} test rows in {args.data}")
        cells = [f"{100 * per[m][mask].mean():.2f} | {100 * per[m][~mask].mean():.2f}" for m in args.metrics]
        print(f"| {name} | {','.join(str(r['seed']) for r in runs)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
