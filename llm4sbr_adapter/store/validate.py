"""The checks a store passes when it is opened: the layout its header promises, then the values.

:func:`check_layout` reads only the header (every tensor the metadata implies is present with its
documented dtype and shape); :func:`check_values` scans what the header cannot vouch for (finite
intents and weights, top items inside the catalogue, valid string offsets, unique session ids).
Both raise a one-line :class:`~llm4sbr_adapter.store.StoreError` naming the file and the tensor.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .format import (
    _ST_DTYPES,
    _VALUE_DTYPES,
    ANSWER_PREFIX,
    INTENT_PREFIX,
    ITEM_IDS,
    OFFSETS_SUFFIX,
    RAW_ANSWER_PREFIX,
    SESSION_IDS,
    TOP_ITEMS_PREFIX,
    TOP_WEIGHTS_PREFIX,
    UTF8_SUFFIX,
    StoreError,
    StoreMetadata,
    _first_invalid_row,
)

__all__ = ["OpenedStore", "check_layout", "check_offsets", "check_values"]


@dataclass(frozen=True)
class OpenedStore:
    """What the checks read of a store being opened: its file, parsed header and metadata, and a tensor getter."""

    path: Path
    header: Mapping[str, Any]
    metadata: StoreMetadata
    tensor: Callable[[str], np.ndarray]


def _item_rows_in_catalogue(rows: np.ndarray, num_items: int) -> np.ndarray:
    """Top-f catalogue rows that are valid: ``-1`` (none) or ``0 .. num_items - 1``."""
    return (rows >= -1) & (rows < num_items)


# --------------------------------------------------------------------------- layout (the header only)
def check_layout(store: OpenedStore) -> int | None:
    """Every tensor the metadata implies is present with its documented dtype and shape; returns the
    catalogue size ``M`` (``None`` without ``item_ids``)."""
    meta, n = store.metadata, store.metadata.num_sessions
    for name in meta.perspectives:
        _check_intent_layout(store, name)
    if meta.id_kind == "int":
        _expect(store, SESSION_IDS, ("I64",), [n], "num_sessions from the metadata, id_kind 'int'")
    else:
        _expect_strings(store, SESSION_IDS, n)
    num_items = _check_item_layout(store)
    for name in meta.perspectives:
        _check_explanation_layout(store, name, num_items)
    return num_items


def _check_intent_layout(store: OpenedStore, perspective: str) -> None:
    """``intent.<p>`` exists as ``[num_sessions, text_dim]`` of the metadata's ``dtype``."""
    name, meta = INTENT_PREFIX + perspective, store.metadata
    if name not in store.header:
        raise StoreError(f"{store.path}: metadata lists perspective {perspective!r} but tensor {name!r} is missing")
    _expect(
        store, name, ("F32", "F16"), [meta.num_sessions, meta.text_dim], "num_sessions x text_dim from the metadata"
    )
    code = _ST_DTYPES[np.dtype(_VALUE_DTYPES[meta.dtype]).str]
    if store.header[name]["dtype"] != code:
        raise StoreError(
            f"{store.path}: tensor {name!r} is {store.header[name]['dtype']}, "
            f"but metadata field 'dtype' says {meta.dtype!r} ({code})"
        )


def _check_item_layout(store: OpenedStore) -> int | None:
    """``item_ids`` as ``I64 [M]`` or as a string column (not both); returns ``M``."""
    has_int = ITEM_IDS in store.header
    has_str = any(ITEM_IDS + s in store.header for s in (UTF8_SUFFIX, OFFSETS_SUFFIX))
    if has_int and has_str:
        raise StoreError(
            f"{store.path}: tensor {ITEM_IDS!r} and string column {ITEM_IDS + UTF8_SUFFIX!r} "
            "both present (one catalogue, one form)"
        )
    if has_int:
        _expect(store, ITEM_IDS, ("I64",), [None])
        return int(store.header[ITEM_IDS]["shape"][0])
    return _expect_strings(store, ITEM_IDS, None) if has_str else None


def _check_explanation_layout(store: OpenedStore, name: str, num_items: int | None) -> None:
    """``top_items.<p>`` ``I64 [N, f]`` (needs ``item_ids``), ``top_weights.<p>`` ``F32`` of the same shape
    (needs ``top_items.<p>``), answer columns of ``N`` strings."""
    top, weights = TOP_ITEMS_PREFIX + name, TOP_WEIGHTS_PREFIX + name
    header = store.header
    if top in header:
        if num_items is None:
            raise StoreError(
                f"{store.path}: tensor {top!r} needs the catalogue ids (tensor {ITEM_IDS!r} or string "
                f"column {ITEM_IDS + UTF8_SUFFIX!r}), which are missing"
            )
        _expect(store, top, ("I64",), [store.metadata.num_sessions, None])
    if weights in header:
        if top not in header:
            raise StoreError(f"{store.path}: tensor {weights!r} without tensor {top!r}")
        _expect(store, weights, ("F32",), list(header[top]["shape"]), f"the shape of {top!r}")
    for prefix in (ANSWER_PREFIX, RAW_ANSWER_PREFIX):
        if any(prefix + name + s in header for s in (UTF8_SUFFIX, OFFSETS_SUFFIX)):
            _expect_strings(store, prefix + name, store.metadata.num_sessions)


def _expect(store: OpenedStore, name: str, dtypes: tuple[str, ...], shape: list[int | None], why: str = "") -> None:
    """Tensor ``name`` exists with one of ``dtypes`` and ``shape`` (``None`` = any length)."""
    info = store.header.get(name)
    if info is None:
        raise StoreError(f"{store.path}: tensor {name!r} is missing")
    fits = len(info["shape"]) == len(shape) and all(
        w is None or w == d for w, d in zip(shape, info["shape"], strict=True)
    )
    if info["dtype"] not in dtypes or not fits:
        wanted = "[" + ", ".join("*" if w is None else str(w) for w in shape) + "]"
        raise StoreError(
            f"{store.path}: tensor {name!r} is {info['dtype']} {info['shape']}, expected "
            f"{' or '.join(dtypes)} {wanted}" + (f" ({why})" if why else "")
        )


def _expect_strings(store: OpenedStore, base: str, count: int | None) -> int:
    """A string column ``base``: ``U8 [bytes]`` + ``I64 [count + 1]`` offsets; returns its length."""
    _expect(store, base + UTF8_SUFFIX, ("U8",), [None])
    _expect(store, base + OFFSETS_SUFFIX, ("I64",), [None if count is None else count + 1])
    length = int(store.header[base + OFFSETS_SUFFIX]["shape"][0]) - 1
    if length < 0:
        raise StoreError(f"{store.path}: tensor {base + OFFSETS_SUFFIX!r} is empty (needs count + 1 offsets)")
    return length


# --------------------------------------------------------------------------- values (a scan of the data)
def check_values(
    store: OpenedStore,
    ids: np.ndarray,
    sorted_ids: np.ndarray,
    intents: Mapping[str, np.ndarray],
    num_items: int | None,
) -> None:
    """Scan the values the header cannot vouch for: finite intents and weights, top items inside the
    catalogue, valid string offsets, unique session ids.

    A full scan at open, rather than per looked-up row: it costs one sequential pass over the file
    (0.07 s for a 435 MB store in the page cache, a cold read at disk speed; 64 MiB chunks keep memory
    flat with ``mmap``), while a NaN met at lookup time would already have poisoned a batch's loss,
    far from its cause, and a per-lookup check would cost every training step.
    """
    _check_unique_ids(store, sorted_ids)
    if num_items is not None and ITEM_IDS not in store.header:
        check_offsets(store, ITEM_IDS)
    rows = functools.partial(_check_rows, store, ids)
    for name in store.metadata.perspectives:
        rows(INTENT_PREFIX + name, intents[name], np.isfinite, "holds NaN or inf")
        if TOP_WEIGHTS_PREFIX + name in store.header:
            rows(TOP_WEIGHTS_PREFIX + name, store.tensor(TOP_WEIGHTS_PREFIX + name), np.isfinite, "holds NaN or inf")
        if TOP_ITEMS_PREFIX + name in store.header:
            m = num_items or 0  # never None here: the layout check needs item ids beside top_items
            rows(
                TOP_ITEMS_PREFIX + name,
                store.tensor(TOP_ITEMS_PREFIX + name),
                functools.partial(_item_rows_in_catalogue, num_items=m),
                f"holds an item index outside the catalogue of {m} items (0..{m - 1}, or -1 for none)",
            )
        for prefix in (ANSWER_PREFIX, RAW_ANSWER_PREFIX):
            if prefix + name + UTF8_SUFFIX in store.header:
                check_offsets(store, prefix + name)


def _check_rows(
    store: OpenedStore,
    ids: np.ndarray,
    name: str,
    arr: np.ndarray,
    valid: Callable[[np.ndarray], np.ndarray],
    problem: str,
) -> None:
    """Raise naming the first row of tensor ``name`` (``arr``) where ``valid`` is not all true."""
    row = _first_invalid_row(arr, valid)
    if row is not None:
        values = np.asarray(arr[row])
        bad = values[~valid(values)][0].item()
        raise StoreError(f"{store.path}: tensor {name!r} row {row} (session id {ids[row].item()!r}) {problem}: {bad!r}")


def check_offsets(store: OpenedStore, base: str) -> None:
    """Offsets of a string column start at 0, never decrease and end at the byte count."""
    offsets = np.asarray(store.tensor(base + OFFSETS_SUFFIX))
    total = store.header[base + UTF8_SUFFIX]["shape"][0]
    if offsets[0] != 0 or offsets[-1] != total or (np.diff(offsets) < 0).any():
        raise StoreError(
            f"{store.path}: tensor {base + OFFSETS_SUFFIX!r} is not a valid string column: "
            f"offsets must start at 0, never decrease, and end at {total} "
            f"(the bytes of {base + UTF8_SUFFIX!r})"
        )


def _check_unique_ids(store: OpenedStore, sorted_ids: np.ndarray) -> None:
    """Session ids are unique (a second row with the same id could never be looked up)."""
    same = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if same.size:
        name = SESSION_IDS if store.metadata.id_kind == "int" else SESSION_IDS + UTF8_SUFFIX
        raise StoreError(
            f"{store.path}: tensor {name!r} holds session id {sorted_ids[same[0]].item()!r} "
            "more than once (session ids must be unique)"
        )
