"""Writing a store: :func:`write_store` checks every column and writes the file atomically."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..float16_rows import refuse_vanished_rows
from .container import _write_safetensors_atomic
from .format import (
    _VALUE_DTYPES,
    ANSWER_PREFIX,
    FORMAT_NAME,
    FORMAT_VERSION,
    INTENT_PREFIX,
    ITEM_IDS,
    METADATA_KEY,
    OFFSETS_SUFFIX,
    RAW_ANSWER_PREFIX,
    SESSION_IDS,
    TOP_ITEMS_PREFIX,
    TOP_WEIGHTS_PREFIX,
    UTF8_SUFFIX,
    StoreError,
    StoreMetadata,
    _first_duplicates,
    _first_invalid_row,
    _normalise_ids,
    encode_strings,
)

logger = logging.getLogger("llm4sbr_adapter.store")


def write_store(
    path: str | os.PathLike,
    session_ids: Sequence[int] | Sequence[str] | np.ndarray,
    intents: Mapping[str, np.ndarray | torch.Tensor],
    metadata: StoreMetadata,
    *,
    dtype: str = "float32",
    top_items: Mapping[str, np.ndarray | torch.Tensor] | None = None,
    top_weights: Mapping[str, np.ndarray | torch.Tensor] | None = None,
    item_ids: Sequence[int] | Sequence[str] | np.ndarray | None = None,
    answers: Mapping[str, Sequence[str]] | None = None,
    raw_answers: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write an intent store atomically and return its path.

    Args:
        path: output ``.safetensors`` file; its folder is created if needed.
        session_ids: ``[N]`` unique ids, all ints or all strings.
        intents: ``{perspective: [N, text_dim]}`` for every perspective in ``metadata.perspectives``.
        metadata: build description; ``num_sessions``, ``id_kind``, ``dtype`` and (if empty)
            ``created_at`` are filled in here.
        dtype: ``"float32"`` (default) or ``"float16"`` for the intent vectors.
        top_items: optional ``{perspective: int64 [N, f]}`` row indices into ``item_ids``
            (``-1`` where fewer than f items were found).
        top_weights: optional ``{perspective: [N, f]}`` softmax weights matching ``top_items``.
        item_ids: the catalogue's item ids ``[num_items]``; required with ``top_items``.
        answers / raw_answers: optional ``{perspective: [N] str}``: cleaned and raw LLM answers.
    """
    path = Path(path)
    ids, perspectives = _checked_ids_and_perspectives(session_ids, intents, metadata, dtype)
    n = len(ids)
    tensors = _intent_tensors(intents, perspectives, ids, metadata.text_dim, dtype)
    id_tensors, id_kind = _id_tensors(ids)
    tensors.update(id_tensors)
    if top_items is not None:
        tensors.update(_top_item_tensors(top_items, top_weights, item_ids, ids))
    tensors.update(_answer_tensors(answers, raw_answers, n))

    meta = dataclasses.replace(
        metadata,
        perspectives=perspectives,
        num_sessions=n,
        id_kind=id_kind,
        dtype=dtype,
        created_at=metadata.created_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
    )
    StoreMetadata.from_json(meta.to_json(), source=str(path))  # never write what open() would refuse
    _write_safetensors_atomic(path, tensors, {METADATA_KEY: meta.to_json()})
    logger.info("wrote intent store %s (%d sessions, perspectives %s)", path, n, perspectives)
    return path


def _checked_ids_and_perspectives(
    session_ids: Sequence[int] | Sequence[str] | np.ndarray,
    intents: Mapping[str, np.ndarray | torch.Tensor],
    metadata: StoreMetadata,
    dtype: str,
) -> tuple[np.ndarray, list[str]]:
    """The session ids (unique, one kind) and the perspectives (unique, matching ``intents``) of :func:`write_store`."""
    if dtype not in _VALUE_DTYPES:
        raise StoreError(f"dtype must be one of {sorted(_VALUE_DTYPES)}, got {dtype!r}")
    ids = _normalise_ids(session_ids, "session_ids")
    dups = _first_duplicates(ids)
    if dups:
        raise StoreError(f"duplicate session ids: {dups}")
    perspectives = list(metadata.perspectives)
    if not perspectives or len(set(perspectives)) != len(perspectives):
        raise StoreError(f"perspectives must be a non-empty list of unique names, got {perspectives}")
    if set(intents) != set(perspectives):
        raise StoreError(f"intents have perspectives {sorted(intents)}, metadata declares {perspectives}")
    return ids, perspectives


def _intent_tensors(
    intents: Mapping[str, np.ndarray | torch.Tensor], perspectives: list[str], ids: np.ndarray, dim: int, dtype: str
) -> dict[str, np.ndarray]:
    """One ``[N, dim]`` matrix per perspective in the store's ``dtype``, checked for shape and finite values."""
    n, tensors = len(ids), {}
    for name in perspectives:
        value = intents[name]
        vec = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
        if vec.shape != (n, dim):
            raise StoreError(f"intent {name!r} has shape {tuple(vec.shape)}, expected ({n}, {dim})")
        with np.errstate(over="ignore"):  # float16 overflow becomes inf, refused just below
            tensors[INTENT_PREFIX + name] = vec.astype(_VALUE_DTYPES[dtype], copy=False)
        _refuse_non_finite(f"intent {name!r}", tensors[INTENT_PREFIX + name], ids, dtype)
        refuse_vanished_rows(f"intent {name!r}", vec, tensors[INTENT_PREFIX + name], ids, dtype)
    return tensors


def _id_tensors(ids: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
    """The session id tensor(s) and the id kind: ``"str"`` (UTF-8 bytes + offsets) or ``"int"``."""
    if ids.dtype.kind == "U":
        data, offsets = encode_strings(ids.tolist())
        return {SESSION_IDS + UTF8_SUFFIX: data, SESSION_IDS + OFFSETS_SUFFIX: offsets}, "str"
    return {SESSION_IDS: ids}, "int"


def _answer_tensors(
    answers: Mapping[str, Sequence[str]] | None, raw_answers: Mapping[str, Sequence[str]] | None, n: int
) -> dict[str, np.ndarray]:
    """The cleaned and raw answer strings per perspective (UTF-8 bytes + offsets), ``n`` each."""
    tensors = {}
    for prefix, columns in ((ANSWER_PREFIX, answers), (RAW_ANSWER_PREFIX, raw_answers)):
        for name, texts in (columns or {}).items():
            if len(texts) != n:
                raise StoreError(f"{prefix}{name} has {len(texts)} strings, expected {n}")
            tensors[prefix + name + UTF8_SUFFIX], tensors[prefix + name + OFFSETS_SUFFIX] = encode_strings(texts)
    return tensors


def _top_item_tensors(
    top_items: Mapping[str, np.ndarray | torch.Tensor],
    top_weights: Mapping[str, np.ndarray | torch.Tensor] | None,
    item_ids: Sequence[int] | Sequence[str] | np.ndarray | None,
    ids: np.ndarray,
) -> dict[str, np.ndarray]:
    """The catalogue ids and the per-perspective top-f item rows and weights of :func:`write_store`, checked."""
    if item_ids is None:
        raise StoreError("top_items needs item_ids (the catalogue ids its rows index)")
    n, tensors = len(ids), {}
    items = _normalise_ids(item_ids, "item_ids")
    if items.dtype.kind == "U":
        tensors[ITEM_IDS + UTF8_SUFFIX], tensors[ITEM_IDS + OFFSETS_SUFFIX] = encode_strings(items.tolist())
    else:
        tensors[ITEM_IDS] = items
    for name, idx in top_items.items():
        idx = np.asarray(idx.cpu() if isinstance(idx, torch.Tensor) else idx).astype(np.int64)
        if idx.ndim != 2 or idx.shape[0] != n:
            raise StoreError(f"top_items[{name!r}] has shape {idx.shape}, expected ({n}, f)")
        if idx.size and (idx.max() >= len(items) or idx.min() < -1):
            raise StoreError(f"top_items[{name!r}] indexes outside item_ids (0..{len(items) - 1}, or -1)")
        tensors[TOP_ITEMS_PREFIX + name] = idx
        if top_weights is not None and name in top_weights:
            w = top_weights[name]
            w = np.asarray(w.cpu() if isinstance(w, torch.Tensor) else w, dtype=np.float32)
            if w.shape != idx.shape:
                raise StoreError(f"top_weights[{name!r}] has shape {w.shape}, top_items {idx.shape}")
            _refuse_non_finite(f"top_weights[{name!r}]", w, ids, "float32")
            tensors[TOP_WEIGHTS_PREFIX + name] = w
    return tensors


def _refuse_non_finite(what: str, values: np.ndarray, ids: np.ndarray, dtype: str) -> None:
    """Raise naming the first row (and its session id) holding NaN or inf, after the cast to ``dtype``."""
    row = _first_invalid_row(values, np.isfinite)
    if row is not None:
        limit = f" (float16 holds at most {float(np.finfo(np.float16).max):g})" if dtype == "float16" else ""
        raise StoreError(f"{what} row {row} (session id {ids[row].item()!r}) is NaN or inf as {dtype}{limit}")
