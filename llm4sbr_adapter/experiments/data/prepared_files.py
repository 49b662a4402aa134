"""The files of a prepared data folder, for the checks that run before any data loads.

:data:`DATA_FILES` are what ``prepare_data`` writes and the runs, baselines and text-mean stores read;
:func:`data_inputs` labels them as inputs for :func:`~llm4sbr_adapter.output_paths.check_writes`;
:func:`require_rows` refuses a split without rows (its metrics would read 0.0, as if measured).
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from pathlib import Path

__all__ = ["DATA_FILES", "data_inputs", "require_rows"]

DATA_FILES = (
    "train.txt",
    "valid.txt",
    "test.txt",
    "items.tsv",
    "item_map.tsv",
    "rows_train.tsv",
    "rows_valid.tsv",
    "rows_test.tsv",
    "stats.json",
)


def data_inputs(data: str | Path, label: str = "--data") -> dict[str, Path]:
    """The files of a prepared data folder, labelled ``"<label> (<name>)"``."""
    return {f"{label} ({name})": Path(data) / name for name in DATA_FILES}


def require_rows(data_dir: str | Path, splits: Mapping[str, Sized]) -> None:
    """Refuse a split without rows: metrics over no rows would be written as 0.0, as if measured."""
    empty = [name for name, split in splits.items() if len(split) == 0]
    if empty:
        raise ValueError(
            f"{data_dir}: split {', '.join(empty)} has no rows: nothing to "
            f"{'evaluate' if 'test' in empty or 'valid' in empty else 'train on'}; prepare the data again"
        )
