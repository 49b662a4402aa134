"""Every MovieLens release, detected from its folder.

============================  ===============================  ==========================
files                         releases                         default encoding
============================  ===============================  ==========================
``ratings.dat`` (``::``)      ML-1M, ML-10M (``ml-10M100K``)   latin-1 (ML-1M), UTF-8 (ML-10M)
``u.data`` + ``u.item``       ML-100K                          latin-1
``ratings.csv`` (header)      ml-latest(-small), ml-20m,       UTF-8
+ ``movies.csv``              ml-25m, ml-32m
============================  ===============================  ==========================

A latin-1 default gives way to UTF-8 when a file is valid UTF-8 and not plain ASCII (a re-saved copy;
see :func:`~.text.resolve_encoding`); ``encoding`` overrides everything. Decoding is strict: a byte
that is not valid in the encoding is an error naming file, line and byte offset. ``movies.csv`` is
read as CSV (titles with commas are quoted; CRLF line ends are fine). ML-1M is told from ML-10M by
its ``users.dat``.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

import numpy as np

from ...errors import setting_hint
from .clicks import ClickLog
from .text import InputFormatError, read_lines, read_text, require_folder, resolve_encoding

__all__ = ["detect_release", "read_movielens"]

logger = logging.getLogger(__name__)


def detect_release(folder: str | os.PathLike) -> tuple[str, Path, Path]:
    """``(release, ratings file, movies file)``; a folder with none of the known files is an error listing them."""
    folder = require_folder(folder)
    if (folder / "ratings.dat").is_file():
        release = "ml-1m" if (folder / "users.dat").is_file() else "ml-10m"
        return release, folder / "ratings.dat", folder / "movies.dat"
    if (folder / "u.data").is_file():
        return "ml-100k", folder / "u.data", folder / "u.item"
    if (folder / "ratings.csv").is_file():
        return "ml-csv", folder / "ratings.csv", folder / "movies.csv"
    raise FileNotFoundError(
        f"{folder}: no MovieLens ratings found (looked for ratings.dat (ML-1M, ML-10M), u.data (ML-100K) and "
        "ratings.csv (ml-latest, ml-20m, ml-25m, ml-32m))"
    )


_DEFAULT_ENCODING = {"ml-1m": "latin-1", "ml-100k": "latin-1", "ml-10m": "utf-8", "ml-csv": "utf-8"}


def read_movielens(folder: str | os.PathLike, encoding: str | None = None) -> ClickLog:
    """The ratings of any release as a :class:`ClickLog` (users, int item ids, unix seconds) with titles.

    Raises :class:`InputFormatError` naming the file and line of a malformed row or an undecodable byte.
    """
    release, ratings, movies = detect_release(folder)
    hint = f"pass {setting_hint('encoding', 'latin-1')} (or the file's encoding)"
    enc = resolve_encoding(ratings, encoding, _DEFAULT_ENCODING[release])
    users, items, times = _read_ratings(ratings, release, read_lines(ratings, enc, hint))
    titles = {}
    if movies.is_file():
        enc = resolve_encoding(movies, encoding, _DEFAULT_ENCODING[release])
        titles = _read_titles(movies, release, enc, hint)
        logger.info("%s: %s, titles read as %s", folder, release, enc)
    else:
        logger.warning("%s: %s has no %s: items have no titles", folder, release, movies.name)
    return ClickLog(users=users, items=items, times=np.asarray(times, dtype=np.int64), titles=titles, source=release)


def _read_ratings(path: Path, release: str, lines: list[str]) -> tuple[list, list, list]:
    """``user, item, rating, timestamp`` rows (``::``, tab or comma; the CSV release has a header)."""
    sep = {"ml-100k": "\t", "ml-csv": ","}.get(release, "::")
    start = 0
    if release == "ml-csv":
        if not lines or [h.strip() for h in lines[0].split(",")[:4]] != ["userId", "movieId", "rating", "timestamp"]:
            raise InputFormatError(f"{path}: line 1: expected the header 'userId,movieId,rating,timestamp'")
        start = 1
    users, items, times = [], [], []
    for lineno, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) < 4:
            raise InputFormatError(
                f"{path}: line {lineno}: expected user{sep}item{sep}rating{sep}timestamp, got {line!r}"
            )
        try:
            users.append(str(int(parts[0])))
            items.append(int(parts[1]))
            times.append(int(parts[3]))
        except ValueError:
            raise InputFormatError(f"{path}: line {lineno}: non-integer user, item or timestamp in {line!r}") from None
    return users, items, times


def _read_titles(path: Path, release: str, encoding: str, hint: str) -> dict[int, str]:
    """Item id -> title: ``movies.dat`` (``::``), ``u.item`` (``|``) or ``movies.csv`` (quoted CSV, header)."""
    if release == "ml-csv":
        reader = csv.reader(io.StringIO(read_text(path, encoding, hint).removeprefix("\ufeff"), newline=""))
        rows = [(reader.line_num, row) for row in reader]
        if not rows or [h.strip() for h in rows[0][1][:2]] != ["movieId", "title"]:
            raise InputFormatError(f"{path}: line 1: expected the header 'movieId,title,genres'")
        rows = rows[1:]
    else:
        sep = "|" if release == "ml-100k" else "::"
        rows = [(k, line.split(sep)) for k, line in enumerate(read_lines(path, encoding, hint), 1)]
    titles = {}
    for lineno, parts in rows:
        if not parts or not "".join(parts).strip():
            continue
        if len(parts) < 2:
            raise InputFormatError(f"{path}: line {lineno}: expected item id and title, got {parts!r}")
        try:
            titles[int(parts[0])] = parts[1].strip()
        except ValueError:
            raise InputFormatError(f"{path}: line {lineno}: item id {parts[0]!r} is not an integer") from None
    return titles
