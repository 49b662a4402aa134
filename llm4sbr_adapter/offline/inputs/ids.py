"""Ids and rows shared by the session and catalogue readers: id parsing and keys, duplicate checks, the format
of a file (with the pickle trust rule), and JSON lines."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import strict_json
from ...errors import setting_hint
from .fields import parse_id
from .text import InputFormatError

__all__ = ["PICKLE_WARNING", "TRUSTED_PICKLE_SUFFIXES", "ItemId", "check_unique_ids", "item_key"]

ItemId = int | str


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
    return unicodedata.normalize("NFC", str(item).strip())


def _parse_id(text: str, where: str = "") -> ItemId:
    """An id field (:func:`.fields.parse_id`: an int, or an NFC string; a float or boolean is refused)."""
    return parse_id(text, where)


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


# --------------------------------------------------------------------------- formats
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


def _jsonl_objects(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """Yield (1-based line number, parsed JSON) for each non-blank line; bad JSON names the line."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = strict_json.loads(line)
        except json.JSONDecodeError as err:
            raise InputFormatError(f"{path}: line {lineno}: not valid JSON ({err.msg})") from None
        yield lineno, obj
