"""Column names of click logs and catalogues: the user's flag, or a common spelling found in the header.

Names are compared after :func:`normalise_name` (lower case, only letters and digits), so
``session_id``, ``sessionId``, ``SessionID`` and ``session id`` are one name, as are ``item ID``,
``item_id`` and ``itemId``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .text import InputFormatError

__all__ = ["COMMON_NAMES", "find_column", "normalise_name"]

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
