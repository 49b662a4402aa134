"""Reading a store: :class:`IntentStore` maps the file, checks it on open and looks batches of ids up."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import torch

from .container import _map_tensor, _read_safetensors_header
from .format import (
    ANSWER_PREFIX,
    INTENT_PREFIX,
    ITEM_IDS,
    METADATA_KEY,
    OFFSETS_SUFFIX,
    RAW_ANSWER_PREFIX,
    SESSION_IDS,
    TOP_ITEMS_PREFIX,
    TOP_WEIGHTS_PREFIX,
    UTF8_SUFFIX,
    MissingPolicy,
    StoreError,
    StoreMetadata,
    StoreMismatchError,
    decode_strings,
)
from .validate import OpenedStore, check_layout, check_offsets, check_values


class IntentStore:
    """A read-only, memory-mapped intent store.

    Open one with :meth:`open`; look up a batch with :meth:`lookup`::

        store = IntentStore.open("intents.safetensors", perspectives=["long", "short"], text_dim=384)
        vecs = store.lookup(torch.tensor([3, 17, 5]), device="cuda")  # {"long": [3, 384], "short": [3, 384]}
    """

    def __init__(self, path: Path, header: dict[str, Any], data_start: int, mmap: bool) -> None:
        self.path = path
        self._header = header
        self._data_start = data_start
        self._mmap = mmap
        raw_meta = header.get("__metadata__", {}).get(METADATA_KEY)  # a str->str map: _check_header
        if raw_meta is None:
            raise StoreError(f"{path}: a safetensors file, but not an intent store (no {METADATA_KEY!r} metadata)")
        self.metadata = StoreMetadata.from_json(raw_meta, source=str(path))
        self._opened = OpenedStore(path, header, self.metadata, self._tensor)
        self._num_items = check_layout(self._opened)
        self._intents = {p: self._tensor(INTENT_PREFIX + p) for p in self.metadata.perspectives}
        self._ids = self._load_ids(SESSION_IDS, self.metadata.id_kind)
        # Sorted view for vectorised lookup with np.searchsorted (ints and numpy unicode alike).
        self._order = np.argsort(self._ids, kind="stable")
        self._sorted_ids = self._ids[self._order]
        check_values(self._opened, self._ids, self._sorted_ids, self._intents, self._num_items)

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        perspectives: Iterable[str] | None = None,
        text_dim: int | None = None,
        num_sessions: int | None = None,
        catalogue_sha256: str | None = None,
        sessions_sha256: str | None = None,
        text_encoder: str | None = None,
        mmap: bool = True,
    ) -> IntentStore:
        """Open a store and check it against what the caller declares.

        Each keyword left as ``None`` is not checked. ``perspectives`` must be a subset of the
        store's perspectives (a model may use fewer than were built). A mismatch raises
        :class:`StoreMismatchError` naming the field, the expected and the stored value.
        With ``mmap=True`` (default) intent rows are read from disk only when looked up.
        """
        path = Path(path)
        header, data_start = _read_safetensors_header(path)
        store = cls(path, header, data_start, mmap)
        store.validate(
            perspectives=perspectives,
            text_dim=text_dim,
            num_sessions=num_sessions,
            catalogue_sha256=catalogue_sha256,
            sessions_sha256=sessions_sha256,
            text_encoder=text_encoder,
        )
        return store

    def validate(self, **expected: Any) -> None:
        """Raise :class:`StoreMismatchError` for the first declared field that differs."""
        meta = self.metadata
        problems = []
        want = expected.get("perspectives")
        if want is not None:
            missing = [p for p in want if p not in meta.perspectives]
            if missing:
                problems.append(
                    f"perspectives: expected {list(want)}, store has {meta.perspectives} (missing {missing})"
                )
        for name in ("text_dim", "num_sessions", "catalogue_sha256", "sessions_sha256", "text_encoder"):
            value = expected.get(name)
            if value is not None and getattr(meta, name) != value:
                problems.append(f"{name}: expected {value!r}, store has {getattr(meta, name)!r}")
        if problems:
            raise StoreMismatchError(f"{self.path}: store does not match: " + "; ".join(problems))

    # ---- helpers ---------------------------------------------------------------------
    def _tensor(self, name: str) -> np.ndarray:
        return _map_tensor(self.path, self._header, self._data_start, name, self._mmap)

    def _load_ids(self, base: str, kind: str) -> np.ndarray:
        """Ids stored as ``I64`` tensor ``base`` (``kind == "int"``) or as string column ``base``."""
        if kind == "int":
            return np.asarray(self._tensor(base), dtype=np.int64)
        check_offsets(self._opened, base)
        try:
            return np.asarray(decode_strings(self._tensor(base + UTF8_SUFFIX), self._tensor(base + OFFSETS_SUFFIX)))
        except UnicodeDecodeError as err:
            raise StoreError(
                f"{self.path}: tensor {base + UTF8_SUFFIX!r} is not valid UTF-8 ({err.reason} at byte {err.start})"
            ) from None

    def _strings(self, base: str) -> list[str] | None:
        if base + UTF8_SUFFIX not in self._header:
            return None
        return decode_strings(self._tensor(base + UTF8_SUFFIX), self._tensor(base + OFFSETS_SUFFIX))

    # ---- properties --------------------------------------------------------------------
    @property
    def perspectives(self) -> list[str]:
        return list(self.metadata.perspectives)

    @property
    def text_dim(self) -> int:
        return int(self.metadata.text_dim)

    @property
    def num_sessions(self) -> int:
        return len(self._ids)

    @property
    def session_ids(self) -> np.ndarray:
        """``[N]`` ids in row order (``int64`` or numpy unicode)."""
        return self._ids

    def __len__(self) -> int:
        return self.num_sessions

    def __contains__(self, session_id: object) -> bool:
        return bool(self.rows([session_id])[1][0])

    def __repr__(self) -> str:
        return (
            f"IntentStore({str(self.path)!r}, sessions={self.num_sessions}, "
            f"perspectives={self.perspectives}, text_dim={self.text_dim}, dtype={self.metadata.dtype})"
        )

    def vectors(self, perspective: str) -> np.ndarray:
        """The whole ``[N, text_dim]`` matrix of one perspective (memory-mapped when opened so)."""
        return self._intents[perspective]

    # ---- lookup ------------------------------------------------------------------------
    def rows(self, session_ids: Sequence | np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Row index ``int64 [B]`` and found mask ``bool [B]`` for a batch of ids (vectorised).

        Rows of ids that are not in the store are 0; check the mask.
        """
        if isinstance(session_ids, torch.Tensor):
            session_ids = session_ids.detach().cpu().numpy()
        query = np.asarray(session_ids)
        if query.ndim != 1:
            query = query.reshape(-1)
        if self._ids.dtype.kind == "U":
            if query.dtype.kind not in "UO":
                raise TypeError(f"{self.path}: store has string session ids, got ids of dtype {query.dtype}")
            query = query.astype(str)
        else:
            if query.dtype.kind not in "iu":
                if query.size == 0:
                    query = query.astype(np.int64)
                else:
                    raise TypeError(f"{self.path}: store has integer session ids, got ids of dtype {query.dtype}")
            query = query.astype(np.int64, copy=False)
        n = len(self._sorted_ids)
        pos = np.searchsorted(self._sorted_ids, query)
        clipped = np.minimum(pos, max(n - 1, 0))
        found = (pos < n) & (self._sorted_ids[clipped] == query) if n else np.zeros(len(query), bool)
        rows = np.where(found, self._order[clipped] if n else 0, 0).astype(np.int64)
        return rows, found

    @overload
    def lookup(
        self,
        session_ids: Sequence | np.ndarray | torch.Tensor,
        *,
        perspectives: Iterable[str] | None = ...,
        device: torch.device | str | None = ...,
        dtype: torch.dtype | None = ...,
        missing: MissingPolicy = ...,
        return_found: Literal[False] = ...,
    ) -> dict[str, torch.Tensor]: ...

    @overload
    def lookup(
        self,
        session_ids: Sequence | np.ndarray | torch.Tensor,
        *,
        perspectives: Iterable[str] | None = ...,
        device: torch.device | str | None = ...,
        dtype: torch.dtype | None = ...,
        missing: MissingPolicy = ...,
        return_found: Literal[True],
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]: ...

    def lookup(
        self,
        session_ids: Sequence | np.ndarray | torch.Tensor,
        *,
        perspectives: Iterable[str] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        missing: MissingPolicy = "raise",
        return_found: bool = False,
    ) -> dict[str, torch.Tensor] | tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Intent vectors for a batch: ``{perspective: tensor[B, text_dim]}``.

        Args:
            session_ids: ``[B]`` ids (list, numpy array or tensor), same kind as the store's.
            perspectives: subset to return (default: all).
            device, dtype: where and as what to return the tensors (default: CPU, stored dtype).
            missing: ``"raise"`` (default) raises ``KeyError`` naming the first missing ids;
                ``"zeros"`` returns zero vectors for them. To substitute a learned vector, use
                ``"zeros"`` with ``return_found=True`` (as :class:`IntentEnhancer` does).
            return_found: also return the ``bool [B]`` mask of ids that were found.
        """
        rows, found = self.rows(session_ids)
        if missing not in ("raise", "zeros"):
            raise ValueError(f"missing must be 'raise' or 'zeros', got {missing!r}")
        if missing == "raise" and not found.all():
            query = np.asarray(session_ids.cpu() if isinstance(session_ids, torch.Tensor) else session_ids).reshape(-1)
            absent = query[~found]
            raise KeyError(
                f"{len(absent)} of {len(query)} session ids are not in intent store {self.path}: "
                f"{absent[:5].tolist()}{' ...' if len(absent) > 5 else ''} "
                "(pass missing='zeros' to use zero vectors, or the enhancer's missing='learned')"
            )
        names = list(perspectives) if perspectives is not None else self.metadata.perspectives
        out: dict[str, torch.Tensor] = {}
        found_t = torch.from_numpy(found)
        for name in names:
            if name not in self._intents:
                raise KeyError(f"perspective {name!r} is not in store {self.path} (has {self.perspectives})")
            block = torch.from_numpy(np.array(self._intents[name][rows]))  # fancy index copies only B rows
            if not found.all():
                block[~found_t] = 0
            out[name] = block.to(device=device, dtype=dtype) if (device or dtype) else block
        if return_found:
            return out, found_t.to(device) if device else found_t
        return out

    # ---- explanations ------------------------------------------------------------------
    @property
    def item_ids(self) -> np.ndarray | None:
        """The catalogue ids ``[M]`` that ``top_items`` rows index, or ``None`` when the store has none."""
        if self._num_items is None:
            return None
        return self._load_ids(ITEM_IDS, "int" if ITEM_IDS in self._header else "str")

    def explain(self, session_id: int | str) -> dict[str, dict[str, Any]]:
        """For one session: per perspective its answer, raw answer, and the top-f items with weights."""
        rows, found = self.rows([session_id])
        if not found[0]:
            raise KeyError(f"session id {session_id!r} is not in intent store {self.path}")
        row = int(rows[0])
        items = self.item_ids
        out: dict[str, dict[str, Any]] = {}
        for name in self.metadata.perspectives:
            entry: dict[str, Any] = {}
            for key, prefix in (("answer", ANSWER_PREFIX), ("raw_answer", RAW_ANSWER_PREFIX)):
                base = prefix + name
                if base + UTF8_SUFFIX in self._header:
                    offs = self._tensor(base + OFFSETS_SUFFIX)
                    data = self._tensor(base + UTF8_SUFFIX)
                    entry[key] = bytes(np.asarray(data[offs[row] : offs[row + 1]])).decode("utf-8")
            if TOP_ITEMS_PREFIX + name in self._header and items is not None:
                idx = np.asarray(self._tensor(TOP_ITEMS_PREFIX + name)[row])
                keep = idx >= 0
                entry["top_items"] = items[idx[keep]].tolist()
                if TOP_WEIGHTS_PREFIX + name in self._header:
                    entry["top_weights"] = np.asarray(self._tensor(TOP_WEIGHTS_PREFIX + name)[row])[keep].tolist()
            out[name] = entry
        return out

    def to_arrays(self) -> dict[str, Any]:
        """Everything in the store as in-memory arrays (used by :func:`merge_stores`)."""
        out: dict[str, Any] = {
            "session_ids": np.array(self._ids),
            "intents": {p: np.array(v) for p, v in self._intents.items()},
            "item_ids": self.item_ids,
            "top_items": {},
            "top_weights": {},
            "answers": {},
            "raw_answers": {},
        }
        for name in self.metadata.perspectives:
            for key, prefix in (("top_items", TOP_ITEMS_PREFIX), ("top_weights", TOP_WEIGHTS_PREFIX)):
                if prefix + name in self._header:
                    out[key][name] = np.array(self._tensor(prefix + name))
            for key, prefix in (("answers", ANSWER_PREFIX), ("raw_answers", RAW_ANSWER_PREFIX)):
                texts = self._strings(prefix + name)
                if texts is not None:
                    out[key][name] = texts
        return out
