"""The intent store: one safetensors file shared by the offline builder and the training side.

A store maps session ids to one intent vector per perspective (``[num_sessions, text_dim]``),
plus optional explanations (the top-f catalogue items each intent was snapped to, their
softmax weights, and the LLM's answers). The exact layout is written down in
``docs/store-format.md``; this module is the reference implementation:

* :func:`write_store` writes a store atomically (temporary file in the same folder, then rename);
* :class:`IntentStore` opens one memory-mapped, validates it against what the caller expects,
  and looks up batches of session ids without a Python loop per id;
* :func:`merge_stores` joins shard stores into one.

Text columns (string session ids, item ids, answers) are stored as two tensors, the UTF-8
bytes of all strings concatenated (``uint8``) and ``int64`` offsets of length ``n + 1``, because
safetensors holds tensors and a small string-to-string metadata map only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from .atomic_files import atomic_open

logger = logging.getLogger(__name__)

FORMAT_NAME = "llm4sbr-intent-store"
FORMAT_VERSION = 1
METADATA_KEY = "llm4sbr"

INTENT_PREFIX = "intent."
TOP_ITEMS_PREFIX = "top_items."
TOP_WEIGHTS_PREFIX = "top_weights."
ANSWER_PREFIX = "answer."
RAW_ANSWER_PREFIX = "raw_answer."
SESSION_IDS = "session_ids"
ITEM_IDS = "item_ids"
UTF8_SUFFIX = ".utf8"
OFFSETS_SUFFIX = ".offsets"

_NP_DTYPES = {
    "F32": np.float32, "F16": np.float16, "F64": np.float64,
    "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_,
}
_ST_DTYPES = {np.dtype(v).str: k for k, v in _NP_DTYPES.items()}
_VALUE_DTYPES = {"float32": np.float32, "float16": np.float16}

MissingPolicy = str  # "raise" | "zeros"


class StoreError(ValueError):
    """A store file is malformed, truncated, or cannot be written as asked."""


class StoreMismatchError(StoreError):
    """A store does not match what the caller declared (perspectives, dim, counts, hashes)."""


@dataclass
class StoreMetadata:
    """What a store was built from; saved as JSON in the safetensors header.

    ``num_sessions``, ``id_kind``, ``dtype``, ``format`` and ``format_version`` are filled in by
    :func:`write_store`; everything else describes the build and is checked on open when the
    caller declares an expectation for it.
    """

    perspectives: list[str]
    text_dim: int
    text_encoder: str = ""
    llm: str = ""
    top_f: int = 0
    prompts: dict[str, str] = field(default_factory=dict)  # perspective -> template text
    prompt_sha256: str = ""
    catalogue_sha256: str = ""
    sessions_source: str = ""  # file name the session ids refer to (e.g. "train.txt")
    sessions_sha256: str = ""  # sha256 of that file: row ids of train.txt and test.txt never mix
    shard: str = ""  # "k/n" for one slice of a sharded build, "" for a whole store
    created_at: str = ""
    num_sessions: int = 0
    id_kind: str = ""  # "int" or "str"
    dtype: str = "float32"
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, *, source: str = "<store>") -> "StoreMetadata":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise StoreError(f"{source}: metadata is not valid JSON ({err})") from None
        if raw.get("format") != FORMAT_NAME:
            raise StoreError(f"{source}: not an intent store (format={raw.get('format')!r})")
        if int(raw.get("format_version", -1)) > FORMAT_VERSION:
            raise StoreError(
                f"{source}: format_version {raw['format_version']} is newer than this library "
                f"reads ({FORMAT_VERSION}); upgrade llm4sbr_adapter"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = {k: v for k, v in raw.items() if k not in known}
        missing = [k for k in ("perspectives", "text_dim") if k not in raw]
        if missing:
            raise StoreError(f"{source}: metadata lacks required field(s) {missing}")
        meta = cls(**{k: v for k, v in raw.items() if k in known})
        meta.extra = {**meta.extra, **unknown}
        return meta


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- text columns
def encode_strings(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pack strings as (``uint8 [total_bytes]``, ``int64 [n + 1]`` offsets)."""
    encoded = [str(v).encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
    return data, offsets


def decode_strings(data: np.ndarray, offsets: np.ndarray) -> list[str]:
    """Inverse of :func:`encode_strings`."""
    raw = bytes(np.asarray(data, dtype=np.uint8))
    bounds = np.asarray(offsets, dtype=np.int64).tolist()
    return [raw[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:])]


def _normalise_ids(session_ids: Sequence[int] | Sequence[str] | np.ndarray, what: str) -> np.ndarray:
    """Turn ids into an ``int64`` array or a numpy unicode array; reject mixed and bool ids."""
    arr = np.asarray(session_ids)
    if arr.ndim != 1:
        raise StoreError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:  # an empty list has no kind of its own (numpy says float64): an empty shard
        return arr.astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "U":
        if not isinstance(session_ids, np.ndarray) and not all(isinstance(v, str) for v in session_ids):
            # np.asarray([1, "2"]) silently turns the ints into strings
            raise StoreError(f"{what} must be all integers or all strings, got a mix of strings and other values")
        return arr
    if arr.dtype.kind == "O" and all(isinstance(v, str) for v in arr.tolist()):
        return arr.astype(str)
    raise StoreError(f"{what} must be all integers or all strings, got dtype {arr.dtype}")


def _first_duplicates(ids: np.ndarray, limit: int = 5) -> list:
    uniq, counts = np.unique(ids, return_counts=True)
    return uniq[counts > 1][:limit].tolist()


# --------------------------------------------------------------------------- safetensors I/O
def _write_safetensors_atomic(path: Path, tensors: Mapping[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write numpy arrays as one safetensors file: temp file in the target folder, fsync, rename."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    ordered = []
    # Wider dtypes first (then by name): with the 8-byte aligned data start, every tensor then
    # begins at a multiple of its own item size, so memory-mapped views are aligned.
    for name in sorted(tensors, key=lambda k: (-np.asarray(tensors[k]).dtype.itemsize, k)):
        arr = np.ascontiguousarray(tensors[name])
        if arr.dtype.str not in _ST_DTYPES and arr.dtype != np.bool_:
            raise StoreError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored")
        code = "BOOL" if arr.dtype == np.bool_ else _ST_DTYPES[arr.dtype.str]
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
        ordered.append(arr)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # keep tensor data 8-byte aligned

    with atomic_open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(header_bytes)))
        handle.write(header_bytes)
        for arr in ordered:
            handle.write(memoryview(arr.reshape(-1)).cast("B") if arr.size else b"")


def _read_safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """Return (header dict, byte offset where tensor data starts); checks sizes against the file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"intent store not found: {path}") from None
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise StoreError(f"{path}: truncated file ({size} bytes; not even a safetensors header length)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > size - 8:
            raise StoreError(
                f"{path}: truncated or not a safetensors file (header says {header_len} bytes, "
                f"file has {size - 8} after the length field)"
            )
        try:
            header = json.loads(handle.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise StoreError(f"{path}: corrupt safetensors header ({err})") from None
    data_start = 8 + header_len
    data_end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if data_start + data_end > size:
        raise StoreError(
            f"{path}: truncated file: tensors need {data_start + data_end} bytes, the file has {size} "
            "(an interrupted copy? writes by this library are atomic)"
        )
    return header, data_start


def _map_tensor(path: Path, header: dict[str, Any], data_start: int, name: str, mmap: bool) -> np.ndarray:
    info = header[name]
    dtype = np.dtype(_NP_DTYPES[info["dtype"]])
    begin, end = info["data_offsets"]
    shape = tuple(info["shape"])
    if end == begin:
        return np.zeros(shape, dtype=dtype)
    if mmap:
        return np.memmap(path, dtype=dtype, mode="r", offset=data_start + begin, shape=shape)
    with open(path, "rb") as handle:
        handle.seek(data_start + begin)
        return np.frombuffer(handle.read(end - begin), dtype=dtype).reshape(shape)


# --------------------------------------------------------------------------- writing
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
    if dtype not in _VALUE_DTYPES:
        raise StoreError(f"dtype must be one of {sorted(_VALUE_DTYPES)}, got {dtype!r}")
    ids = _normalise_ids(session_ids, "session_ids")
    n = len(ids)
    dups = _first_duplicates(ids)
    if dups:
        raise StoreError(f"duplicate session ids: {dups}")
    perspectives = list(metadata.perspectives)
    if not perspectives or len(set(perspectives)) != len(perspectives):
        raise StoreError(f"perspectives must be a non-empty list of unique names, got {perspectives}")
    if set(intents) != set(perspectives):
        raise StoreError(f"intents have perspectives {sorted(intents)}, metadata declares {perspectives}")

    tensors: dict[str, np.ndarray] = {}
    for name in perspectives:
        vec = np.asarray(intents[name].detach().cpu() if isinstance(intents[name], torch.Tensor) else intents[name])
        if vec.shape != (n, metadata.text_dim):
            raise StoreError(
                f"intent {name!r} has shape {tuple(vec.shape)}, expected ({n}, {metadata.text_dim})"
            )
        tensors[INTENT_PREFIX + name] = vec.astype(_VALUE_DTYPES[dtype], copy=False)

    if ids.dtype.kind == "U":
        tensors[SESSION_IDS + UTF8_SUFFIX], tensors[SESSION_IDS + OFFSETS_SUFFIX] = encode_strings(ids.tolist())
        id_kind = "str"
    else:
        tensors[SESSION_IDS] = ids
        id_kind = "int"

    if top_items is not None:
        if item_ids is None:
            raise StoreError("top_items needs item_ids (the catalogue ids its rows index)")
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
                tensors[TOP_WEIGHTS_PREFIX + name] = w
    for prefix, columns in ((ANSWER_PREFIX, answers), (RAW_ANSWER_PREFIX, raw_answers)):
        for name, texts in (columns or {}).items():
            if len(texts) != n:
                raise StoreError(f"{prefix}{name} has {len(texts)} strings, expected {n}")
            tensors[prefix + name + UTF8_SUFFIX], tensors[prefix + name + OFFSETS_SUFFIX] = encode_strings(texts)

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
    _write_safetensors_atomic(path, tensors, {METADATA_KEY: meta.to_json()})
    logger.info("wrote intent store %s (%d sessions, perspectives %s)", path, n, perspectives)
    return path


# --------------------------------------------------------------------------- reading
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
        raw_meta = (header.get("__metadata__") or {}).get(METADATA_KEY)
        if raw_meta is None:
            raise StoreError(f"{path}: a safetensors file, but not an intent store (no {METADATA_KEY!r} metadata)")
        self.metadata = StoreMetadata.from_json(raw_meta, source=str(path))
        for name in self.metadata.perspectives:
            if INTENT_PREFIX + name not in header:
                raise StoreError(f"{path}: metadata lists perspective {name!r} but tensor {INTENT_PREFIX + name!r} is missing")
        expected_shape = [self.metadata.num_sessions, self.metadata.text_dim]
        for name in self.metadata.perspectives:
            info = header[INTENT_PREFIX + name]
            if info.get("dtype") not in ("F32", "F16") or list(info.get("shape", [])) != expected_shape:
                raise StoreError(
                    f"{path}: tensor {INTENT_PREFIX + name!r} is {info.get('dtype')} {info.get('shape')}, "
                    f"expected F32 or F16 {expected_shape} (num_sessions x text_dim from the metadata)"
                )
        self._intents = {p: self._tensor(INTENT_PREFIX + p) for p in self.metadata.perspectives}
        self._ids = self._load_ids(SESSION_IDS)
        if self._ids is None:
            raise StoreError(f"{path}: no session ids")
        if len(self._ids) != self.metadata.num_sessions:
            raise StoreError(f"{path}: {len(self._ids)} session ids but metadata says {self.metadata.num_sessions}")
        # Sorted view for vectorised lookup with np.searchsorted (ints and numpy unicode alike).
        self._order = np.argsort(self._ids, kind="stable")
        self._sorted_ids = self._ids[self._order]

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
    ) -> "IntentStore":
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
                problems.append(f"perspectives: expected {list(want)}, store has {meta.perspectives} (missing {missing})")
        for name in ("text_dim", "num_sessions", "catalogue_sha256", "sessions_sha256", "text_encoder"):
            value = expected.get(name)
            if value is not None and getattr(meta, name) != value:
                problems.append(f"{name}: expected {value!r}, store has {getattr(meta, name)!r}")
        if problems:
            raise StoreMismatchError(f"{self.path}: store does not match: " + "; ".join(problems))

    # ---- helpers ---------------------------------------------------------------------
    def _tensor(self, name: str) -> np.ndarray:
        return _map_tensor(self.path, self._header, self._data_start, name, self._mmap)

    def _load_ids(self, base: str) -> np.ndarray | None:
        if base in self._header:
            return np.asarray(self._tensor(base), dtype=np.int64)
        if base + UTF8_SUFFIX in self._header:
            return np.asarray(decode_strings(self._tensor(base + UTF8_SUFFIX), self._tensor(base + OFFSETS_SUFFIX)))
        return None

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
        return self._load_ids(ITEM_IDS)

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
                    entry[key] = bytes(np.asarray(data[offs[row]:offs[row + 1]])).decode("utf-8")
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
            "top_items": {}, "top_weights": {}, "answers": {}, "raw_answers": {},
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


# --------------------------------------------------------------------------- merging
_MUST_AGREE = ("perspectives", "text_dim", "text_encoder", "llm", "top_f", "prompt_sha256",
               "catalogue_sha256", "sessions_source", "sessions_sha256", "id_kind", "dtype")


def merge_stores(paths: Sequence[str | os.PathLike], out_path: str | os.PathLike) -> Path:
    """Join shard stores (same build settings, disjoint session ids) into one store.

    Raises :class:`StoreMismatchError` when shards were built differently and
    :class:`StoreError` when a session id appears in two shards (naming both files).
    """
    if not paths:
        raise StoreError("merge_stores needs at least one input store")
    stores = [IntentStore.open(p, mmap=False) for p in paths]
    first = stores[0]
    for other in stores[1:]:
        for name in _MUST_AGREE:
            a, b = getattr(first.metadata, name), getattr(other.metadata, name)
            if a != b:
                raise StoreMismatchError(f"cannot merge {other.path} into {first.path}: {name} differs ({b!r} vs {a!r})")
        items_a, items_b = first.item_ids, other.item_ids
        if (items_a is None) != (items_b is None) or (
            items_a is not None and not np.array_equal(items_a, items_b)
        ):
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

    meta = dataclasses.replace(first.metadata, shard="", created_at="")
    meta.extra = {**meta.extra, "merged_from": [Path(p).name for p in paths]}
    return write_store(
        out_path,
        all_ids,
        joined("intents"),
        meta,
        dtype=first.metadata.dtype,
        top_items=joined("top_items"),
        top_weights=joined("top_weights"),
        item_ids=parts[0]["item_ids"],
        answers=joined("answers"),
        raw_answers=joined("raw_answers"),
    )
