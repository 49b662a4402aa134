"""Reading the rows of a click table: CSV/TSV (delimiter from the header line) or Parquet, and its times.

Shared by click logs (:mod:`.clicks`) and the session times table (:mod:`.session_times`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from ...errors import setting_hint
from .fields import TimeKinds, csv_rows
from .text import InputFormatError, read_text

__all__ = ["delimiter", "parse_time", "table_rows"]


def table_rows(path: Path, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of a CSV/TSV/Parquet table, header first."""
    return _parquet_rows(path) if path.suffix.lower() in (".parquet", ".pq") else _text_rows(path, encoding)


def parse_time(path: Path, lineno: int, text: str, name: str, kinds: TimeKinds) -> int:
    """An integer, or an ISO 8601 date/time as whole unix seconds (UTC when no zone is given); ``kinds``
    refuses a log that mixes the two."""
    text = text.strip()
    if re.fullmatch(r"-?[0-9]+", text):
        kinds.see(lineno, text, "integer")
        return int(text)
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputFormatError(
            f"{path}: line {lineno}: {name} {text!r} is neither an integer nor an ISO 8601 date/time"
        ) from None
    kinds.see(lineno, text, "ISO date")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return int(stamp.timestamp() // 1)


def delimiter(path: Path, first_line: str) -> str:
    """Tab for ``.tsv``; otherwise the most frequent of ``,`` ``;`` tab ``|`` in the header line."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    return max((",", ";", "\t", "|"), key=first_line.count)


def _text_rows(path: Path, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of a CSV/TSV file; double quotes are honoured, CRLF line ends too."""
    text = read_text(path, encoding, f"pass {setting_hint('sessions_encoding', 'latin-1')} if it is latin-1")
    text = text.removeprefix("\ufeff")
    yield from csv_rows(text, delimiter(path, text.split("\n", 1)[0]), path)


def _parquet_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(row + 1, fields as text) of a Parquet file, header first; datetimes become unix seconds."""
    try:  # optional: only Parquet click logs need pandas and pyarrow
        import pandas as pd

        frame = pd.read_parquet(path)
    except ImportError as err:
        raise ImportError(
            f"{path}: reading Parquet needs pandas and pyarrow (pip install pandas pyarrow, or the package's "
            f"[parquet] extra): {err}"
        ) from None
    for name in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[name]):  # any resolution or zone -> unix seconds
            col = frame[name]
            col = col.dt.tz_convert("UTC").dt.tz_localize(None) if col.dt.tz is not None else col
            frame[name] = (col - pd.Timestamp(0)) // pd.Timedelta(seconds=1)
    yield 1, [str(c) for c in frame.columns]
    for k, row in enumerate(frame.astype(str).itertuples(index=False, name=None), 2):
        yield k, list(row)
