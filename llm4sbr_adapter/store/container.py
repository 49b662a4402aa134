"""The safetensors container of a store: written through the library, read by memory map.

Writing goes through the package's one safetensors writer (:func:`~llm4sbr_adapter.safetensors_io.save_safetensors`);
reading parses and checks the header here and maps each tensor with ``np.memmap``.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import strict_json
from ..safetensors_io import save_safetensors
from .format import _NP_DTYPES, _ST_DTYPES, _ST_ITEMSIZE, StoreError, _describe, _is_int, _json_type


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
            header = strict_json.loads(handle.read(header_len))
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
