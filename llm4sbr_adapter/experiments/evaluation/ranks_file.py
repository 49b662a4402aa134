"""The ranks file beside a run's result JSON (``<run>.ranks.npz``), written atomically.

Training runs, the baselines and the zero-shot runs of :mod:`.zero_shot_run` write their per-row ranks
here; :mod:`.bootstrap` and :mod:`.summarize` read them back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llm4sbr_adapter.atomic_files import atomic_path

__all__ = ["atomic_savez"]


def atomic_savez(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed(path, **arrays)``, written atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub reads **arrays as allow_pickle
