"""The store format: names of the tensors, dtypes, the metadata record and its rules, string columns.

Everything here is data about the layout written down in ``docs/store-format.md``; the reader
(:mod:`.reader`), the writer (:mod:`.write`), the checks (:mod:`.validate`) and merging (:mod:`.merge`)
share it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import strict_json
from ..errors import Llm4sbrError

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
            raw = strict_json.loads(text)
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
