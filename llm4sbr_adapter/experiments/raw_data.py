"""Raw interaction files and the sessions cut from them, shared by both preparation protocols.

Readers for MovieLens (ML-1M ``::`` files, ML-100K ``u.data``/``u.item``) and Amazon Beauty
(``beauty_interactions.tsv``/``beauty_items.tsv``), the :class:`Session` they are cut into, the
time-gap cut, the item renumbering and SR-GNN's prefix augmentation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llm4sbr_adapter.errors import Llm4sbrError


class DataFormatError(Llm4sbrError, ValueError):
    """An input file does not look like the format it should have (message names file and line)."""


@dataclass
class Session:
    """One session: a user's clicks between two gaps. ``items`` hold original item ids."""

    user: str
    items: list
    times: list

    @property
    def start(self) -> int:
        return int(self.times[0])

    @property
    def end(self) -> int:
        return int(self.times[-1])


@dataclass
class Interactions:
    """Raw interactions in file order plus the item titles (original ids)."""

    users: list
    items: list
    times: np.ndarray  # int64 [n]
    titles: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- reading
def _read_lines(path: Path, encoding: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"missing input file: {path}")
    return path.read_text(encoding=encoding).splitlines()


def read_movielens(folder: str | os.PathLike) -> Interactions:
    """Read ML-1M (``ratings.dat`` + ``movies.dat``, ``::``) or ML-100K (``u.data`` + ``u.item``).

    Titles are read as latin-1 (both releases use it). Raises :class:`DataFormatError` naming the
    file and line of a malformed row.
    """
    folder = Path(folder)
    if (folder / "ratings.dat").is_file():
        ratings, sep, movies, msep = folder / "ratings.dat", "::", folder / "movies.dat", "::"
    elif (folder / "u.data").is_file():
        ratings, sep, movies, msep = folder / "u.data", "\t", folder / "u.item", "|"
    else:
        raise FileNotFoundError(f"{folder}: neither ratings.dat (ML-1M) nor u.data (ML-100K) found")
    users, items, times = [], [], []
    for lineno, line in enumerate(_read_lines(ratings, "latin-1"), 1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) < 4:
            raise DataFormatError(
                f"{ratings}: line {lineno}: expected user{sep}item{sep}rating{sep}timestamp, got {line!r}"
            )
        try:
            users.append(str(int(parts[0])))
            items.append(int(parts[1]))
            times.append(int(parts[3]))
        except ValueError:
            raise DataFormatError(
                f"{ratings}: line {lineno}: non-integer user, item or timestamp in {line!r}"
            ) from None
    titles = {}
    if movies.is_file():
        for lineno, line in enumerate(_read_lines(movies, "latin-1"), 1):
            if not line.strip():
                continue
            parts = line.split(msep)
            if len(parts) < 2:
                raise DataFormatError(f"{movies}: line {lineno}: expected item_id{msep}title..., got {line!r}")
            try:
                titles[int(parts[0])] = parts[1].strip()
            except ValueError:
                raise DataFormatError(f"{movies}: line {lineno}: item id {parts[0]!r} is not an integer") from None
    return Interactions(users=users, items=items, times=np.asarray(times, dtype=np.int64), titles=titles)


def read_beauty(folder: str | os.PathLike) -> Interactions:
    """Read ``beauty_interactions.tsv`` (``user_id item_id timestamp``, header, rows in each user's time
    order) and ``beauty_items.tsv`` (``item_id title``; empty titles are kept as ``""``)."""
    folder = Path(folder)
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
    for lineno, line in enumerate(_read_lines(items_path, "utf-8")[1:], 2):
        if not line.strip():
            continue
        parts = line.split("\t")
        titles[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return Interactions(users=users, items=items, times=np.asarray(times, dtype=np.int64), titles=titles)


# --------------------------------------------------------------------------- sessions
def split_sessions(users: Sequence, items: Sequence, times: Sequence[int], gap: int = 600) -> list[Session]:
    """Cut each user's clicks (sorted by time, ties in input order) wherever consecutive clicks are
    more than ``gap`` seconds apart. Sessions come back ordered by user (first appearance) then time."""
    n = len(users)
    if not (len(items) == len(times) == n):
        raise ValueError(f"users, items and times differ in length ({n}, {len(items)}, {len(times)})")
    if n == 0:
        return []
    user_codes = {u: k for k, u in enumerate(dict.fromkeys(users))}
    codes = np.fromiter((user_codes[u] for u in users), dtype=np.int64, count=n)
    times = np.asarray(times, dtype=np.int64)
    order = np.lexsort((np.arange(n), times, codes))  # by user, then time, then file order
    codes_s, times_s = codes[order], times[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (codes_s[1:] != codes_s[:-1]) | (times_s[1:] - times_s[:-1] > gap)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    items_s = [items[k] for k in order]
    users_s = [users[k] for k in order]
    return [Session(users_s[a], items_s[a:b], times_s[a:b].tolist()) for a, b in zip(starts, ends, strict=True)]


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
