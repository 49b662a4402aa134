"""Click logs: one click per row (``session_id,item_id,timestamp`` and the like), and the sessions cut from them.

:func:`read_click_log` reads CSV, TSV (any of ``,`` ``;`` tab ``|``, detected from the header line)
or Parquet (needs pandas with pyarrow). The first row is a header; the session, item, time and
user columns are found by the names given (``--session-column`` etc.) or by a common spelling
(:data:`~.columns.COMMON_NAMES`). A log needs an item column, a time column, and a session column
or a user column (or both); other columns are ignored. Times are integers (any unit, e.g. unix
seconds or milliseconds) or ISO 8601 dates/times (read as whole unix seconds, UTC when no zone is
given).

:func:`click_sessions` groups the clicks: by the session column when there is one (each session in
time order, equal times in file order, sessions in order of first appearance), otherwise each
user's clicks are cut at gaps longer than ``gap`` (:func:`split_sessions`) or grouped by fixed
clock windows of ``window`` (:func:`clock_windows`), in the time column's unit.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import setting_hint, setting_name
from ...hashing import sha256_file
from .clicks_io import delimiter, parse_time, table_rows
from .columns import ROLE_FIELDS, find_column
from .fields import TimeKinds, parse_id
from .session_times import read_session_times
from .sessions import SessionSet
from .text import InputFormatError

logger = logging.getLogger(__name__)

TimeArray = Sequence[int] | np.ndarray  # click times, one per click

__all__ = [
    "ClickLog",
    "looks_like_click_log",
    "read_click_sessions",
    "Session",
    "click_sessions",
    "clock_windows",
    "read_click_log",
    "read_click_log_with",
    "split_sessions",
    "user_sort_key",
]


@dataclass
class Session:
    """One session: clicks in time order. ``items`` hold original item ids; ``id`` is the log's session
    id, or ``"<user>_<k>"`` (k from 1, in time order) for a session cut from a user's clicks."""

    user: str
    items: list
    times: list
    id: object = None

    @property
    def start(self) -> int:
        return int(self.times[0])

    @property
    def end(self) -> int:
        return int(self.times[-1])


@dataclass
class ClickLog:
    """Clicks in file order plus the item titles (original ids).

    ``users`` hold the user column, or the session id when the log has no user column; ``sessions``
    the session column (``None`` when the log has none); ``lines`` the 1-based line of each click.
    """

    users: list
    items: list
    times: np.ndarray  # int64 [n]
    titles: dict = field(default_factory=dict)
    sessions: list | None = None
    source: str = "<memory>"
    lines: list = field(default_factory=list)


# --------------------------------------------------------------------------- reading
def read_click_log(
    path: str | os.PathLike,
    *,
    session_column: str | None = None,
    item_column: str | None = None,
    time_column: str | None = None,
    user_column: str | None = None,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    session_times: Mapping[Any, tuple[int, str | None]] | None = None,
) -> ClickLog:
    """Read a one-click-per-row log (module docstring). ``names``: the column names of a text log that
    has no header row (YooChoose's ``clicks.dat``: ``session_id,timestamp,item_id,category``).
    ``session_times``: ``{session id: (time, user or None)}`` from a separate sessions table
    (:func:`~.session_times.read_session_times`, ``--session-times``): every click takes its session's
    time (and, without a user column, its user); the log then needs a session column, not a time column.

    Raises :class:`InputFormatError` naming the file, the line and the column of a missing column, an
    empty id or an unreadable time."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"click log not found: {path}")
    rows = table_rows(path, encoding)
    header = list(names) if names else next(rows, (1, []))[1]
    flags = {"session": session_column, "item": item_column, "time": time_column, "user": user_column}
    cols = {role: find_column(header, role, given, source=str(path)) for role, given in flags.items()}
    item_col, time_col = _require_columns(path, header, cols, joined=session_times is not None)
    kinds = TimeKinds(path, "" if time_col is None else header[time_col])
    session_col, user_col = cols["session"], cols["user"]
    users: list[str] = []
    items: list[int | str] = []
    times: list[int] = []
    sessions: list[int | str] = []
    lines: list[int] = []
    for lineno, row in rows:
        if not row or all(not v.strip() for v in row):
            continue
        if len(row) != len(header):
            raise InputFormatError(f"{path}: line {lineno}: {len(row)} fields, but the header has {len(header)}")
        where = f"{path}: line {lineno}"
        items.append(parse_id(_required(path, lineno, row, item_col, header), where))
        if session_col is not None:
            sessions.append(parse_id(_required(path, lineno, row, session_col, header), where))
        user = None if user_col is None else _required(path, lineno, row, user_col, header).strip()
        if session_times is None:
            assert time_col is not None  # required without a session times table
            times.append(parse_time(path, lineno, row[time_col], header[time_col], kinds))
        else:
            time, user = _joined(path, lineno, session_times, sessions[-1], user)
            times.append(time)
        users.append(str(sessions[-1]) if user is None else user)
        lines.append(lineno)
    return ClickLog(
        users=users,
        items=items,
        times=np.asarray(times, dtype=np.int64),
        sessions=sessions if session_col is not None else None,
        source=path.name,
        lines=lines,
    )


def _require_columns(
    path: Path, header: Sequence[str], cols: dict[str, int | None], joined: bool = False
) -> tuple[int, int | None]:
    """The item and time columns; they, and a session or a user column, must be there. ``joined`` (times from
    a session times table): the time column is not needed and the session column is (it is the join key)."""
    missing = [role for role in (("item",) if joined else ("item", "time")) if cols[role] is None]
    if joined and cols["session"] is None:
        missing.append("session")
    elif cols["session"] is None and cols["user"] is None:
        missing.append("session (or user)")
    if missing:
        flags = " / ".join(setting_name(ROLE_FIELDS[m.split()[0]]) for m in missing)
        raise InputFormatError(
            f"{path}: line 1: found no {' and no '.join(missing)} column in the header {list(header)}; "
            f"name it with {flags}"
        )
    assert cols["item"] is not None
    return cols["item"], cols["time"]


def _joined(
    path: Path, lineno: int, session_times: Mapping[Any, tuple[int, str | None]], session: Any, user: str | None
) -> tuple[int, str | None]:
    """A click's time from its session's row in the session times table, and its user (the log's, else the table's)."""
    if session not in session_times:
        raise InputFormatError(
            f"{path}: line {lineno}: session {session!r} has no row in the session times table "
            f"({setting_name('session_times')})"
        )
    time, table_user = session_times[session]
    return time, user if user is not None else table_user


def _required(path: Path, lineno: int, row: Sequence[str], col: int, header: Sequence[str]) -> str:
    value = row[col]
    if not value.strip():
        raise InputFormatError(f"{path}: line {lineno}: empty {header[col]!r}")
    return value


# --------------------------------------------------------------------------- for the builder
def looks_like_click_log(path: str | os.PathLike, encoding: str = "utf-8") -> bool:
    """Whether ``path`` is a click log: Parquet, or a text file whose header names an item and a time column
    (a session-per-row file's header is ``session_id<TAB>item_ids``)."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    with open(path, "rb") as handle:
        if handle.read(1) == b"\x80":  # a pickle header (SR-GNN's train.txt): never a click log
            return False
        handle.seek(0)
        first = handle.readline(65536).decode(encoding, errors="replace").removeprefix("\ufeff").strip()
    header = next(csv.reader([first], delimiter=delimiter(path, first)), [])
    src = str(path)
    return all(find_column(header, role, None, source=src) is not None for role in ("item", "time"))


def read_click_log_with(
    path: str | os.PathLike, columns: dict[str, Any] | None, *, encoding: str = "utf-8"
) -> ClickLog:
    """:func:`read_click_log` with the columns as the command lines collect them: a dict with the keys
    ``session``, ``item``, ``time``, ``user`` (column names) and ``names`` (all names, for a log
    without a header) and ``session_times`` (the path of a session times table, ``--session-times``); a
    missing key is auto-detected."""
    cols = columns or {}
    names = {"session_column": cols.get("session"), "time_column": cols.get("time"), "user_column": cols.get("user")}
    times_table = cols.get("session_times")
    return read_click_log(
        path,
        item_column=cols.get("item"),
        names=cols.get("names"),
        encoding=encoding,
        session_times=read_session_times(times_table, **names, encoding=encoding) if times_table else None,
        **names,
    )


def read_click_sessions(
    path: str | os.PathLike,
    *,
    columns: dict[str, Any] | None = None,
    gap: int | None = None,
    window: int | None = None,
    target: str = "last",
    on_empty: str = "error",
    encoding: str = "utf-8",
) -> SessionSet:
    """A click log's sessions as a :class:`SessionSet` for the builder (ids: the log's session ids, or
    ``"<user>_<k>"`` when cut by ``gap``/``window``; ``sha256`` of the log file).

    ``target="last"`` (default) holds each session's last click out as its target, so the prompt never
    shows the item a next-click model is asked to predict; ``"none"`` shows every click. A session left
    with no clicks (one click and ``target="last"``) is an error naming it, or dropped and counted in
    the log with ``on_empty="skip"``.
    """
    if target not in ("last", "none"):
        raise ValueError(f"target must be 'last' or 'none', got {target!r}")
    log = read_click_log_with(path, columns, encoding=encoding)
    keys = log.sessions if log.sessions is not None else log.users
    first_line: dict = {}
    for key, line in zip(keys, log.lines, strict=True):
        first_line.setdefault(key, line)
    ids: list[Any] = []
    sequences: list[list[Any]] = []
    targets: list[Any] = []
    lines: list[int] = []
    skipped = 0
    for s in click_sessions(log, gap=gap, window=window):
        items = s.items[:-1] if target == "last" else s.items
        line = first_line[s.id if log.sessions is not None else s.user]
        if not items:
            if on_empty == "error":
                raise InputFormatError(
                    f"{path}: line {line}: session {s.id!r} has no clicks left to show "
                    f"(one click, held out as the target); pass "
                    f"{setting_hint('on_empty_session', 'skip')} to drop such sessions"
                )
            skipped += 1
            continue
        ids.append(s.id)
        sequences.append(items)
        targets.append(s.items[-1])
        lines.append(line)
    if skipped:
        logger.warning("%s: skipped %d sessions with a single click", path, skipped)
    return SessionSet(
        ids=np.asarray(ids, dtype=object) if ids else np.zeros(0, np.int64),
        sequences=sequences,
        targets=targets if target == "last" else None,
        source=Path(path).name,
        sha256=sha256_file(path),
        lines=lines,
    )


# --------------------------------------------------------------------------- sessions
def user_sort_key(user: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order (MovieLens), then any other ids in string order."""
    return (0, int(user), "") if user.isdigit() else (1, 0, user)


def click_sessions(log: ClickLog, *, gap: int | None = None, window: int | None = None) -> list[Session]:
    """The log's sessions (module docstring). With a session column, ``gap`` and ``window`` must be
    ``None``; without one, exactly one of them cuts each user's clicks."""
    if log.sessions is not None:
        if gap is not None or window is not None:
            raise ValueError(f"{log.source} has a session column: a gap or window would cut its sessions again")
        return group_by_session(log.sessions, log.users, log.items, log.times)
    if (gap is None) == (window is None):
        raise ValueError(
            f"{log.source} has no session column: cut each user's clicks with "
            f"{setting_hint('gap', 1800)} or {setting_hint('window', 600)} "
            "(seconds, or the time column's unit)"
        )
    if gap is not None:
        cut = split_sessions(log.users, log.items, log.times, gap=gap)
    else:
        assert window is not None
        cut = clock_windows(log.users, log.items, log.times, window=window)
    counts: dict[str, int] = {}
    for s in cut:
        counts[s.user] = counts.get(s.user, 0) + 1
        s.id = f"{s.user}_{counts[s.user]}"
    return cut


def group_by_session(sessions: Sequence, users: Sequence, items: Sequence, times: TimeArray) -> list[Session]:
    """One :class:`Session` per session id, in order of first appearance; clicks by time, then file order."""
    n = len(sessions)
    codes_of = {sid: k for k, sid in enumerate(dict.fromkeys(sessions))}
    codes = np.fromiter((codes_of[s] for s in sessions), dtype=np.int64, count=n)
    stamps = np.asarray(times, dtype=np.int64)
    order = np.lexsort((np.arange(n), stamps, codes))
    starts = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]]) if n else np.zeros(0, np.int64)
    ends = np.append(starts[1:], n)
    out = []
    for a, b in zip(starts, ends, strict=True):
        rows = order[a:b]
        out.append(Session(users[rows[0]], [items[k] for k in rows], stamps[rows].tolist(), id=sessions[rows[0]]))
    return out


def split_sessions(users: Sequence, items: Sequence, times: TimeArray, gap: int = 600) -> list[Session]:
    """Cut each user's clicks (sorted by time, ties in input order) wherever consecutive clicks are
    more than ``gap`` seconds apart. Sessions come back ordered by user (first appearance) then time."""
    n = len(users)
    if not (len(items) == len(times) == n):
        raise ValueError(f"users, items and times differ in length ({n}, {len(items)}, {len(times)})")
    if n == 0:
        return []
    user_codes = {u: k for k, u in enumerate(dict.fromkeys(users))}
    codes = np.fromiter((user_codes[u] for u in users), dtype=np.int64, count=n)
    stamps = np.asarray(times, dtype=np.int64)
    order = np.lexsort((np.arange(n), stamps, codes))  # by user, then time, then file order
    codes_s, times_s = codes[order], stamps[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (codes_s[1:] != codes_s[:-1]) | (times_s[1:] - times_s[:-1] > gap)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    items_s = [items[k] for k in order]
    users_s = [users[k] for k in order]
    return [Session(users_s[a], items_s[a:b], times_s[a:b].tolist()) for a, b in zip(starts, ends, strict=True)]


def clock_windows(users: Sequence[str], items: Sequence, times: TimeArray, window: int = 600) -> list[Session]:
    """Group each user's clicks by ``timestamp // window`` (a fixed clock window, not a gap rule).

    Sessions come back in (user id, window) order (:func:`user_sort_key`); inside a session clicks are
    in time order, equal timestamps in input order.
    """
    n = len(users)
    if not (len(items) == len(times) == n):
        raise ValueError(f"users, items and times differ in length ({n}, {len(items)}, {len(times)})")
    if window < 1:
        raise ValueError(f"window must be at least 1 second, got {window}")
    ranked = {u: k for k, u in enumerate(sorted(set(users), key=user_sort_key))}
    codes = np.fromiter((ranked[u] for u in users), dtype=np.int64, count=n)
    stamps = np.asarray(times, dtype=np.int64)
    windows = stamps // window
    order = np.lexsort((np.arange(n), stamps, windows, codes))
    codes_s, windows_s, times_s = codes[order], windows[order], stamps[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (codes_s[1:] != codes_s[:-1]) | (windows_s[1:] != windows_s[:-1])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    return [
        Session(users[order[a]], [items[k] for k in order[a:b]], times_s[a:b].tolist())
        for a, b in zip(starts, ends, strict=True)
    ]
