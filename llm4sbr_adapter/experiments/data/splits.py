"""Split files: one SR-GNN pickle (``train.txt`` / ``valid.txt`` / ``test.txt``) read into flat arrays.

Every example keeps a stable **row id**: its index in the pickle it came from (``SplitData.ids``);
intent stores are looked up by these ids, and the pickle's sha256 names which file they belong to.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llm4sbr_adapter.errors import Llm4sbrError
from llm4sbr_adapter.hashing import sha256_file
from llm4sbr_adapter.srgnn_pickle import read_srgnn_pickle


class SplitFormatError(Llm4sbrError, ValueError):
    """A pickle is not an SR-GNN ``(sequences, targets)`` tuple of positive item ids."""


@dataclass
class SplitData:
    """One split held as flat arrays.

    Attributes:
        flat: ``int64 [total_inputs]`` all input items, row after row.
        offsets: ``int64 [rows + 1]`` row ``r`` is ``flat[offsets[r]:offsets[r + 1]]``.
        targets: ``int64 [rows]`` target item per row (ids ``1..N``).
        path: the pickle it was read from (``None`` when built in memory).
        row_ids: ``int64 [rows]`` each row's index in ``path`` when this is a part of it (:meth:`subset`);
            ``None``: the rows are the whole file, ids ``0..rows-1``.
    """

    flat: np.ndarray
    offsets: np.ndarray
    targets: np.ndarray
    path: Path | None = None
    row_ids: np.ndarray | None = None
    _sha256: str | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def sha256(self) -> str | None:
        """Hex sha256 of the pickle's bytes (the intent stores' ``sessions_sha256``); ``None`` when built
        in memory. Computed on first use (only runs with an enhancer ask for it) and kept."""
        if self._sha256 is None and self.path is not None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    @property
    def ids(self) -> np.ndarray:
        """``int64 [rows]``: each row's index in the pickle ``path`` (the intent stores' session ids)."""
        return np.arange(len(self.targets), dtype=np.int64) if self.row_ids is None else self.row_ids

    def subset(self, rows: np.ndarray) -> SplitData:
        """The given rows, in that order, still naming their rows of the same pickle (ids and sha256)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = self.flat[np.arange(offsets[-1]) + np.repeat(self.offsets[rows] - offsets[:-1], lengths)]
        part = SplitData(flat=flat, offsets=offsets, targets=self.targets[rows], path=self.path, row_ids=self.ids[rows])
        part._sha256 = self._sha256
        return part

    @property
    def lengths(self) -> np.ndarray:
        """``int64 [rows]`` input length per row."""
        return np.diff(self.offsets)

    def sequence(self, row: int) -> list[int]:
        return self.flat[self.offsets[row] : self.offsets[row + 1]].tolist()

    @property
    def max_item(self) -> int:
        return int(max(self.flat.max(initial=0), self.targets.max(initial=0)))

    @classmethod
    def from_lists(
        cls,
        sequences: Sequence[Sequence[int]],
        targets: Sequence[int],
        path: Path | None = None,
        source: str = "<memory>",
    ) -> SplitData:
        if len(sequences) != len(targets):
            raise SplitFormatError(f"{source}: {len(sequences)} sequences but {len(targets)} targets")
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        if len(lengths) and lengths.min() < 1:
            row = int(np.argmin(lengths))
            raise SplitFormatError(f"{source}: row {row} has an empty input sequence")
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        try:
            flat = np.fromiter((int(i) for s in sequences for i in s), dtype=np.int64, count=int(offsets[-1]))
            tgt = np.asarray([int(t) for t in targets], dtype=np.int64)
        except (TypeError, ValueError) as err:
            raise SplitFormatError(f"{source}: item ids must be integers ({err})") from None
        for name, arr, rows_of in (
            ("input", flat, lambda k: int(np.searchsorted(offsets, k, side="right") - 1)),
            ("target", tgt, lambda k: k),
        ):
            if len(arr) and arr.min() < 1:
                k = int(np.argmin(arr))
                raise SplitFormatError(f"{source}: row {rows_of(k)}: {name} item id {arr[k]} < 1 (0 is padding)")
        return cls(flat=flat, offsets=offsets, targets=tgt, path=path)


def load_split(path: str | os.PathLike) -> SplitData:
    """Read one SR-GNN pickle (``train.txt`` / ``valid.txt`` / ``test.txt``; trusted input only: a pickle can
    run code) through the package's one reader, :func:`~llm4sbr_adapter.srgnn_pickle.read_srgnn_pickle`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    sequences, targets = read_srgnn_pickle(path, SplitFormatError)
    if targets is None:
        raise SplitFormatError(f"{path}: the pickle holds no targets (sequences, None); a split needs them")
    return SplitData.from_lists(sequences, targets, path=path, source=str(path))
