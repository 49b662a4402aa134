"""The intent store: one safetensors file shared by the offline builder and the training side.

A store maps session ids to one intent vector per perspective (``[num_sessions, text_dim]``),
plus optional explanations (the top-f catalogue items each intent was snapped to, their
softmax weights, and the LLM's answers). The exact layout is written down in
``docs/store-format.md``; this module is the reference implementation:

* :func:`write_store` writes a store through ``safetensors.numpy.save_file``, atomically (temporary
  file in the same folder, then rename);
* :class:`IntentStore` opens one memory-mapped, validates it against what the caller expects,
  and looks up batches of session ids without a Python loop per id;
* :func:`merge_stores` joins shard stores into one.

Text columns (string session ids, item ids, answers) are stored as two tensors, the UTF-8
bytes of all strings concatenated (``uint8``) and ``int64`` offsets of length ``n + 1``, because
safetensors holds tensors and a small string-to-string metadata map only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import torch

from .errors import Llm4sbrError
from .hashing import sha256_file  # noqa: F401 - re-exported: documented as llm4sbr_adapter.store.sha256_file
from .safetensors_io import save_safetensors

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
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_ST_DTYPES = {np.dtype(v).str: k for k, v in _NP_DTYPES.items()}
# Every dtype code safetensors defines, with its item size: a tensor of any of them may sit in a store
# (readers ignore tensors they do not know), but the header must describe it consistently.
_ST_ITEMSIZE = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
_VALUE_DTYPES = {"float32": np.float32, "float16": np.float16}
# The dtype the store builders (build_store, build_intent_store, text_mean_store) write intent vectors in unless
# told otherwise: float16 is half the disk, page cache and resident memory of float32, and unit-norm 384-d
# sentence vectors keep ~3 significant digits per component, far finer than a trained 384 -> hidden projection
# resolves. Training reads them as float32 (lookup(dtype=...)). write_store itself keeps float32 unless asked,
# and float32 stores open as before.
BUILD_DTYPE = "float16"

MissingPolicy = str  # "raise" | "zeros"


class StoreError(Llm4sbrError, ValueError):
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
    def from_json(cls, text: str, *, source: str = "<store>") -> StoreMetadata:
        """Parse and check the metadata JSON: a one-line :class:`StoreError` naming ``source`` and the
        field for anything ``docs/store-format.md`` does not allow."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise StoreError(f"{source}: metadata is not valid JSON ({err})") from None
        if not isinstance(raw, dict):
            raise StoreError(f"{source}: metadata {METADATA_KEY!r} must be a JSON object, got {_describe(raw)}")
        if raw.get("format") != FORMAT_NAME:
            raise StoreError(f"{source}: not an intent store (format={raw.get('format')!r})")
        _check_metadata_fields(raw, source)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = {k: v for k, v in raw.items() if k not in known}
        meta = cls(**{k: v for k, v in raw.items() if k in known})
        meta.extra = {**meta.extra, **unknown}
        return meta


def _parse_shard_text(text: str) -> tuple[int, int] | None:
    """``"k/n"`` (``0 <= k < n``) -> ``(k, n)``; ``""`` (a whole store) -> ``None``; else :class:`ValueError`."""
    if text == "":
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not int(match[1]) < int(match[2]):
        raise ValueError(f"shard must be '' or 'k/n' with 0 <= k < n, got {text!r}")
    return int(match[1]), int(match[2])


def _valid_shard(value: Any) -> bool:
    """A metadata ``shard`` value: ``""`` or ``"k/n"`` with ``0 <= k < n``."""
    if not isinstance(value, str):
        return False
    try:
        _parse_shard_text(value)
    except ValueError:
        return False
    return True


def _is_str_map(value: Any) -> bool:
    """A JSON object of strings."""
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _is_names(value: Any) -> bool:
    """A non-empty list of unique, non-empty strings."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and v for v in value)
        and len(set(value)) == len(value)
    )


_REQUIRED_FIELDS = ("format_version", "perspectives", "text_dim", "num_sessions", "dtype", "id_kind")
_FIELD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "format_version": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "perspectives": (_is_names, "a non-empty array of unique, non-empty names"),
    "text_dim": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "num_sessions": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "top_f": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "dtype": (lambda v: isinstance(v, str) and v in _VALUE_DTYPES, '"float32" or "float16"'),
    "id_kind": (lambda v: isinstance(v, str) and v in ("int", "str"), '"int" or "str"'),
    "prompts": (_is_str_map, "an object of strings"),
    "extra": (lambda v: isinstance(v, dict), "an object"),
    "shard": (_valid_shard, '"" or "k/n" with 0 <= k < n'),
    **{
        name: (lambda v: isinstance(v, str), "a string")
        for name in (
            "text_encoder",
            "llm",
            "prompt_sha256",
            "catalogue_sha256",
            "sessions_source",
            "sessions_sha256",
            "created_at",
        )
    },
}


def _check_metadata_fields(raw: Mapping[str, Any], source: str) -> None:
    """Required fields present, every known field of its documented type, version not newer than ours."""
    missing = [k for k in _REQUIRED_FIELDS if k not in raw]
    if missing:
        raise StoreError(f"{source}: metadata lacks required field(s) {missing}")
    for name, (valid, what) in _FIELD_RULES.items():
        if name in raw and not valid(raw[name]):
            raise StoreError(f"{source}: metadata field {name!r} must be {what}, got {_describe(raw[name])}")
    if raw["format_version"] > FORMAT_VERSION:
        raise StoreError(
            f"{source}: format_version {raw['format_version']} is newer than this library "
            f"reads ({FORMAT_VERSION}); upgrade llm4sbr_adapter"
        )


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
    return [raw[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


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


# Elements per chunk when scanning a (memory-mapped) tensor: 16 Mi float32 = 64 MiB at a time.
_SCAN_ELEMENTS = 1 << 24


def _first_invalid_row(arr: np.ndarray, valid: Callable[[np.ndarray], np.ndarray]) -> int | None:
    """Index of the first row of ``arr`` where ``valid(row)`` is not all true, scanning in chunks."""
    if arr.ndim == 0 or len(arr) == 0:
        return None
    step = max(1, _SCAN_ELEMENTS // max(1, math.prod(arr.shape[1:])))
    for start in range(0, len(arr), step):
        ok = valid(np.asarray(arr[start : start + step]))
        if not ok.all():
            return start + int(np.flatnonzero(~ok.reshape(len(ok), -1).all(axis=1))[0])
    return None


# --------------------------------------------------------------------------- safetensors I/O
# Writing goes through the safetensors library (``safetensors_io.save_safetensors``): it lays out the header
# (string-to-string ``__metadata__``, padding to a multiple of 8 bytes) and orders the tensors (widest dtype
# first, so every tensor starts at a multiple of its own item size), exactly as every other safetensors
# reader expects. Reading stays hand-written (``_read_safetensors_header`` .. ``_map_tensor``), for two
# reasons checked against safetensors 0.8:
#
# * the row gather. ``IntentStore.lookup`` gathers a batch of B scattered rows with one numpy fancy index
#   on an ``np.memmap`` of the intent matrix, so only those rows are read. The library has no such gather:
#   ``safe_open(...).get_slice(name)`` takes ints, slices and ``...`` only (an index array is refused with
#   "Unsupported slice index", a list with "Non empty lists are not implemented"), so B rows cost B
#   Python-level calls, each a fresh copy (about 10x slower than the memmap gather for 1024 rows of a
#   20000 x 384 matrix), and ``get_tensor`` copies the whole matrix on every call;
# * the errors. The library checks the container too, but says what is wrong in one generic
#   ``SafetensorError``; the reader refuses each broken rule with a one-line :class:`StoreError` naming the
#   file and the tensor, and needs the parsed header anyway for the layout checks of ``docs/store-format.md``.
def _write_safetensors_atomic(path: Path, tensors: Mapping[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write a store's arrays through the package's one safetensors writer, after the store's dtype check."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        # contiguous and little-endian: save_file copies ``nbytes`` from the array's data pointer
        arr = np.ascontiguousarray(value)
        if arr.dtype.str not in _ST_DTYPES:
            raise StoreError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored")
        arrays[name] = arr
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise StoreError(f"safetensors metadata must map strings to strings, got {sorted(metadata)}")
    save_safetensors(path, arrays, metadata)


def _read_safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """Return (header dict, byte offset where tensor data starts) after checking the container.

    Nothing in the header is trusted: see :func:`_check_header`.
    """
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
    _check_header(path, header, size - 8 - header_len)
    return header, 8 + header_len


def _check_header(path: Path, header: Any, data_len: int) -> None:
    """The safetensors rules: a JSON object; ``__metadata__`` a string-to-string map; every tensor a known
    dtype, a shape and ``data_offsets`` holding exactly its bytes; the tensors tiling the data buffer."""
    if not isinstance(header, dict):
        raise StoreError(f"{path}: corrupt safetensors header (a JSON {_json_type(header)}, not an object)")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise StoreError(f"{path}: header field '__metadata__' must be an object of strings, got {_describe(meta)}")
    spans = {name: _check_entry(path, name, info) for name, info in header.items() if name != "__metadata__"}
    _check_coverage(path, spans, data_len)


def _check_entry(path: Path, name: str, info: Any) -> tuple[int, int]:
    """One tensor's header entry; returns its ``(begin, end)`` in the data buffer."""
    where = f"{path}: tensor {name!r}"
    if not isinstance(info, dict):
        raise StoreError(f"{where}: header entry must be an object, got {_describe(info)}")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in _ST_ITEMSIZE:
        raise StoreError(f"{where}: unknown dtype {dtype!r} (safetensors codes: {', '.join(_ST_ITEMSIZE)})")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise StoreError(f"{where}: shape must be a list of integers >= 0, got {_describe(shape)}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) and o >= 0 for o in offsets)):
        raise StoreError(f"{where}: data_offsets must be [begin, end], integers >= 0, got {_describe(offsets)}")
    begin, end = offsets
    need = math.prod(shape) * _ST_ITEMSIZE[dtype]
    if begin > end or end - begin != need:
        raise StoreError(f"{where}: data_offsets {offsets} hold {end - begin} bytes, but {dtype} {shape} needs {need}")
    return begin, end


def _check_coverage(path: Path, spans: Mapping[str, tuple[int, int]], data_len: int) -> None:
    """The tensors must cover the data buffer exactly: no gap, no overlap, nothing before or after."""
    pos, prev = 0, None
    for name, (begin, end) in sorted(spans.items(), key=lambda kv: kv[1]):
        after = f"the end of tensor {prev!r}" if prev else "the start of the data buffer"
        if begin > pos:
            raise StoreError(
                f"{path}: tensor {name!r} starts at byte {begin}, leaving a gap after {after} (byte {pos})"
            )
        if begin < pos:
            raise StoreError(
                f"{path}: tensor {name!r} (bytes {begin}..{end}) overlaps tensor {prev!r} (ends at byte {pos})"
            )
        pos, prev = end, name
    if pos > data_len:
        raise StoreError(
            f"{path}: truncated file: tensor {prev!r} ends at byte {pos} of the data buffer, which holds {data_len} "
            "(an interrupted copy? writes by this library are atomic)"
        )
    if pos < data_len:
        last = f"tensor {prev!r}" if prev else "the header"
        raise StoreError(f"{path}: the data buffer holds {data_len - pos} bytes after {last} that belong to no tensor")


def _is_int(value: Any) -> bool:
    """A JSON integer (``True`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _describe(value: Any, limit: int = 60) -> str:
    """``a JSON <type> <repr>`` cut to one short line, for error messages."""
    text = repr(value)
    return f"{_json_type(value)} {text if len(text) <= limit else text[:limit] + '...'}"


def _map_tensor(path: Path, header: dict[str, Any], data_start: int, name: str, mmap: bool) -> np.ndarray:
    """One tensor as an array: an ``np.memmap`` over its ``data_offsets`` (``mmap=True``), so a fancy index
    reads only the rows it gathers (safetensors' ``get_slice`` cannot gather an index array: see the note
    above :func:`_write_safetensors_atomic`), or a copy read from the file."""
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


def _item_rows_in_catalogue(rows: np.ndarray, num_items: int) -> np.ndarray:
    """Top-f catalogue rows that are valid: ``-1`` (none) or ``0 .. num_items - 1``."""
    return (rows >= -1) & (rows < num_items)


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
        raw_meta = header.get("__metadata__", {}).get(METADATA_KEY)  # a str->str map: _check_header
        if raw_meta is None:
            raise StoreError(f"{path}: a safetensors file, but not an intent store (no {METADATA_KEY!r} metadata)")
        self.metadata = StoreMetadata.from_json(raw_meta, source=str(path))
        self._num_items = self._check_layout()
        self._intents = {p: self._tensor(INTENT_PREFIX + p) for p in self.metadata.perspectives}
        self._ids = self._load_ids(SESSION_IDS, self.metadata.id_kind)
        # Sorted view for vectorised lookup with np.searchsorted (ints and numpy unicode alike).
        self._order = np.argsort(self._ids, kind="stable")
        self._sorted_ids = self._ids[self._order]
        self._check_values()

    # ---- validation on open: layout from the header, then values ---------------------
    def _check_layout(self) -> int | None:
        """Every tensor the metadata implies is present with its documented dtype and shape; returns the
        catalogue size ``M`` (``None`` without ``item_ids``)."""
        meta, n = self.metadata, self.metadata.num_sessions
        for name in meta.perspectives:
            self._check_intent_layout(name)
        if meta.id_kind == "int":
            self._expect(SESSION_IDS, ("I64",), [n], "num_sessions from the metadata, id_kind 'int'")
        else:
            self._expect_strings(SESSION_IDS, n)
        num_items = self._check_item_layout()
        for name in meta.perspectives:
            self._check_explanation_layout(name, num_items)
        return num_items

    def _check_intent_layout(self, perspective: str) -> None:
        """``intent.<p>`` exists as ``[num_sessions, text_dim]`` of the metadata's ``dtype``."""
        name, meta = INTENT_PREFIX + perspective, self.metadata
        if name not in self._header:
            raise StoreError(f"{self.path}: metadata lists perspective {perspective!r} but tensor {name!r} is missing")
        self._expect(
            name, ("F32", "F16"), [meta.num_sessions, meta.text_dim], "num_sessions x text_dim from the metadata"
        )
        code = _ST_DTYPES[np.dtype(_VALUE_DTYPES[meta.dtype]).str]
        if self._header[name]["dtype"] != code:
            raise StoreError(
                f"{self.path}: tensor {name!r} is {self._header[name]['dtype']}, "
                f"but metadata field 'dtype' says {meta.dtype!r} ({code})"
            )

    def _check_item_layout(self) -> int | None:
        """``item_ids`` as ``I64 [M]`` or as a string column (not both); returns ``M``."""
        has_int = ITEM_IDS in self._header
        has_str = any(ITEM_IDS + s in self._header for s in (UTF8_SUFFIX, OFFSETS_SUFFIX))
        if has_int and has_str:
            raise StoreError(
                f"{self.path}: tensor {ITEM_IDS!r} and string column {ITEM_IDS + UTF8_SUFFIX!r} "
                "both present (one catalogue, one form)"
            )
        if has_int:
            self._expect(ITEM_IDS, ("I64",), [None])
            return int(self._header[ITEM_IDS]["shape"][0])
        return self._expect_strings(ITEM_IDS, None) if has_str else None

    def _check_explanation_layout(self, name: str, num_items: int | None) -> None:
        """``top_items.<p>`` ``I64 [N, f]`` (needs ``item_ids``), ``top_weights.<p>`` ``F32`` of the same shape
        (needs ``top_items.<p>``), answer columns of ``N`` strings."""
        top, weights = TOP_ITEMS_PREFIX + name, TOP_WEIGHTS_PREFIX + name
        if top in self._header:
            if num_items is None:
                raise StoreError(
                    f"{self.path}: tensor {top!r} needs the catalogue ids (tensor {ITEM_IDS!r} or string "
                    f"column {ITEM_IDS + UTF8_SUFFIX!r}), which are missing"
                )
            self._expect(top, ("I64",), [self.metadata.num_sessions, None])
        if weights in self._header:
            if top not in self._header:
                raise StoreError(f"{self.path}: tensor {weights!r} without tensor {top!r}")
            self._expect(weights, ("F32",), list(self._header[top]["shape"]), f"the shape of {top!r}")
        for prefix in (ANSWER_PREFIX, RAW_ANSWER_PREFIX):
            if any(prefix + name + s in self._header for s in (UTF8_SUFFIX, OFFSETS_SUFFIX)):
                self._expect_strings(prefix + name, self.metadata.num_sessions)

    def _expect(self, name: str, dtypes: tuple[str, ...], shape: list[int | None], why: str = "") -> None:
        """Tensor ``name`` exists with one of ``dtypes`` and ``shape`` (``None`` = any length)."""
        info = self._header.get(name)
        if info is None:
            raise StoreError(f"{self.path}: tensor {name!r} is missing")
        fits = len(info["shape"]) == len(shape) and all(
            w is None or w == d for w, d in zip(shape, info["shape"], strict=True)
        )
        if info["dtype"] not in dtypes or not fits:
            wanted = "[" + ", ".join("*" if w is None else str(w) for w in shape) + "]"
            raise StoreError(
                f"{self.path}: tensor {name!r} is {info['dtype']} {info['shape']}, expected "
                f"{' or '.join(dtypes)} {wanted}" + (f" ({why})" if why else "")
            )

    def _expect_strings(self, base: str, count: int | None) -> int:
        """A string column ``base``: ``U8 [bytes]`` + ``I64 [count + 1]`` offsets; returns its length."""
        self._expect(base + UTF8_SUFFIX, ("U8",), [None])
        self._expect(base + OFFSETS_SUFFIX, ("I64",), [None if count is None else count + 1])
        length = int(self._header[base + OFFSETS_SUFFIX]["shape"][0]) - 1
        if length < 0:
            raise StoreError(f"{self.path}: tensor {base + OFFSETS_SUFFIX!r} is empty (needs count + 1 offsets)")
        return length

    def _check_values(self) -> None:
        """Scan the values the header cannot vouch for: finite intents and weights, top items inside the
        catalogue, valid string offsets, unique session ids.

        A full scan at open, rather than per looked-up row: it costs one sequential pass over the file
        (0.07 s for a 435 MB store in the page cache, a cold read at disk speed; 64 MiB chunks keep memory
        flat with ``mmap``), while a NaN met at lookup time would already have poisoned a batch's loss,
        far from its cause, and a per-lookup check would cost every training step.
        """
        self._check_unique_ids()
        if self._num_items is not None and ITEM_IDS not in self._header:
            self._check_offsets(ITEM_IDS)
        for name in self.metadata.perspectives:
            self._check_rows(INTENT_PREFIX + name, self._intents[name], np.isfinite, "holds NaN or inf")
            if TOP_WEIGHTS_PREFIX + name in self._header:
                weights = self._tensor(TOP_WEIGHTS_PREFIX + name)
                self._check_rows(TOP_WEIGHTS_PREFIX + name, weights, np.isfinite, "holds NaN or inf")
            if TOP_ITEMS_PREFIX + name in self._header:
                m = self._num_items or 0  # never None here: the layout check needs item ids beside top_items
                self._check_rows(
                    TOP_ITEMS_PREFIX + name,
                    self._tensor(TOP_ITEMS_PREFIX + name),
                    functools.partial(_item_rows_in_catalogue, num_items=m),
                    f"holds an item index outside the catalogue of {m} items (0..{m - 1}, or -1 for none)",
                )
            for prefix in (ANSWER_PREFIX, RAW_ANSWER_PREFIX):
                if prefix + name + UTF8_SUFFIX in self._header:
                    self._check_offsets(prefix + name)

    def _check_rows(self, name: str, arr: np.ndarray, valid: Callable[[np.ndarray], np.ndarray], problem: str) -> None:
        """Raise naming the first row of tensor ``name`` (``arr``) where ``valid`` is not all true."""
        row = _first_invalid_row(arr, valid)
        if row is not None:
            values = np.asarray(arr[row])
            bad = values[~valid(values)][0].item()
            raise StoreError(
                f"{self.path}: tensor {name!r} row {row} (session id {self._ids[row].item()!r}) {problem}: {bad!r}"
            )

    def _check_offsets(self, base: str) -> None:
        """Offsets of a string column start at 0, never decrease and end at the byte count."""
        offsets = np.asarray(self._tensor(base + OFFSETS_SUFFIX))
        total = self._header[base + UTF8_SUFFIX]["shape"][0]
        if offsets[0] != 0 or offsets[-1] != total or (np.diff(offsets) < 0).any():
            raise StoreError(
                f"{self.path}: tensor {base + OFFSETS_SUFFIX!r} is not a valid string column: "
                f"offsets must start at 0, never decrease, and end at {total} "
                f"(the bytes of {base + UTF8_SUFFIX!r})"
            )

    def _check_unique_ids(self) -> None:
        """Session ids are unique (a second row with the same id could never be looked up)."""
        same = np.flatnonzero(self._sorted_ids[1:] == self._sorted_ids[:-1])
        if same.size:
            name = SESSION_IDS if self.metadata.id_kind == "int" else SESSION_IDS + UTF8_SUFFIX
            raise StoreError(
                f"{self.path}: tensor {name!r} holds session id {self._sorted_ids[same[0]].item()!r} "
                "more than once (session ids must be unique)"
            )

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
        self._check_offsets(base)
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


# --------------------------------------------------------------------------- merging
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
