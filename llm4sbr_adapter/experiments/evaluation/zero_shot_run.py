"""One intent store's ranking written as a run, so "LLM zero-shot" sits in Table 2 like any model.

:mod:`.intent_quality` with ``--runs DIR`` calls :func:`write_zero_shot_run`: the chosen view of the store
(``together`` by default) ranks the catalogue for every row of ``test.txt`` and the ranks go to
``DIR/<name>_s<seed>.json`` plus ``DIR/<name>_s<seed>.ranks.npz`` (``test_ranks``, ``test_targets``), the
files :mod:`.table2`, :mod:`.summarize` and :mod:`.bootstrap` read from a training run. ``data`` is the
resolved data folder, as a training run writes it, so the bootstrap pairs the zero-shot run with the
other runs of that folder and clusters its rows by the users of ``rows_test.tsv``.

Nothing is trained and no hyperparameter is chosen: the run has no validation score and no epochs.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from llm4sbr_adapter.atomic_files import atomic_write_text
from llm4sbr_adapter.hashing import sha256_file

from ..data.splits import SplitData
from .metrics import summarize_ranks, target_ranks
from .ranks_file import atomic_savez

__all__ = ["scorer_ranks", "write_zero_shot_run"]

_CHUNK_ROWS = 1024


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (the training runs' field; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def scorer_ranks(scorer: Callable[[int, int], torch.Tensor], data: SplitData, *, own_items_last: bool) -> np.ndarray:
    """``int64 [rows]``: each target's pessimistic rank (see :mod:`.metrics`) under ``scorer`` (columns
    ``0..N``, column 0 padding); with ``own_items_last`` the row's own input items go below every other item."""
    ranks = []
    for lo in range(0, len(data), _CHUNK_ROWS):
        hi = min(lo + _CHUNK_ROWS, len(data))
        scores = scorer(lo, hi).clone()
        scores[:, 0] = -torch.inf
        if own_items_last:
            for k, row in enumerate(range(lo, hi)):
                scores[k, data.sequence(row)] = -torch.inf
        ranks.append(target_ranks(scores, torch.from_numpy(data.targets[lo:hi])).numpy())
    return np.concatenate(ranks).astype(np.int64) if ranks else np.zeros(0, dtype=np.int64)


def write_zero_shot_run(
    out: Path,
    *,
    scorer: Callable[[int, int], torch.Tensor],
    data: SplitData,
    data_dir: Path,
    store: Path,
    view: str,
    seed: int,
    own_items_last: bool,
    ks: Sequence[int],
) -> dict:
    """Rank ``data`` (the test split) with ``scorer`` and write ``out`` and its ``.ranks.npz``; returns the result."""
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    ranks = scorer_ranks(scorer, data, own_items_last=own_items_last)
    seconds = time.perf_counter() - t0
    ranks_path = out.with_name(out.stem + ".ranks.npz")
    result = {
        "model": out.stem.rsplit("_s", 1)[0],
        "enhancer": False,
        "seed": seed,
        "data": str(data_dir.resolve()),
        "rows": {"test": len(data)},
        "config": {
            "store": str(store.resolve()),
            "store_sha256": sha256_file(store),
            "view": view,
            "own_items_last": own_items_last,
        },
        "best_epoch": 0,
        "test": summarize_ranks(ranks, ks),
        "seconds_per_epoch_train": 0.0,
        "seconds_test": seconds,
        "peak_rss_mb_before_training": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
        "ranks_file": ranks_path.name,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_savez(ranks_path, test_ranks=ranks, test_targets=data.targets)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return result
