"""Session times kept in another table: ``--session-times PATH`` joins them onto a click log.

Some public session datasets keep the clicks (session id, item id, in order) in one table and each
session's time, often with its user, in a separate sessions table. :func:`read_session_times` reads
that table (CSV/TSV/Parquet with a header; the session, time and user columns are found as in a click
log, by ``--session-column`` / ``--time-column`` / ``--user-column`` or a common spelling) into
``{session id: (time, user or None)}``; :func:`~.clicks.read_click_log` then gives every click its
session's time (clicks of a session keep their file order) and, when the log has no user column, its
session's user.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import setting_name
from .clicks_io import parse_time, table_rows
from .columns import ROLE_FIELDS, find_column
from .fields import TimeKinds, parse_id
from .text import InputFormatError

__all__ = ["SessionTimes", "read_session_times"]

SessionTimes = dict  # {session id: (time, user or None)}


def read_session_times(
    path: str | os.PathLike,
    *,
    session_column: str | None = None,
    time_column: str | None = None,
    user_column: str | None = None,
    encoding: str = "utf-8",
) -> SessionTimes:
    """``{session id: (time, user or None)}`` from a sessions table (module docstring).

    Raises :class:`InputFormatError` naming the file and line of a missing column, an empty id, an
    unreadable time or a session listed twice; ``FileNotFoundError`` when the file is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"session times table not found: {path} ({setting_name('session_times')})")
    rows = table_rows(path, encoding)
    header = next(rows, (1, []))[1]
    given = {"session": session_column, "time": time_column, "user": user_column}
    cols = {role: find_column(header, role, name, source=str(path)) for role, name in given.items()}
    missing = [role for role in ("session", "time") if cols[role] is None]
    if missing:
        flags = " / ".join(setting_name(ROLE_FIELDS[m]) for m in missing)
        raise InputFormatError(
            f"{path}: line 1: the session times table ({setting_name('session_times')}) has no "
            f"{' and no '.join(missing)} column in its header {header}; name it with {flags}"
        )
    out: SessionTimes = {}
    first_line: dict = {}
    s_col, t_col, u_col = cols["session"], cols["time"], cols["user"]
    assert s_col is not None and t_col is not None
    kinds = TimeKinds(path, header[t_col])
    for lineno, row in rows:
        if not row or all(not v.strip() for v in row):
            continue
        if len(row) != len(header):
            raise InputFormatError(f"{path}: line {lineno}: {len(row)} fields, but the header has {len(header)}")
        if not row[s_col].strip():
            raise InputFormatError(f"{path}: line {lineno}: empty {header[s_col]!r}")
        session = parse_id(row[s_col], f"{path}: line {lineno}")
        if session in out:
            raise InputFormatError(
                f"{path}: line {lineno}: session {session!r} is listed twice (first on line {first_line[session]})"
            )
        user = row[u_col].strip() or None if u_col is not None else None
        out[session] = (parse_time(path, lineno, row[t_col], header[t_col], kinds), user)
        first_line[session] = lineno
    return out
