"""A training run's outputs checked against its inputs before any data loads (:func:`check_run_paths`)."""

from __future__ import annotations

from pathlib import Path

from llm4sbr_adapter.errors import flag_or_name
from llm4sbr_adapter.output_paths import check_writes

from ..data.prepared_files import data_inputs

__all__ = ["check_run_paths", "checkpoint_path", "ranks_path", "store_flags"]


def ranks_path(out: str | Path) -> Path:
    """Where a run writes its per-session ranks: ``<out stem>.ranks.npz`` beside ``out``."""
    out = Path(out)
    return out.with_name(out.stem + ".ranks.npz")


def checkpoint_path(out: str | Path) -> Path:
    """Where a run keeps its last finished epoch until the results are written: ``<out stem>.checkpoint.pt``."""
    out = Path(out)
    return out.with_name(out.stem + ".checkpoint.pt")


def check_run_paths(data: str | Path, out: str | Path, stores: dict[str, str | None] | None = None) -> None:
    """Refuse a results path (or its ranks file or checkpoint) that is one of the data folder's files or a store, or
    that cannot be written; ``stores`` maps each store flag to its path."""
    out_label = flag_or_name("out", "--out")
    outputs = {
        out_label: Path(out),
        f"{out_label} (ranks file)": ranks_path(out),
        f"{out_label} (checkpoint)": checkpoint_path(out),
    }
    inputs: dict[str, str | Path | None] = dict(data_inputs(data, flag_or_name("data", "--data")))
    inputs.update(stores or {})
    check_writes(outputs, inputs)


def store_flags(args: object) -> dict[str, str | None]:
    """The ``--store-train/valid/test`` paths of a parsed command line (absent flags are ``None``)."""
    return {f"--store-{split}": getattr(args, f"store_{split}", None) for split in ("train", "valid", "test")}
