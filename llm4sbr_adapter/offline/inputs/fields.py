"""Fields of text inputs read without guessing: ids, CSV quoting, header rows, time kinds.

* :func:`parse_id`: an id field as an ``int`` (canonical integer text) or a string (NFC); a field that
  reads as a float (``1.0``, ``2e3``) or a boolean (``True``) is an error naming the file and line:
  such a column was converted on its way here, and ``1.0`` would never match the catalogue's ``1``.
* :func:`csv_rows`: ``(first line, fields)`` of delimited text; a quote left open to the end of the file,
  or a quoted field running over several lines, is an error naming the line where it starts, never a
  title that swallows the rows after it.
* :func:`looks_like_session_header` and :func:`looks_like_catalogue_header`: whether a first row is a
  header, decided so that no data row is dropped and no header is read as data.
* :class:`TimeKinds`: a click log's times are all integers or all ISO dates, never a mix.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Iterator

from ...errors import setting_hint
from .columns import COMMON_NAMES, normalise_name
from .text import InputFormatError

__all__ = ["TimeKinds", "csv_rows", "looks_like_catalogue_header", "looks_like_session_header", "parse_id"]

logger = logging.getLogger(__name__)

_CANONICAL_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+)$")
_BOOLEANS = {"true", "false"}


def parse_id(text: str, where: str = "") -> int | str:
    """An id field: ``int`` for canonical integer text, else the stripped NFC string.

    Raises :class:`InputFormatError` (prefixed by ``where``, e.g. ``"f.tsv: line 3"``) for a float or a
    boolean written as text."""
    text = text.strip()
    if _CANONICAL_INT.match(text):
        return int(text)
    if _FLOAT.match(text) or text.lower() in _BOOLEANS:
        kind = "boolean" if text.lower() in _BOOLEANS else "float"
        prefix = f"{where}: " if where else ""
        raise InputFormatError(
            f"{prefix}id {text!r} is a {kind}, not an id (was an integer column converted on the way?); "
            "write ids as integers or plain strings"
        )
    return unicodedata.normalize("NFC", text)


def csv_rows(text: str, delimiter: str, path: object, *, quoting: bool = True) -> Iterator[tuple[int, list[str]]]:
    """``(line where the row starts, fields)`` of delimited ``text``; ``quoting`` honours double quotes.

    Raises :class:`InputFormatError` naming the line of a quote that is never closed, or of a quoted
    field that runs over several lines (the usual sign of a stray quote)."""
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE,
        strict=quoting,
    )
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise InputFormatError(
                f"{path}: line {start}: a double quote opened here is never closed ({err}); "
                'close it or double it ("") inside a quoted field'
            ) from None
        if reader.line_num > start and any("\n" in f or "\r" in f for f in row):
            raise InputFormatError(
                f"{path}: line {start}: a quoted field runs over lines {start}-{reader.line_num}; is a closing "
                "double quote missing? (fields cannot span lines)"
            )
        yield start, row
        start = reader.line_num + 1


def looks_like_catalogue_header(
    row: list[str], header: bool | None, id_column: int | None, title_column: int | None, where: str
) -> bool:
    """``header`` when given; else whether the id field of ``row`` is a common id-column name, or its title
    field a common title-column name while its id field is no integer (``1<TAB>Name`` is an item called
    Name, never a header). A header recognised by its title alone is logged, naming the flag that decides."""
    if header is not None:
        return header
    names = [normalise_name(field) for field in row]
    id_col = 0 if id_column is None else id_column
    title_col = 1 if title_column is None else title_column
    if id_col < len(row) and names[id_col] in COMMON_NAMES["item"]:
        return True
    if title_col < len(row) and names[title_col] in COMMON_NAMES["title"]:
        if id_col < len(row) and _CANONICAL_INT.match(row[id_col].strip()):
            return False
        logger.warning(
            "%s: read as a header (its title field %r is a column name); if it is an item, pass %s",
            where,
            row[title_col],
            setting_hint("items_header", "no"),
        )
        return True
    return False


def looks_like_session_header(row: list[str]) -> bool:
    """Whether the first row of a session-per-row file is a header: its first field is a session-column
    name (``session_id``, ``session``, ``SessionId``, ...) and its second field holds no integer id."""
    if not row or normalise_name(row[0]) not in COMMON_NAMES["session"]:
        return False
    return not any(_CANONICAL_INT.match(tok) for field in row[1:] for tok in field.split())


class TimeKinds:
    """Remembers whether a log's times are integers or ISO dates; a mix is an error naming both lines."""

    def __init__(self, path: object, column: str) -> None:
        self.path, self.column = path, column
        self.first: dict[str, tuple[int, str]] = {}

    def see(self, lineno: int, text: str, kind: str) -> None:
        """Record line ``lineno``'s time ``text`` of ``kind`` (``"integer"`` or ``"ISO date"``)."""
        if kind in self.first:
            return
        self.first[kind] = (lineno, text)
        if len(self.first) > 1:
            (other, (line, value)) = next((k, v) for k, v in self.first.items() if k != kind)
            raise InputFormatError(
                f"{self.path}: line {lineno}: {self.column} {text!r} is an {kind}, but line {line} has the "
                f"{other} {value!r}: one kind of time per log (integers and dates have different units)"
            )
