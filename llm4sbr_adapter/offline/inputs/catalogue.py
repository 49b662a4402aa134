"""The item catalogue reader: id -> title, from TSV/CSV (headers in common spellings) or JSON lines.

Titles are NFC-normalised with HTML entities unescaped; ids are compared by their string form
(:func:`~.ids.item_key`), so integer items from a pickle match a TSV catalogue.
"""

from __future__ import annotations

import hashlib
import html
import io
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import setting_hint
from .columns import find_column
from .fields import csv_rows, looks_like_catalogue_header
from .ids import (
    ItemId,
    _detect_format,
    _ids_array,
    _jsonl_objects,
    _normalise_title,
    _parse_id,
    check_unique_ids,
    item_key,
)
from .text import InputFormatError, read_text

logger = logging.getLogger("llm4sbr_adapter.offline.inputs.sessions")

__all__ = ["Catalogue", "read_catalogue"]


@dataclass
class Catalogue:
    """Item id -> title.

    Attributes:
        item_ids: ``[M]`` ids in file order (``int64`` when all are canonical integers, else strings).
        titles: ``M`` normalised titles (HTML entities such as ``&amp;`` unescaped, NFC, whitespace collapsed).
        sha256: sha256 of the normalised ``id<TAB>title`` lines in file order (independent of the
            file's layout, delimiter, extra columns and encoding).
        source: file name.
        html_unescaped: how many titles held HTML entities (unescaped with :func:`html.unescape`).
    """

    item_ids: np.ndarray
    titles: list[str]
    sha256: str = ""
    source: str = "<memory>"
    _index: dict[str, int] = field(default_factory=dict, repr=False)
    html_unescaped: int = 0

    def __post_init__(self) -> None:
        self.item_ids = _ids_array(
            list(self.item_ids.tolist() if isinstance(self.item_ids, np.ndarray) else self.item_ids)
        )
        raw = [str(t) for t in self.titles]
        unescaped = [html.unescape(t) for t in raw]
        self.html_unescaped = sum(a != b for a, b in zip(raw, unescaped, strict=True))
        self.titles = [_normalise_title(t) for t in unescaped]
        if len(self.item_ids) != len(self.titles):
            raise ValueError(f"{self.source}: {len(self.item_ids)} ids but {len(self.titles)} titles")
        self._index = check_unique_ids(self.item_ids.tolist(), None, self.source, "item")
        digest = hashlib.sha256()
        for iid, title in zip(self.item_ids.tolist(), self.titles, strict=True):
            digest.update(f"{item_key(iid)}\t{title}\n".encode())
        self.sha256 = digest.hexdigest()

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[ItemId, str]], source: str = "<memory>") -> Catalogue:
        pairs = list(pairs)
        return cls(
            item_ids=np.asarray([p[0] for p in pairs], dtype=object) if pairs else np.zeros(0, np.int64),
            titles=[p[1] for p in pairs],
            source=source,
        )

    def __len__(self) -> int:
        return len(self.titles)

    def __contains__(self, item: object) -> bool:
        return item_key(item) in self._index

    def row(self, item: ItemId) -> int | None:
        """Row of ``item`` in :attr:`item_ids`, or ``None``."""
        return self._index.get(item_key(item))

    def lookup(self, item: ItemId) -> str | None:
        """Title of ``item`` (matched by string form), or ``None`` when the catalogue has none."""
        row = self._index.get(item_key(item))
        return None if row is None else self.titles[row]


def read_catalogue(
    path: str | os.PathLike,
    fmt: str = "auto",
    *,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    header: bool | None = None,
    id_column: int | None = None,
    title_column: int | None = None,
) -> Catalogue:
    """Read an item catalogue (id -> title) from TSV/CSV (or ``|``-separated) text or JSONL.

    Table files: the id is column ``id_column`` and the title column ``title_column`` (extra columns
    are ignored). ``header=None`` detects a header: the first row is one when its id field is a
    common item-column name (``item_id``, ``item ID``, ``itemId``, ``id``, ``movieId``, ``asin``, ...)
    or its title field a common title-column name (``title``, ``name``, ...), compared in lower case
    with only letters and digits (:func:`~.columns.normalise_name`). With a header, columns not given
    are found by those names; otherwise (and without a header) the id is column 0, the title column 1.
    ``delimiter=None`` picks ``,`` for ``.csv`` and otherwise a tab, or ``|`` when the first line has
    no tab but a ``|`` (MovieLens ``u.item``). Every row must have as many fields as the first row
    (the header, or the first item when there is none): TSV and ``|`` files have no quoting, so a
    separator inside a title would silently cut it; CSV honours double quotes (``"Heat, the movie"``).
    JSONL: objects with ``item_id`` (or ``id``) and ``title``.

    Rows whose title is empty are left out of the catalogue (logged); session items pointing at
    them are then handled by the builder's ``on_missing_title`` policy.

    Args:
        encoding: ``"utf-8"`` (default) or e.g. ``"latin-1"`` for MovieLens files.

    Raises:
        InputFormatError: a row with too few columns or another field count than the first row, bad
            JSON, a byte that is not valid in ``encoding``, or a duplicate id (naming both lines).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"catalogue file not found: {path}")
    kind = _detect_format(path, fmt)
    if kind == "pickle":
        raise InputFormatError(f"{path}: a catalogue must be TSV/CSV/JSONL, not a pickle")
    text = read_text(path, encoding, f"try {setting_hint('items_encoding', 'latin-1')}")
    if kind == "jsonl":
        rows = _jsonl_catalogue_rows(path, text)
    else:
        delimiter = delimiter or _catalogue_delimiter(text, kind)
        rows = _table_catalogue_rows(path, text.removeprefix("\ufeff"), delimiter, header, id_column, title_column)
    return _catalogue_from_rows(path, rows)


_CatalogueRow = tuple[int, ItemId, str]  # (line, item id, normalised title; "" when empty)


def _jsonl_catalogue_rows(path: Path, text: str) -> list[_CatalogueRow]:
    """(line, id, title) of every JSONL object; a missing key names the line."""
    rows = []
    for lineno, obj in _jsonl_objects(path, io.StringIO(text, newline=None)):
        iid = obj.get("item_id", obj.get("id")) if isinstance(obj, dict) else None
        if iid is None or "title" not in obj:
            raise InputFormatError(f"{path}: line {lineno}: expected an object with 'item_id' and 'title'")
        if isinstance(iid, bool) or not isinstance(iid, (int, str)):
            raise InputFormatError(f"{path}: line {lineno}: item_id must be an int or a string, got {iid!r}")
        key = iid if isinstance(iid, int) else _parse_id(iid, f"{path}: line {lineno}")
        rows.append((lineno, key, _normalise_title(obj["title"] or "")))
    return rows


def _catalogue_delimiter(text: str, kind: str) -> str:
    """``,`` for CSV; otherwise a tab, or ``|`` when the first line has no tab but a ``|``."""
    first_line = text.split("\n", 1)[0]
    if kind == "csv":
        return ","
    return "|" if "\t" not in first_line and "|" in first_line else "\t"


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _header_columns(path: Path, row: list[str], id_column: int | None, title_column: int | None) -> tuple[int, int]:
    """The id and title columns: those given, else found by name in the header ``row``, else 0 and 1."""
    if id_column is None:
        id_column = _or(find_column(row, "item", None, source=str(path)), 0)
    if title_column is None:
        title_column = _or(find_column(row, "title", None, source=str(path)), 1)
    return id_column, title_column


def _table_catalogue_rows(
    path: Path, text: str, delimiter: str, header: bool | None, id_column: int | None, title_column: int | None
) -> list[_CatalogueRow]:
    """(line, id, title) of every data row; rows must have the first row's field count."""
    width: tuple[int, int] | None = None  # (line, field count) of the first row
    cols = (0, 1)  # id and title columns, settled by the first row
    rows = []
    for lineno, row in csv_rows(text, delimiter, path, quoting=delimiter == ","):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if width is None:
            width = (lineno, len(row))
            if looks_like_catalogue_header(row, header, id_column, title_column, f"{path}: line {lineno}"):
                cols = _header_columns(path, row, id_column, title_column)
                continue
            cols = (_or(id_column, 0), _or(title_column, 1))
        id_col, title_col = cols
        need = max(id_col, title_col) + 1
        if len(row) < need:
            raise InputFormatError(
                f"{path}: line {lineno}: expected at least {need} columns separated by {delimiter!r}, got {len(row)}"
            )
        _check_width(path, lineno, len(row), width, delimiter)
        id_text = row[id_col].strip()
        if not id_text:
            raise InputFormatError(f"{path}: line {lineno}: empty item id")
        rows.append((lineno, _parse_id(id_text, f"{path}: line {lineno}"), _normalise_title(row[title_col])))
    return rows


def _check_width(path: Path, lineno: int, fields: int, first: tuple[int, int], delimiter: str) -> None:
    """A row with another field count than the first row is an error (a separator inside a title?)."""
    if fields != first[1]:
        sep = "a tab" if delimiter == "\t" else repr(delimiter)
        quoting = " (quote such titles with double quotes)" if delimiter == "," else " (this format has no quoting)"
        raise InputFormatError(
            f"{path}: line {lineno}: {fields} fields, but line {first[0]} has {first[1]}: is there {sep} inside "
            f"a title?{quoting}"
        )


def _catalogue_from_rows(path: Path, rows: list[_CatalogueRow]) -> Catalogue:
    """The :class:`Catalogue` of ``rows`` without empty titles; a duplicate id names both lines."""
    titled = [(line, iid, title) for line, iid, title in rows if title]
    check_unique_ids([iid for _, iid, _ in titled], [line for line, _, _ in titled], str(path), "item")
    if len(titled) < len(rows):
        logger.warning(
            "%s: %d rows have an empty title and were left out of the catalogue", path, len(rows) - len(titled)
        )
    if not titled:
        raise InputFormatError(f"{path}: no items with a title")
    return Catalogue(
        item_ids=np.asarray([iid for _, iid, _ in titled], dtype=object),
        titles=[title for *_, title in titled],
        source=path.name,
    )
