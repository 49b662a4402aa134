"""The item catalogue ``items.tsv`` written by :mod:`.prepare_data` (``item_id<TAB>title``, one header line)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from .splits import SplitData


def read_items_tsv(path: str | Path, *, dense_ids: bool = True) -> tuple[list[int], list[str]]:
    """Item ids and titles of ``items.tsv``, in file order; a missing title is ``""`` (titles are not stripped).

    With ``dense_ids`` (the default) the ids must be ``1..N`` in order, as :mod:`.prepare_data` writes them.
    Raises ``ValueError`` naming the file and line of a bad header or a non-integer id.
    """
    path = Path(path)
    ids, titles = [], []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or header[:2] != ["item_id", "title"]:
            raise ValueError(f"{path}: line 1: expected the header 'item_id<TAB>title', got {header!r}")
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            try:
                ids.append(int(row[0]))
            except ValueError:
                raise ValueError(f"{path}: line {lineno}: item id {row[0]!r} is not an integer") from None
            titles.append(row[1] if len(row) > 1 else "")
    if dense_ids and ids != list(range(1, len(ids) + 1)):
        raise ValueError(
            f"{path}: item ids must be 1..N in order (as written by llm4sbr_adapter.experiments.data.prepare_data)"
        )
    return ids, titles


def count_items(data_dir: str | Path, splits: Sequence[SplitData]) -> int:
    """Catalogue size: rows of ``<data_dir>/items.tsv`` when present, else the largest item id in the splits."""
    largest = max(s.max_item for s in splits)
    catalogue = Path(data_dir) / "items.tsv"
    if catalogue.is_file():
        with open(catalogue, encoding="utf-8") as handle:
            n = sum(1 for line in handle if line.strip()) - 1  # header
        if largest > n:
            raise ValueError(f"{catalogue} lists {n} items but the splits use item id {largest}")
        return n
    return largest
