"""When a protocol's filters leave no session, or a split empty, say which filter, the counts and the flag.

"the valid split is empty (2 sessions survive the filters)" leaves a user guessing which setting to relax;
:func:`require_sessions` and :func:`require_splits` name the rare-item filter (``min_item_count``) with how
many sessions it removed, the shorter-than-two-clicks rule, and the share flags that size each split.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from llm4sbr_adapter.errors import setting_hint, setting_name

from .dataset_files import SPLITS

__all__ = ["filter_summary", "require_sessions", "require_splits"]


def _share_hint(protocol: str, split: str) -> str:
    """The settings that size ``split`` under ``protocol`` (what to change when that split comes out empty),
    spelled as the caller spells them (flags in a command, field names from Python)."""
    if protocol == "temporal":
        return f"change {setting_name('split')} (the {split} share)"
    test, valid = setting_name("test_share"), setting_name("valid_share")
    return {"train": f"lower {test} / {valid}", "valid": f"raise {valid}", "test": f"raise {test}"}[split]


def filter_summary(raw: Sequence[Any], kept: int, min_item_count: int | None, *, iterated: bool = False) -> str:
    """``"148 of 150 sessions removed: 3 shorter than 2 clicks, 145 holding an item seen fewer than 5 times
    (--min-item-count 5)"`` in a command; ``raw`` are the sessions before the filters (objects with ``items``)."""
    short = sum(1 for s in raw if len(s.items) < 2)
    parts = [f"{len(raw) - kept} of {len(raw)} sessions removed"]
    if min_item_count is None or min_item_count <= 1:
        return f"{parts[0]}: shorter than 2 clicks"
    if iterated:
        rule = (
            f"rare items (seen fewer than {min_item_count} times) removed and sessions under 2 clicks dropped, repeated"
        )
        return f"{parts[0]} by the filter ({rule}; {setting_hint('min_item_count', min_item_count)})"
    counts = Counter(item for s in raw for item in s.items)
    rare = sum(1 for s in raw if len(s.items) >= 2 and any(counts[i] < min_item_count for i in s.items))
    return (
        f"{parts[0]}: {short} shorter than 2 clicks, {rare} holding an item seen fewer than {min_item_count} "
        f"times ({setting_hint('min_item_count', min_item_count)})"
    )


def _relax(min_item_count: int | None) -> str:
    keep_all = f"lower {setting_name('min_item_count')} (1 keeps every item)"
    return keep_all if min_item_count and min_item_count > 1 else ""


def require_sessions(
    src: str | os.PathLike,
    raw: Sequence[Any],
    kept: Sequence[Any],
    min_item_count: int | None,
    *,
    iterated: bool = False,
) -> None:
    """``ValueError`` when no session is left after the filters, naming them, the counts and the flag."""
    if kept:
        return
    hint = _relax(min_item_count) or "the sessions are too short (at least 2 clicks are needed)"
    summary = filter_summary(raw, 0, min_item_count, iterated=iterated)
    raise ValueError(f"{src}: no session survives the filters ({summary}); {hint}")


def require_splits(
    src: str | os.PathLike,
    blocks: Sequence[Sequence[Any]],
    raw: Sequence[Any],
    kept: Sequence[Any],
    min_item_count: int | None,
    *,
    protocol: str,
    iterated: bool = False,
) -> None:
    """``ValueError`` naming the first empty split, the filters' counts and the flags that would fill it."""
    for split, block in zip(SPLITS, blocks, strict=True):
        if block:
            continue
        sizes = ", ".join(f"{s} {len(b)}" for s, b in zip(SPLITS, blocks, strict=True))
        hints = " or ".join(h for h in (_relax(min_item_count), _share_hint(protocol, split)) if h)
        raise ValueError(
            f"{src}: the {split} split is empty ({len(kept)} sessions survive the filters: "
            f"{filter_summary(raw, len(kept), min_item_count, iterated=iterated)}; split into {sizes} sessions); "
            f"{hints}"
        )
