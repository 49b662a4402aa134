"""The training sessions the baselines learn from, and the times that order them.

Each row of ``train.txt`` is ``inputs + [target]``. With ``rows_train.tsv`` (written by
:mod:`llm4sbr_adapter.experiments.prepare_data`) a row whose sequence is a proper prefix of another row
of the same user is dropped, so prefix-augmented data counts each user's sequence once. A session's
time is the ``target_time`` of its kept row (its last click); without that column, the row number
(both protocols write training rows in time order). A prefix's time is the time of its last click: the
``target_time`` of the row of the same user whose target is the click before this row's target (any
split), else this row's own ``target_time``.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.splits import SplitData


@dataclass
class RowInfo:
    """Per row of ``<split>.txt``: a user code, and (when the file has them) target position and time."""

    users: np.ndarray  # int64 [rows], numbered within one file
    names: np.ndarray  # str [rows], the user ids as written
    positions: np.ndarray | None  # int64 [rows] target_position
    times: np.ndarray | None  # float64 [rows] target_time


def _column(path: Path, lineno: int, fields: list[str], index: int | None, name: str, kind: type) -> float | None:
    if index is None:
        return None
    try:
        return kind(fields[index])
    except (ValueError, IndexError):
        raise ValueError(f"{path}: line {lineno}: column {name!r} must be a number, got {fields!r}") from None


def read_rows(data_dir: str | Path, split: str) -> RowInfo | None:
    """The columns of ``rows_<split>.tsv`` in row order (None if the file is absent).

    ``row`` must list ``0..n-1`` once each; ``target_position`` and ``target_time`` are optional. Raises
    ``ValueError`` naming the file and line of a bad header or row.
    """
    path = Path(data_dir) / f"rows_{split}.tsv"
    if not path.is_file():
        return None
    rows, names, positions, times = [], [], [], []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or "row" not in header or "user_id" not in header:
            raise ValueError(f"{path}: line 1: expected a header with columns 'row' and 'user_id', got {header!r}")
        ri, ui = header.index("row"), header.index("user_id")
        pi = header.index("target_position") if "target_position" in header else None
        ti = header.index("target_time") if "target_time" in header else None
        for lineno, fields in enumerate(reader, 2):
            if not fields:
                continue
            try:
                rows.append(int(fields[ri]))
                names.append(fields[ui])
            except (ValueError, IndexError):
                raise ValueError(
                    f"{path}: line {lineno}: expected an integer 'row' and a 'user_id', got {fields!r}"
                ) from None
            positions.append(_column(path, lineno, fields, pi, "target_position", int))
            times.append(_column(path, lineno, fields, ti, "target_time", float))
    order = np.asarray(rows, dtype=np.int64)
    if not np.array_equal(np.sort(order), np.arange(len(order))):
        raise ValueError(f"{path}: the 'row' column must list 0..{len(order) - 1} once each")

    def in_row_order(values: list, dtype: type) -> np.ndarray:
        out: np.ndarray = np.empty(len(order), dtype=dtype)
        out[order] = np.asarray(values, dtype=dtype)
        return out

    name_array = in_row_order(names, object).astype(str)
    users = np.unique(name_array, return_inverse=True)[1].astype(np.int64)
    return RowInfo(
        users,
        name_array,
        in_row_order(positions, np.int64) if pi is not None else None,
        in_row_order(times, np.float64) if ti is not None else None,
    )


def read_row_users(data_dir: str | Path, split: str) -> np.ndarray | None:
    """``int64 [rows]``: a user code per row of ``<split>.txt`` (None without ``rows_<split>.tsv``)."""
    info = read_rows(data_dir, split)
    return None if info is None else info.users


def kept_rows(data: SplitData, users: np.ndarray | None = None) -> np.ndarray:
    """Indices of the rows that are training sessions (all rows without ``users``).

    With ``users`` (a code per row), a row's sequence is dropped when it is a proper prefix of, or equal
    to a later copy of, another row's sequence of the same user; identical sequences of different users
    are all kept. Sorting ``(user, sequence)`` puts any sequence right before its extensions.
    """
    if users is None:
        return np.arange(len(data))
    if len(users) != len(data):
        raise ValueError(f"{len(users)} user codes for {len(data)} rows")
    keys = [
        tuple(data.flat[data.offsets[r] : data.offsets[r + 1]].tolist()) + (int(data.targets[r]),)
        for r in range(len(data))
    ]
    owner = np.asarray(users).tolist()
    order = sorted(range(len(data)), key=lambda r: (owner[r], keys[r]))
    drop = np.zeros(len(data), dtype=bool)
    for a, b in itertools.pairwise(order):
        if owner[a] == owner[b] and keys[b][: len(keys[a])] == keys[a]:
            drop[a] = True  # a is a prefix of b (or equal to it: one copy is kept)
    return np.flatnonzero(~drop)


def training_sessions(data: SplitData, users: np.ndarray | None = None) -> list[np.ndarray]:
    """The training sessions ``inputs + [target]`` of the kept rows (:func:`kept_rows`), in row order."""
    return [
        np.append(data.flat[data.offsets[r] : data.offsets[r + 1]], data.targets[r]) for r in kept_rows(data, users)
    ]


def flatten(seqs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(items int64 [total], owner int64 [total])``: all items of ``seqs`` and the index of their sequence."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    items = np.concatenate(seqs).astype(np.int64) if len(seqs) else np.zeros(0, dtype=np.int64)
    return items, np.repeat(np.arange(len(seqs)), lengths)


def prefix_times(infos: dict[str, RowInfo | None], split: str) -> np.ndarray | None:
    """``float64 [rows]``: the time of each prefix's last click in ``split`` (None without target times).

    That is the ``target_time`` of the row (any split) of the same user whose ``target_position`` is one
    less; where no row has that target, the row's own ``target_time`` stands in.
    """
    info = infos.get(split)
    if info is None or info.times is None:
        return None
    if info.positions is None:
        return info.times.copy()
    clicks: dict[tuple[str, int], float] = {}
    for other in infos.values():
        if other is not None and other.positions is not None and other.times is not None:
            users, positions = other.names.tolist(), other.positions.tolist()
            clicks.update(zip(zip(users, positions, strict=True), other.times.tolist(), strict=True))
    wanted = zip(info.names.tolist(), (info.positions - 1).tolist(), strict=True)
    own = info.times.tolist()
    out = [clicks.get(key, fallback) for key, fallback in zip(wanted, own, strict=True)]
    return np.asarray(out, dtype=np.float64)
