"""Merging: :func:`merge_stores` joins the shards of one build (or whole stores) into one store."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .format import StoreError, StoreMismatchError, _first_duplicates, _parse_shard_text
from .reader import IntentStore
from .write import write_store

_MUST_AGREE = (
    "perspectives",
    "text_dim",
    "text_encoder",
    "llm",
    "top_f",
    "prompt_sha256",
    "catalogue_sha256",
    "sessions_source",
    "sessions_sha256",
    "id_kind",
    "dtype",
)


def _check_shard_set(stores: Sequence[IntentStore]) -> None:
    """Either all inputs are whole stores (``shard == ""``), or they are shards ``k/n`` of one ``n`` with
    every ``k`` in ``0..n-1`` exactly once; otherwise :class:`StoreError` naming what is missing or doubled."""
    shards = [_parse_shard_text(s.metadata.shard) for s in stores]
    listing = ", ".join(f"{s.path.name}={s.metadata.shard or '-'}" for s in stores)
    whole = [s.path.name for s, ks in zip(stores, shards, strict=True) if ks is None]
    if len(whole) == len(stores):
        return
    if whole:
        raise StoreError(f"cannot merge: {', '.join(whole)} is not a shard (metadata shard ''), others are ({listing})")
    pairs = [ks for ks in shards if ks is not None]  # all of them: no whole store is left here
    counts = {n for _, n in pairs}
    if len(counts) > 1:
        raise StoreError(f"cannot merge: shard counts differ ({listing})")
    (n,) = counts
    given = [k for k, _ in pairs]
    missing = [k for k in range(n) if k not in given]
    problems = [f"missing shard(s) {missing} of {n}"] if missing else []
    problems += [f"shard {k} given {given.count(k)} times" for k in sorted(set(given)) if given.count(k) > 1]
    if problems:
        raise StoreError(f"cannot merge an incomplete shard set: {'; '.join(problems)} ({listing})")


def merge_stores(paths: Sequence[str | os.PathLike], out_path: str | os.PathLike) -> Path:
    """Join shard stores (same build settings, disjoint session ids) into one store.

    Raises :class:`StoreMismatchError` when shards were built differently, and :class:`StoreError` when
    a session id appears in two shards (naming both files) or the shard set is incomplete
    (:func:`_check_shard_set`).
    """
    if not paths:
        raise StoreError("merge_stores needs at least one input store")
    stores = [IntentStore.open(p, mmap=False) for p in paths]
    _check_shard_set(stores)
    first = stores[0]
    for other in stores[1:]:
        for name in _MUST_AGREE:
            a, b = getattr(first.metadata, name), getattr(other.metadata, name)
            if a != b:
                raise StoreMismatchError(
                    f"cannot merge {other.path} into {first.path}: {name} differs ({b!r} vs {a!r})"
                )
        items_a, items_b = first.item_ids, other.item_ids
        if items_a is None or items_b is None:
            differ = (items_a is None) != (items_b is None)
        else:
            differ = not np.array_equal(items_a, items_b)
        if differ:
            raise StoreMismatchError(f"cannot merge {other.path} into {first.path}: item_ids differ")

    parts = [s.to_arrays() for s in stores]
    all_ids = np.concatenate([p["session_ids"] for p in parts])
    dups = _first_duplicates(all_ids)
    if dups:
        owners = [str(s.path) for s in stores if np.isin(dups, s.session_ids).any()]
        raise StoreError(f"duplicate session ids across shards {owners}: {dups}")

    def joined(key: str) -> dict[str, Any] | None:
        names = set.intersection(*(set(p[key]) for p in parts))
        if not names:
            return None
        if isinstance(parts[0][key][next(iter(names))], list):
            return {n: [t for p in parts for t in p[key][n]] for n in names}
        return {n: np.concatenate([p[key][n] for p in parts]) for n in names}

    intents = joined("intents")
    if intents is None:  # every store holds its perspectives' intents, and they agree (checked above)
        raise StoreError(f"cannot merge: the stores share no intent perspective ({[str(p) for p in paths]})")
    meta = dataclasses.replace(first.metadata, shard="", created_at="")
    meta.extra = {**meta.extra, "merged_from": [Path(p).name for p in paths]}
    return write_store(
        out_path,
        all_ids,
        intents,
        meta,
        dtype=first.metadata.dtype,
        top_items=joined("top_items"),
        top_weights=joined("top_weights"),
        item_ids=parts[0]["item_ids"],
        answers=joined("answers"),
        raw_answers=joined("raw_answers"),
    )
