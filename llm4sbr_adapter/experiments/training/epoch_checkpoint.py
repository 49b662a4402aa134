"""Resume a killed training run after its last finished epoch (:func:`.run_paths.checkpoint_path`).

After every epoch the loop saves what the next epoch depends on: the model's and the optimiser's state, the
learning-rate schedule, the epoch log, the best state so far with its patience count, and the global random
generators (dropout draws from torch's). The same command started again continues after that epoch and ends
with the result an uninterrupted run gives; the file is removed once the result is written.

A checkpoint is bound to the run's settings (all but ``threads`` and ``device``, which change speed and
rounding, not what the run is), store paths included, and to the bytes of its data files (each store is bound
to those by its own ``sessions_sha256``); one written under anything else is refused with one line naming the
first difference, never mixed in.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llm4sbr_adapter.atomic_files import atomic_path

from ..data.splits import SplitData

logger = logging.getLogger("llm4sbr_adapter.experiments.train")

FORMAT = "llm4sbr-train-checkpoint"
# settings that may differ between the killed run and its resumption
FREE_SETTINGS = ("threads", "device")


def run_identity(settings: Mapping[str, Any], data: Mapping[str, SplitData]) -> dict:
    """What a checkpoint must match: the settings (JSON form, free ones left out) and each split's sha256 and rows."""
    bound = {k: v for k, v in json.loads(json.dumps(dict(settings))).items() if k not in FREE_SETTINGS}
    return {"settings": bound, "data": {split: [d.sha256, len(d)] for split, d in sorted(data.items())}}


def capture_rng() -> dict:
    """The global generators' states (Python, NumPy, torch CPU), in types ``torch.load(weights_only=True)`` reads."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }


def restore_rng(state: Mapping[str, Any]) -> None:
    """Put back the states :func:`capture_rng` took."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])


def save_checkpoint(path: Path, identity: dict, contents: dict) -> None:
    """Write ``contents`` with ``identity`` and the random generators' states, atomically."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({"format": FORMAT, "identity": identity, "rng": capture_rng(), **contents}, tmp)


def load_checkpoint(path: Path, identity: dict) -> dict | None:
    """The checkpoint at ``path`` (``None`` when there is none); ``ValueError`` when it belongs to another run."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling raises many types; each means the same here
        raise ValueError(f"{path}: not a readable training checkpoint ({err}); delete it to start over") from err
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError(f"{path}: not a training checkpoint of this library; delete it to start over")
    difference = first_difference(saved["identity"], identity)
    if difference is not None:
        raise ValueError(
            f"{path}: written by a run with other {difference}; delete it to start this run over, "
            "or give the run another --out"
        )
    logger.info("%s: resuming after epoch %d", path, len(saved["fit"]["log"]))
    return saved


def first_difference(saved: dict, current: dict) -> str | None:
    """``"settings (lr: 0.002 there, 0.001 here)"``-style text for the first field that differs, or ``None``."""
    for part in ("settings", "data"):
        old, new = saved.get(part, {}), current[part]
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return f"{part} ({key}: {old.get(key)!r} there, {new.get(key)!r} here)"
    return None
