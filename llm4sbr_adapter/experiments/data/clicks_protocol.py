"""Any one-click-per-row log (YooChoose, Diginetica, RetailRocket, Tmall, your own) under either protocol.

The log is read by :func:`llm4sbr_adapter.offline.inputs.clicks.read_click_log` (CSV/TSV/Parquet,
columns by name or common spelling) and cut into sessions by
:func:`~llm4sbr_adapter.offline.inputs.clicks.click_sessions` (its session column, or each user's
clicks cut by a gap or clock window). Titles come from an
optional catalogue (:func:`~llm4sbr_adapter.offline.inputs.sessions.read_catalogue`).

* ``paper``: as the authors' protocol does for Beauty and ML-1M, split **by user**: sessions holding an
  item seen fewer than ``min_item_count`` times dropped whole (one pass), then sessions shorter than 2;
  users (the session id when the log has no user column) in a seeded random order; the last
  ``test_share`` of the sessions is test (cut at a user boundary), a seeded ``valid_share`` of the
  remaining users validation.
* ``temporal``: split **by time**: rare items removed and short sessions dropped until stable; sessions
  ordered by their last (or first) click and cut into train / valid / test by ``shares``.

Rows: ``prefixes`` (SR-GNN's augmentation: every prefix predicts its next click, the usual choice for
click logs) or ``last`` (one row per session: all clicks but the last predict the last).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from llm4sbr_adapter.offline.inputs.catalogue import read_catalogue
from llm4sbr_adapter.offline.inputs.clicks import click_sessions, read_click_log_with
from llm4sbr_adapter.offline.inputs.ids import _parse_id, item_key

from .paper_protocol import drop_sessions_with_rare_items, user_split, write_session_split
from .split_checks import require_sessions, require_splits
from .temporal_protocol import chronological_split, filter_sessions

__all__ = ["prepare_clicks", "read_clicks_with_titles"]


def read_clicks_with_titles(
    src: str | os.PathLike,
    items: str | os.PathLike | None,
    *,
    columns: dict[str, Any] | None = None,
    encoding: str = "utf-8",
    items_header: bool | None = None,
):
    """The click log of ``src`` with the titles of the ``items`` catalogue (none when ``items`` is ``None``)."""
    log = read_click_log_with(src, columns, encoding=encoding)
    if items is not None:
        catalogue = read_catalogue(items, encoding=encoding, header=items_header)
        log.titles = {
            _parse_id(item_key(i)): t for i, t in zip(catalogue.item_ids.tolist(), catalogue.titles, strict=True)
        }
    return log


def _described(has_sessions: bool, gap: int | None, window: int | None, min_count: int, rows: str, raw: int) -> dict:
    """The part of stats.json's protocol description that both protocols share."""
    return {
        "session": "the log's session column"
        if has_sessions
        else (f"a user's clicks cut at gaps > {gap}" if gap is not None else f"clock windows of {window}"),
        "min_item_count": min_count,
        "rows": "every prefix -> next click" if rows == "prefixes" else "all clicks but the last -> the last",
        "raw_sessions": raw,
    }


def prepare_clicks(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    items: str | os.PathLike | None = None,
    columns: dict[str, Any] | None = None,
    encoding: str = "utf-8",
    items_header: bool | None = None,
    gap: int | None = None,
    window: int | None = None,
    protocol: str = "temporal",
    rows: str = "prefixes",
    min_item_count: int = 5,
    test_share: float = 0.1,
    valid_share: float = 0.1,
    seed: int = 0,
    shares: Sequence[float] = (0.7, 0.1, 0.2),
    split_key: str = "end",
) -> dict:
    """Prepare a click log (module docstring) into ``out``; returns the statistics (Table 1)."""
    if rows not in ("prefixes", "last"):
        raise ValueError(f"rows must be 'prefixes' or 'last', got {rows!r}")
    log = read_clicks_with_titles(src, items, columns=columns, encoding=encoding, items_header=items_header)
    raw = sessions = click_sessions(log, gap=gap, window=window)
    raw_sessions = len(sessions)
    described = _described(log.sessions is not None, gap, window, min_item_count, rows, raw_sessions)
    if protocol == "paper":
        sessions = drop_sessions_with_rare_items(sessions, min_item_count=min_item_count)
        require_sessions(src, raw, sessions, min_item_count)
        blocks = user_split(sessions, test_share=test_share, valid_share=valid_share, seed=seed, shuffle_users=True)
        described |= {
            "filter": "sessions holding a rarer item dropped whole, one pass; then length < 2 dropped",
            "user_order": f"random permutation, numpy default_rng({seed})",
            "test_share": test_share,
            "valid_share_of_train_users": valid_share,
        }
    elif protocol == "temporal":
        sessions = filter_sessions(sessions, min_item_count=min_item_count)
        require_sessions(src, raw, sessions, min_item_count, iterated=True)
        blocks = chronological_split(sessions, shares, key=split_key)
        described |= {"filter": "rarer items and sessions < 2 removed until stable", "split_shares": list(shares)}
        described["split_key"] = split_key
    else:
        raise ValueError(f"protocol must be 'paper' or 'temporal', got {protocol!r}")
    require_splits(src, blocks, raw, sessions, min_item_count, protocol=protocol, iterated=protocol == "temporal")
    return write_session_split(
        src,
        out,
        log,
        blocks,
        dataset="clicks",
        augment=rows == "prefixes",
        protocol=described,
        protocol_name=protocol,
    )
