"""Column names of click logs and catalogues: the user's flag, or a common spelling found in the header.

Names are compared after :func:`normalise_name` (lower case, only letters and digits), so
``session_id``, ``sessionId``, ``SessionID`` and ``session id`` are one name, as are ``item ID``,
``item_id`` and ``itemId``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

from .text import InputFormatError

__all__ = ["COMMON_NAMES", "add_click_log_flags", "find_column", "normalise_name"]

# Spellings tried in this order for each role (YooChoose, Diginetica, RetailRocket, Tmall, MovieLens, Amazon).
COMMON_NAMES: dict[str, tuple[str, ...]] = {
    "session": ("sessionid", "session", "sid", "visitid"),
    "item": ("itemid", "item", "movieid", "productid", "asin", "sku", "iid", "id"),
    "time": ("timestamp", "time", "ts", "eventdate", "eventtime", "datetime", "date", "timeframe"),
    "user": ("userid", "user", "visitorid", "customerid", "uid"),
    "title": ("title", "name", "itemname", "itemtitle", "producttitle", "productname", "movietitle"),
}


def normalise_name(name: str) -> str:
    """``"item ID"`` -> ``"itemid"``: lower case, letters and digits only (a byte-order mark dropped)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def find_column(header: Sequence[str], role: str, given: str | None, *, source: str, flag: str) -> int | None:
    """Index of the ``role`` column in ``header``: the ``given`` name (an error when absent), else the
    first common spelling present, else ``None``."""
    names = [normalise_name(h) for h in header]
    if given is not None:
        want = normalise_name(given)
        if want not in names:
            raise InputFormatError(f"{source}: line 1: no column {given!r} ({flag}); the header has {list(header)}")
        return names.index(want)
    for spelling in COMMON_NAMES[role]:
        if spelling in names:
            return names.index(spelling)
    return None


def add_click_log_flags(p: argparse._ActionsContainer) -> None:
    """A click log's flags, shared by ``prepare_data clicks`` and ``build_store``: the four column names
    (default: a common spelling in the header) and the cut of a log without a session column."""
    for role in ("session", "item", "time", "user"):
        spellings = ", ".join(COMMON_NAMES[role][:4])
        p.add_argument(
            f"--{role}-column",
            metavar="NAME",
            help=f"click log: the {role} column (default: the first of {spellings}, ... in the header, any case, "
            "'_' and spaces ignored)",
        )
    p.add_argument(
        "--log-columns",
        type=lambda text: [name.strip() for name in text.split(",")],
        metavar="NAME,NAME,...",
        help="click log without a header row: its column names in order (YooChoose's clicks.dat: "
        "session_id,timestamp,item_id,category)",
    )
    p.add_argument(
        "--gap",
        type=int,
        metavar="SECONDS",
        help="click log without a session column: a user's new session starts after a gap longer than this "
        "(in the time column's unit)",
    )
    p.add_argument(
        "--window",
        type=int,
        metavar="SECONDS",
        help="click log without a session column: a session = a user's clicks in one fixed clock window of this size",
    )
