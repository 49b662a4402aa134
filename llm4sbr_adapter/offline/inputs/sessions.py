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
  A first row whose first field is a session-column name (``session_id``, ``session``, ``SessionId``,
  ...) and that holds no integer item id is a header and skipped. Blank lines and lines starting with
  ``#`` are ignored. A double quote never closed, or a quoted field running over lines, is an error.
* ``jsonl`` -- one object per line: ``{"session_id": ..., "items": [...], "target": ...}`` (target optional).

Ids may be ints or strings. Session ids come back as ``int64`` when every id is an integer written in
canonical form (``"7"``, not ``"007"``), otherwise as strings. Items are compared with catalogue ids by
their string form, so integer items from a pickle match a TSV catalogue.

Targets are read (when present) only so a caller can evaluate; the builder never shows them to the LLM.

Text files are decoded whole; a byte that is not valid in the encoding is an error naming the file,
the line, the byte and its column (:func:`read_text`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import setting_hint
from ...hashing import sha256_file
from ...srgnn_pickle import read_srgnn_pickle
from .catalogue import Catalogue, read_catalogue
from .fields import csv_rows, looks_like_session_header
from .ids import (
    PICKLE_WARNING,
    ItemId,
    _detect_format,
    _ids_array,
    _jsonl_objects,
    _refuse_untrusted_pickle,
    check_unique_ids,
    item_key,
)
from .ids import _parse_id as _parse_id  # re-exported: experiments.clicks_protocol reads ids with it
from .text import InputFormatError, read_text

logger = logging.getLogger(__name__)

# The catalogue reader and the id helpers live in .catalogue and .ids; their names stay importable from here.
__all__ = [
    "PICKLE_WARNING",
    "Catalogue",
    "InputFormatError",
    "ItemId",
    "SessionSet",
    "check_unique_ids",
    "item_key",
    "read_catalogue",
    "read_sessions",
    "read_text",
]


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

    where = "row" if kind == "pickle" else "line"
    keep_ids, keep_seqs, keep_targets, keep_lines = _non_empty(path, where, on_empty, ids, seqs, targets, lines)
    check_unique_ids(keep_ids, keep_lines, str(path), "session")
    has_targets = any(t is not None for t in keep_targets)
    return SessionSet(
        ids=np.asarray(keep_ids, dtype=object) if keep_ids else np.zeros(0, np.int64),
        sequences=keep_seqs,
        targets=keep_targets if has_targets else None,
        source=path.name,
        sha256=sha256_file(path),
        lines=keep_lines,
        line_label=where,
    )


def _non_empty(
    path: Path, where: str, on_empty: str, ids: list, seqs: list, targets: list, lines: list
) -> tuple[list, list, list, list]:
    """The rows whose session has items; an empty one stops (``on_empty="error"``, naming its ``where`` =
    row / line) or is dropped and counted in the log (``"skip"``)."""
    keep_ids, keep_seqs, keep_targets, keep_lines = [], [], [], []
    skipped = 0
    for sid, seq, tgt, line in zip(ids, seqs, targets, lines, strict=True):
        if not seq:
            if on_empty == "error":
                raise InputFormatError(
                    f"{path}: {where} {line}: session {sid!r} has no items "
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
    return keep_ids, keep_seqs, keep_targets, keep_lines


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
    first = True
    for lineno, row in csv_rows(_sessions_text(path, encoding), delimiter, path, quoting=delimiter == ","):
        if not row or (len(row) == 1 and not row[0].strip()) or row[0].lstrip().startswith("#"):
            continue
        if first:
            first = False
            if looks_like_session_header(row):
                continue
        if len(row) not in (2, 3):
            raise InputFormatError(
                f"{path}: line {lineno}: expected 2 or 3 columns (session_id, item_ids[, target]) "
                f"separated by {'a tab' if delimiter == chr(9) else repr(delimiter)}, got {len(row)}"
            )
        sid_text = row[0].strip()
        if not sid_text:
            raise InputFormatError(f"{path}: line {lineno}: empty session id")
        where = f"{path}: line {lineno}"
        sid = _parse_id(sid_text, where)
        items = [_parse_id(tok, where) for tok in row[1].split()]
        target = _parse_id(row[2], where) if len(row) == 3 and row[2].strip() else None
        ids.append(sid)
        seqs.append(items)
        targets.append(target)
        lines.append(lineno)
    return ids, seqs, targets, lines
