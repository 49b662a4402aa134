"""Readers for the two inputs of stage one: sessions (item-id sequences) and the item catalogue (id -> title).

Session formats (``fmt="auto"`` picks by file name; see ``docs/builder.md``):

* ``pickle`` -- an SR-GNN style ``train.txt`` / ``test.txt``: a pickled tuple ``(sequences, targets)``
  (extra tuple members are ignored). The session id of a row is its row index (``0 .. N-1``), so the
  :class:`SessionSet` records the file name and its sha256: a store then ties its ids to that file.
  Files ending in ``.pkl`` / ``.pickle`` and ``.txt`` files that start with a pickle header are read so;
  any other file that starts with a pickle header is refused unless ``fmt="pickle"`` is explicit.
  A pickle can run code: only open pickles from a trusted source.
* ``tsv`` / ``csv`` -- one session per row: ``session_id<TAB>item_ids[<TAB>target]`` with the item ids
  separated by spaces, oldest first (``csv``: comma-separated columns, items still space-separated).
  A first row whose first field is ``session_id`` is a header and skipped. Blank lines and lines
  starting with ``#`` are ignored.
* ``jsonl`` -- one object per line: ``{"session_id": ..., "items": [...], "target": ...}`` (target optional).

Ids may be ints or strings. Session ids come back as ``int64`` when every id is an integer written in
canonical form (``"7"``, not ``"007"``), otherwise as strings. Items are compared with catalogue ids by
their string form, so integer items from a pickle match a TSV catalogue.

Targets are read (when present) only so a caller can evaluate; the builder never shows them to the LLM.

Text files are decoded whole; a byte that is not valid in the encoding is an error naming the file,
the line, the byte and its column (:func:`read_text`).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import setting_hint
from ...hashing import sha256_file
from ...srgnn_pickle import read_srgnn_pickle
from .columns import COMMON_NAMES, find_column, normalise_name
from .text import InputFormatError, read_text

logger = logging.getLogger(__name__)

__all__ = [
    "Catalogue",
    "InputFormatError",
    "SessionSet",
    "check_unique_ids",
    "read_catalogue",
    "read_sessions",
    "read_text",
]

ItemId = int | str


# --------------------------------------------------------------------------- helpers
_CANONICAL_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")


def _canonical_int(text: str) -> bool:
    return bool(_CANONICAL_INT.match(text))


def item_key(item: Any) -> str:
    """The string form used to match session items with catalogue ids (``7`` and ``"7"`` match)."""
    if isinstance(item, (bool, np.bool_)):
        raise TypeError(f"item id {item!r} is a boolean")
    if isinstance(item, (np.integer,)):
        return str(int(item))
    if isinstance(item, float) and item.is_integer():
        return str(int(item))
    return str(item).strip()


def _ids_array(ids: Sequence[Any]) -> np.ndarray:
    """``int64`` when every id is an int (or a canonical integer string), else a numpy unicode array."""
    if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids):
        return np.asarray(ids, dtype=np.int64) if ids else np.zeros(0, np.int64)
    keys = [item_key(i) for i in ids]
    if keys and all(_canonical_int(k) for k in keys):
        return np.asarray([int(k) for k in keys], dtype=np.int64)
    return np.asarray(keys, dtype=str)


def _normalise_title(title: str) -> str:
    """NFC, tabs/newlines -> space, runs of spaces collapsed, stripped."""
    return " ".join(unicodedata.normalize("NFC", str(title)).split())


# Names under which ``fmt="auto"`` unpickles a file: SR-GNN's train.txt / test.txt and pickle files.
TRUSTED_PICKLE_SUFFIXES = (".pkl", ".pickle", ".txt")
PICKLE_WARNING = "a pickle can run code: only open pickles from a trusted source"


def _starts_like_pickle(path: Path) -> bool:
    """Whether the file's first byte is a pickle (protocol >= 2) header."""
    with open(path, "rb") as handle:
        return handle.read(1) == b"\x80"


def _detect_format(path: Path, fmt: str) -> str:
    """The explicit ``fmt``, or for ``"auto"``: a pickle by suffix or first byte, else by suffix."""
    if fmt != "auto":
        fmt = fmt.lower()
        if fmt not in ("pickle", "tsv", "csv", "jsonl"):
            raise ValueError(f"unknown format {fmt!r}: use 'auto', 'pickle', 'tsv', 'csv' or 'jsonl'")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle") or _starts_like_pickle(path):
        return "pickle"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "tsv"


def _refuse_untrusted_pickle(path: Path) -> None:
    """Raise for a pickle-headed file whose name does not say pickle (it was not asked to be unpickled)."""
    if path.suffix.lower() not in TRUSTED_PICKLE_SUFFIXES:
        raise InputFormatError(
            f"{path}: starts with a pickle header but is not named .pkl/.pickle/.txt, so it is not unpickled "
            f"({PICKLE_WARNING}); if it is yours, pass {setting_hint('sessions_format', 'pickle')}"
        )


# --------------------------------------------------------------------------- sessions
@dataclass
class SessionSet:
    """Sessions read from one file.

    Attributes:
        ids: ``[N]`` session ids, ``int64`` or numpy unicode.
        sequences: ``N`` lists of item ids (ints or strings, as read), oldest first.
        targets: ``N`` target items or ``None`` when the file has none. Never used for prompts.
        source: file name the ids refer to (e.g. ``"train.txt"``), or a label for in-memory sets.
        sha256: sha256 of the file's bytes (for in-memory sets, of a canonical JSON dump).
        lines: ``N`` line numbers (1-based; pickle rows: row index) used in error messages.
        line_label: ``"line"`` for text files, ``"row"`` for pickles (how :attr:`lines` are named in errors).
    """

    ids: np.ndarray
    sequences: list[list[ItemId]]
    targets: list[ItemId] | None = None
    source: str = "<memory>"
    sha256: str = ""
    lines: list[int] = field(default_factory=list)
    line_label: str = "line"

    def __post_init__(self) -> None:
        self.ids = _ids_array(list(self.ids.tolist() if isinstance(self.ids, np.ndarray) else self.ids))
        if len(self.ids) != len(self.sequences):
            raise ValueError(f"{self.source}: {len(self.ids)} ids but {len(self.sequences)} sequences")
        if self.targets is not None and len(self.targets) != len(self.sequences):
            raise ValueError(f"{self.source}: {len(self.targets)} targets but {len(self.sequences)} sequences")
        if not self.lines:
            self.lines = list(range(1, len(self.sequences) + 1))
        if not self.sha256:
            dump = json.dumps(
                [[item_key(i) for i in self.ids.tolist()], [[item_key(x) for x in s] for s in self.sequences]],
                separators=(",", ":"),
            )
            self.sha256 = hashlib.sha256(dump.encode("utf-8")).hexdigest()

    @classmethod
    def from_lists(
        cls,
        sequences: Sequence[Sequence[ItemId]],
        ids: Sequence[ItemId] | None = None,
        targets: Sequence[ItemId] | None = None,
        source: str = "<memory>",
    ) -> SessionSet:
        """Build a set in memory (ids default to row indices)."""
        ids = list(range(len(sequences))) if ids is None else list(ids)
        check_unique_ids(ids, None, source, "session")
        return cls(
            ids=np.asarray(ids),
            sequences=[list(s) for s in sequences],
            targets=None if targets is None else list(targets),
            source=source,
        )

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, rows: Sequence[int] | np.ndarray) -> SessionSet:
        """The sessions at ``rows`` (keeps ``source`` and ``sha256``: ids still refer to the same file)."""
        rows = [int(r) for r in rows]
        return SessionSet(
            ids=self.ids[rows] if rows else self.ids[:0],
            sequences=[self.sequences[r] for r in rows],
            targets=None if self.targets is None else [self.targets[r] for r in rows],
            source=self.source,
            sha256=self.sha256,
            lines=[self.lines[r] for r in rows],
            line_label=self.line_label,
        )

    def shard(self, k: int, n: int) -> SessionSet:
        """Shard ``k`` of ``n``: the contiguous block of rows ``[k*N//n, (k+1)*N//n)``.

        Contiguous blocks keep row order, so merging shards ``0..n-1`` in order gives the rows of a
        full build in the same order.
        """
        if n < 1 or not 0 <= k < n:
            raise ValueError(f"shard must be k/n with 0 <= k < n, got {k}/{n}")
        total = len(self)
        return self.subset(range(k * total // n, (k + 1) * total // n))


def check_unique_ids(ids: Sequence[Any], lines: Sequence[int] | None, source: str, what: str) -> dict[str, int]:
    """Each id's :func:`item_key` -> its position in ``ids``; a repeated id raises, naming both lines.

    ``lines`` are the line numbers of ``ids`` in ``source`` (default ``1..N``); ``what`` names the ids
    in the message (``"session"``, ``"item"``). Session sets and catalogues, read or built in memory,
    all check their ids here.

    Raises:
        InputFormatError: ``<source>: line <n>: duplicate <what> id '<id>' (first seen on line <m>)``.
    """
    position: dict[str, int] = {}
    for pos, iid in enumerate(ids):
        key = item_key(iid)
        if key in position:
            first, line = (lines[position[key]], lines[pos]) if lines else (position[key] + 1, pos + 1)
            raise InputFormatError(f"{source}: line {line}: duplicate {what} id {key!r} (first seen on line {first})")
        position[key] = pos
    return position


def _parse_id(text: str) -> ItemId:
    text = text.strip()
    return int(text) if _canonical_int(text) else text


def read_sessions(
    path: str | os.PathLike,
    fmt: str = "auto",
    *,
    on_empty: str = "error",
    encoding: str = "utf-8",
) -> SessionSet:
    """Read sessions from an SR-GNN pickle, a TSV/CSV file (one session per row) or JSONL.

    A pickle can run code: only open pickles from a trusted source. ``fmt="auto"`` unpickles only
    ``.pkl`` / ``.pickle`` files and ``.txt`` files that start with a pickle header.

    Args:
        path: the file.
        fmt: ``"auto"`` (by extension / pickle header), ``"pickle"``, ``"tsv"``, ``"csv"`` or ``"jsonl"``.
        on_empty: a session with no items: ``"error"`` (default) or ``"skip"`` (dropped, counted in the log).
        encoding: text encoding of TSV/CSV/JSONL files (``"utf-8"``; ``"latin-1"`` for old files).

    Raises:
        InputFormatError: malformed line, empty session (``on_empty="error"``), duplicate session id, a
            byte that is not valid in ``encoding``, or a pickle-headed file with another name under
            ``fmt="auto"``; the message names the file, the line (pickle: row) and the session id.
    """
    path = Path(path)
    if on_empty not in ("error", "skip"):
        raise ValueError(f"on_empty must be 'error' or 'skip', got {on_empty!r}")
    if not path.is_file():
        raise FileNotFoundError(f"sessions file not found: {path}")
    kind = _detect_format(path, fmt)
    if kind == "pickle" and fmt == "auto":
        _refuse_untrusted_pickle(path)
    if kind == "pickle":
        ids, seqs, targets, lines = _read_pickle_sessions(path)
    elif kind == "jsonl":
        ids, seqs, targets, lines = _read_jsonl_sessions(path, encoding)
    else:
        ids, seqs, targets, lines = _read_table_sessions(path, "," if kind == "csv" else "\t", encoding)

    keep_ids, keep_seqs, keep_targets, keep_lines = [], [], [], []
    skipped = 0
    for sid, seq, tgt, line in zip(ids, seqs, targets, lines, strict=True):
        if not seq:
            if on_empty == "error":
                where = f"row {line}" if kind == "pickle" else f"line {line}"
                raise InputFormatError(
                    f"{path}: {where}: session {sid!r} has no items "
                    f"(pass {setting_hint('on_empty_session', 'skip')} to drop empty sessions)"
                )
            skipped += 1
            continue
        keep_ids.append(sid)
        keep_seqs.append(seq)
        keep_targets.append(tgt)
        keep_lines.append(line)
    if skipped:
        logger.warning("%s: skipped %d empty sessions", path, skipped)
    check_unique_ids(keep_ids, keep_lines, str(path), "session")
    has_targets = any(t is not None for t in keep_targets)
    return SessionSet(
        ids=np.asarray(keep_ids, dtype=object) if keep_ids else np.zeros(0, np.int64),
        sequences=keep_seqs,
        targets=keep_targets if has_targets else None,
        source=path.name,
        sha256=sha256_file(path),
        lines=keep_lines,
        line_label="row" if kind == "pickle" else "line",
    )


def _read_pickle_sessions(path: Path) -> tuple[list, list, list, list]:
    seqs_raw, targets_raw = read_srgnn_pickle(path, InputFormatError)
    seqs = []
    for row, seq in enumerate(seqs_raw):
        try:
            seqs.append([int(x) if isinstance(x, (int, np.integer)) else _parse_id(str(x)) for x in seq])
        except TypeError:
            raise InputFormatError(f"{path}: row {row}: session {row} is not a sequence of item ids") from None
    targets = (
        [None] * len(seqs)
        if targets_raw is None
        else [int(t) if isinstance(t, (int, np.integer)) else t for t in targets_raw]
    )
    return list(range(len(seqs))), seqs, targets, list(range(len(seqs)))


def _jsonl_objects(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """Yield (1-based line number, parsed JSON) for each non-blank line; bad JSON names the line."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputFormatError(f"{path}: line {lineno}: not valid JSON ({err.msg})") from None
        yield lineno, obj


def _sessions_text(path: Path, encoding: str) -> str:
    """A sessions text file decoded, with a hint naming the sessions encoding setting."""
    hint = f"re-save it as UTF-8 or pass {setting_hint('sessions_encoding', 'latin-1')}"
    return read_text(path, encoding, hint)


def _read_jsonl_sessions(path: Path, encoding: str) -> tuple[list, list, list, list]:
    ids, seqs, targets, lines = [], [], [], []
    with io.StringIO(_sessions_text(path, encoding), newline=None) as handle:
        for lineno, obj in _jsonl_objects(path, handle):
            if not isinstance(obj, dict) or "session_id" not in obj or "items" not in obj:
                raise InputFormatError(f"{path}: line {lineno}: expected an object with 'session_id' and 'items'")
            sid = obj["session_id"]
            if not isinstance(sid, (int, str)) or isinstance(sid, bool):
                raise InputFormatError(f"{path}: line {lineno}: session_id must be an int or a string, got {sid!r}")
            items = obj["items"]
            if not isinstance(items, list) or not all(
                isinstance(x, (int, str)) and not isinstance(x, bool) for x in items
            ):
                raise InputFormatError(
                    f"{path}: line {lineno}: session {sid!r}: 'items' must be a list of ints or strings"
                )
            ids.append(sid)
            seqs.append(list(items))
            targets.append(obj.get("target"))
            lines.append(lineno)
    return ids, seqs, targets, lines


def _read_table_sessions(path: Path, delimiter: str, encoding: str) -> tuple[list, list, list, list]:
    ids, seqs, targets, lines = [], [], [], []
    with io.StringIO(_sessions_text(path, encoding), newline="") as handle:
        reader = csv.reader(
            handle, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
        )
        first = True
        for row in reader:
            lineno = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()) or row[0].lstrip().startswith("#"):
                continue
            if first:
                first = False
                if row[0].strip().lower() == "session_id":
                    continue
            if len(row) not in (2, 3):
                raise InputFormatError(
                    f"{path}: line {lineno}: expected 2 or 3 columns (session_id, item_ids[, target]) "
                    f"separated by {'a tab' if delimiter == chr(9) else repr(delimiter)}, got {len(row)}"
                )
            sid_text = row[0].strip()
            if not sid_text:
                raise InputFormatError(f"{path}: line {lineno}: empty session id")
            sid = _parse_id(sid_text)
            items = [_parse_id(tok) for tok in row[1].split()]
            target = _parse_id(row[2]) if len(row) == 3 and row[2].strip() else None
            ids.append(sid)
            seqs.append(items)
            targets.append(target)
            lines.append(lineno)
    return ids, seqs, targets, lines


# --------------------------------------------------------------------------- catalogue
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
        rows.append(
            (lineno, iid if isinstance(iid, int) else _parse_id(str(iid)), _normalise_title(obj["title"] or ""))
        )
    return rows


def _catalogue_delimiter(text: str, kind: str) -> str:
    """``,`` for CSV; otherwise a tab, or ``|`` when the first line has no tab but a ``|``."""
    first_line = text.split("\n", 1)[0]
    if kind == "csv":
        return ","
    return "|" if "\t" not in first_line and "|" in first_line else "\t"


def _is_header(row: list[str], header: bool | None, id_column: int | None, title_column: int | None) -> bool:
    """``header`` when given; else whether the id or title field of ``row`` is a common column name."""
    if header is not None:
        return header
    names = [normalise_name(field) for field in row]
    id_col, title_col = _or(id_column, 0), _or(title_column, 1)
    return (id_col < len(row) and names[id_col] in COMMON_NAMES["item"]) or (
        title_col < len(row) and names[title_col] in COMMON_NAMES["title"]
    )


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
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE,
    )
    width: tuple[int, int] | None = None  # (line, field count) of the first row
    cols = (0, 1)  # id and title columns, settled by the first row
    rows = []
    for row in reader:
        lineno = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if width is None:
            width = (lineno, len(row))
            if _is_header(row, header, id_column, title_column):
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
        rows.append((lineno, _parse_id(id_text), _normalise_title(row[title_col])))
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
