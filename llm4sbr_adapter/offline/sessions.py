"""The session and catalogue readers, kept importable under this path; they live in
:mod:`llm4sbr_adapter.offline.inputs.sessions` (with the other readers in :mod:`llm4sbr_adapter.offline.inputs`)."""

from .inputs.sessions import (
    PICKLE_WARNING,
    Catalogue,
    InputFormatError,
    ItemId,
    SessionSet,
    check_unique_ids,
    item_key,
    read_catalogue,
    read_sessions,
)
from .inputs.text import read_text

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
