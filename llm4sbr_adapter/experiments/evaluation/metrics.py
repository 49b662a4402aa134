"""Ranking metrics over all evaluated sessions.

The rank of a target is ``1 + (number of other items whose score is >= the target's score)``: ties are
counted pessimistically, so a model that scores every item alike ranks each target last, not first.
A target whose score is NaN gets the worst rank. Then, per session and for each cut-off ``K``:

* ``HR@K = 1`` if ``rank <= K`` else 0;
* ``MRR@K = 1 / rank`` if ``rank <= K`` else 0;
* ``NDCG@K = 1 / log2(rank + 1)`` if ``rank <= K`` else 0 (one relevant item, so the ideal DCG is 1);

and every metric is the mean over all sessions (sessions whose target was never seen in training
count as well; they simply tend to miss).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def target_ranks(scores: torch.Tensor, target_columns: torch.Tensor) -> torch.Tensor:
    """Pessimistic ranks ``int64 [B]`` (1 = best) of ``target_columns [B]`` in ``scores [B, N]``."""
    if scores.dim() != 2 or target_columns.shape != (scores.shape[0],):
        raise ValueError(
            f"scores must be [B, N] and targets [B], got {tuple(scores.shape)} and {tuple(target_columns.shape)}"
        )
    target = scores.gather(1, target_columns.unsqueeze(1))  # [B, 1]
    ranks = (scores >= target).sum(1)  # counts the target itself, so this is 1 + others >= target
    worst = torch.full_like(ranks, scores.shape[1])
    return torch.where(torch.isnan(target.squeeze(1)), worst, ranks)


def per_session_metrics(ranks: np.ndarray, ks: Sequence[int] = (5, 10, 20)) -> dict[str, np.ndarray]:
    """``{"HR@K", "MRR@K", "NDCG@K"}`` -> ``float64 [sessions]`` from ``ranks [sessions]`` (1-based)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size and ranks.min() < 1:
        raise ValueError("ranks are 1-based; got a rank below 1")
    out = {}
    for k in ks:
        hit = ranks <= k
        out[f"HR@{k}"] = hit.astype(np.float64)
        out[f"MRR@{k}"] = np.where(hit, 1.0 / ranks, 0.0)
        out[f"NDCG@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0)
    return out


def summarize_ranks(ranks: np.ndarray, ks: Sequence[int] = (5, 10, 20)) -> dict[str, float]:
    """Mean of each metric over all sessions (see :func:`per_session_metrics`)."""
    return {
        name: float(values.mean()) if values.size else 0.0 for name, values in per_session_metrics(ranks, ks).items()
    }
