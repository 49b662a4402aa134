"""Column names of click logs and catalogues: the user's flag, or a common spelling found in the header.

Names are compared after :func:`normalise_name` (lower case, only letters and digits), so
``session_id``, ``sessionId``, ``SessionID`` and ``session id`` are one name, as are ``item ID``,
``item_id`` and ``itemId``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from ...config import ConfigBase, setting
from ...errors import setting_hint
from .text import InputFormatError

__all__ = ["COMMON_NAMES", "ROLE_FIELDS", "ClickLogConfig", "find_column", "normalise_name"]

# Spellings tried in this order for each role (YooChoose, Diginetica, RetailRocket, Tmall, MovieLens, Amazon).
COMMON_NAMES: dict[str, tuple[str, ...]] = {
    "session": ("sessionid", "session", "sid", "visitid"),
    "item": ("itemid", "item", "movieid", "productid", "asin", "sku", "iid", "id"),
    "time": ("timestamp", "time", "ts", "eventdate", "eventtime", "datetime", "date", "timeframe"),
    "user": ("userid", "user", "visitorid", "customerid", "uid"),
    "title": ("title", "name", "itemname", "itemtitle", "producttitle", "productname", "movietitle"),
}
# The ClickLogConfig field that names each role's column.
ROLE_FIELDS = {"session": "session_column", "item": "item_column", "time": "time_column", "user": "user_column"}


def normalise_name(name: str) -> str:
    """``"item ID"`` -> ``"itemid"``: lower case, letters and digits only (a byte-order mark dropped)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def find_column(header: Sequence[str], role: str, given: str | None, *, source: str) -> int | None:
    """Index of the ``role`` column in ``header``: the ``given`` name (an error when absent, naming the
    setting that gave it), else the first common spelling present, else ``None``."""
    names = [normalise_name(h) for h in header]
    if given is not None:
        want = normalise_name(given)
        if want not in names:
            hint = setting_hint(ROLE_FIELDS[role], given)
            raise InputFormatError(f"{source}: line 1: no column {given!r} ({hint}); the header has {list(header)}")
        return names.index(want)
    for spelling in COMMON_NAMES[role]:
        if spelling in names:
            return names.index(spelling)
    return None


def _names(text: str) -> tuple[str, ...]:
    """``"a, b,c"`` -> ``("a", "b", "c")``."""
    return tuple(name.strip() for name in text.split(","))


def _column(role: str) -> str:
    spellings = ", ".join(COMMON_NAMES[role][:4])
    return (
        f"click log: the {role} column (default: the first of {spellings}, ... in the header, any case, "
        "'_' and spaces ignored)"
    )


_GROUP = "click logs"


@dataclasses.dataclass
class ClickLogConfig(ConfigBase):
    """How a one-click-per-row log is read: its column names (default: a common spelling found in the
    header) and the cut of a log without a session column. A build holds one (``BuildConfig.click_log``);
    so does ``prepare_data clicks``; the flags are the field names (``--session-column``, ``--gap``, ...)."""

    FORMAT: ClassVar[str] = "llm4sbr_click_log_config"

    session_column: str | None = setting(None, _column("session"), metavar="NAME", group=_GROUP)
    item_column: str | None = setting(None, _column("item"), metavar="NAME", group=_GROUP)
    time_column: str | None = setting(None, _column("time"), metavar="NAME", group=_GROUP)
    user_column: str | None = setting(None, _column("user"), metavar="NAME", group=_GROUP)
    log_columns: tuple[str, ...] | None = setting(
        None,
        "click log without a header row: its column names in order (YooChoose's clicks.dat: "
        "session_id,timestamp,item_id,category)",
        parse=_names,
        metavar="NAME,NAME,...",
        group=_GROUP,
    )
    session_times: str | None = setting(
        None,
        "click log whose sessions' times live in another table: that table (CSV/TSV/Parquet with a header: "
        "a session column, a time column, optionally a user column, found like the log's); every click takes "
        "its session's time (clicks keep their file order) and, when the log has no user column, its user",
        metavar="PATH",
        group=_GROUP,
    )
    gap: int | None = setting(
        None,
        "click log without a session column: a user's new session starts after a gap longer than this "
        "(in the time column's unit)",
        metavar="SECONDS",
        group=_GROUP,
    )
    window: int | None = setting(
        None,
        "click log without a session column: a session = a user's clicks in one fixed clock window of this size",
        metavar="SECONDS",
        group=_GROUP,
    )

    def columns(self) -> dict[str, Any]:
        """The columns as :func:`~.clicks.read_click_log_with` takes them (roles, ``names`` and ``session_times``)."""
        out: dict[str, Any] = {role: getattr(self, field) for role, field in ROLE_FIELDS.items()}
        out["names"] = None if self.log_columns is None else list(self.log_columns)
        out["session_times"] = self.session_times
        return out

    def is_default(self) -> bool:
        """No column named and no cut: the log's columns must have common names."""
        return self == ClickLogConfig()
