"""Raw interaction files and the sessions cut from them, shared by both preparation protocols.

Readers for MovieLens (every release, through :mod:`llm4sbr_adapter.offline.inputs.movielens`) and
Amazon Beauty (``beauty_interactions.tsv``/``beauty_items.tsv``), the item renumbering and SR-GNN's
prefix augmentation. Sessions and their cuts live in :mod:`llm4sbr_adapter.offline.inputs.clicks`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llm4sbr_adapter.offline.inputs import movielens
from llm4sbr_adapter.offline.inputs.clicks import ClickLog, Session, split_sessions
from llm4sbr_adapter.offline.inputs.text import InputFormatError, read_lines, require_folder

__all__ = [
    "DataFormatError",
    "Interactions",
    "Row",
    "Session",
    "augmented_rows",
    "build_item_map",
    "read_beauty",
    "read_movielens",
    "split_sessions",
]


# An input file does not look like the format it should have (message names file and line).
DataFormatError = InputFormatError


# Raw interactions in file order plus the item titles (original ids): a click log.
Interactions = ClickLog


# --------------------------------------------------------------------------- reading
def _read_lines(path: Path, encoding: str) -> list[str]:
    return read_lines(path, encoding, "the Beauty files are UTF-8")


def read_movielens(folder: str | os.PathLike, encoding: str | None = None) -> Interactions:
    """Any MovieLens release (ML-1M/10M ``::``, ML-100K ``u.data``, the CSV releases), detected from the
    folder; see :mod:`llm4sbr_adapter.offline.inputs.movielens` for the encodings."""
    return movielens.read_movielens(folder, encoding)


def read_beauty(folder: str | os.PathLike) -> Interactions:
    """Read ``beauty_interactions.tsv`` (``user_id item_id timestamp``, header, rows in each user's time
    order) and ``beauty_items.tsv`` (``item_id title``; empty titles are kept as ``""``)."""
    folder = require_folder(folder)
    inter = folder / "beauty_interactions.tsv"
    lines = _read_lines(inter, "utf-8")
    if not lines or lines[0].split("\t")[:3] != ["user_id", "item_id", "timestamp"]:
        raise DataFormatError(f"{inter}: line 1: expected the header 'user_id<TAB>item_id<TAB>timestamp'")
    users, items, times = [], [], []
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise DataFormatError(f"{inter}: line {lineno}: expected 3 tab-separated fields, got {line!r}")
        try:
            times.append(int(parts[2]))
        except ValueError:
            raise DataFormatError(f"{inter}: line {lineno}: timestamp {parts[2]!r} is not an integer") from None
        users.append(parts[0])
        items.append(parts[1])
    titles = {}
    items_path = folder / "beauty_items.tsv"
    for line in _read_lines(items_path, "utf-8")[1:]:
        if not line.strip():
            continue
        parts = line.split("\t")
        titles[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return Interactions(users=users, items=items, times=np.asarray(times, dtype=np.int64), titles=titles)


# --------------------------------------------------------------------------- sessions
def build_item_map(blocks: Sequence[Sequence[Sequence]]) -> dict:
    """Original item id -> ``1..N`` in order of first appearance over the given blocks of sequences."""
    mapping: dict = {}
    for block in blocks:
        for seq in block:
            for item in seq:
                if item not in mapping:
                    mapping[item] = len(mapping) + 1
    return mapping


# --------------------------------------------------------------------------- beauty rows
@dataclass
class Row:
    """One (prefix -> next item) example with where it came from."""

    user: str
    inputs: list
    target: object
    target_time: int
    position: int  # index of the target in the user's sequence (>= 1)


def augmented_rows(sessions: list[Session]) -> list[Row]:
    """Every prefix of every session predicts its next item (SR-GNN's augmentation)."""
    rows = []
    for s in sessions:
        for k in range(1, len(s.items)):
            rows.append(Row(s.user, list(s.items[:k]), s.items[k], int(s.times[k]), k))
    return rows
