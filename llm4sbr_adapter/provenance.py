"""Files shown beside a store checked against the store's provenance (:func:`check_beside_store`).

A store records the sha256 of the sessions file its ids refer to (``sessions_sha256``) and of its
catalogue (``catalogue_sha256``). A sessions file or catalogue shown next to it (``inspect_store
--sessions/--items``) with another hash would print another split's items or another catalogue's
titles as if they were the store's: that is an error, or, when the caller asked for it explicitly
(``allow_mismatch``), one warning line. A store that records no hash cannot be checked; that is one
warning line too.
"""

from __future__ import annotations

import logging
import os

from .errors import Llm4sbrError, flag_or_name

__all__ = ["ProvenanceError", "check_beside_store"]

logger = logging.getLogger(__name__)


class ProvenanceError(Llm4sbrError, ValueError):
    """A file shown beside a store is not the one the store was built from."""


def check_beside_store(
    store_path: str | os.PathLike,
    recorded: str,
    given: str,
    *,
    what: str,
    label: str,
    source: str,
    allow_mismatch: bool = False,
) -> None:
    """Compare the sha256 a store ``recorded`` for ``what`` (``"sessions"``, ``"catalogue"``) with the
    sha256 of the file ``source`` given as ``label``; raise :class:`ProvenanceError` on a mismatch unless
    ``allow_mismatch`` (then log one warning)."""
    flag = flag_or_name("allow_mismatch", "--allow-mismatch")
    if not recorded:
        logger.warning("%s records no %s_sha256: %s %s cannot be checked against it", store_path, what, label, source)
        return
    if recorded == given:
        return
    message = (
        f"{label} {source} (sha256 {given[:12]}) is not the {what} {store_path} was built from (sha256 {recorded[:12]})"
    )
    if not allow_mismatch:
        raise ProvenanceError(f"{message}: pass the build's file, or {flag} to show it anyway")
    logger.warning("%s; shown anyway (%s)", message, flag)
