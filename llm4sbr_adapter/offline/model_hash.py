"""Content identity of model files: a sha256 over the weights, computed once and stamped.

A model is identified by what its files contain, never by their names or sizes: a fine-tuned copy of
a model keeps both. Hashing a few GB takes a while, so :func:`stamped_sha256` records
``(path, mtime_ns, size, sha256)`` in a small JSON stamp file (by default
``<cache dir>/file-sha256.json``) and reads the file again only when its mtime or size no longer
match the stamp. A stamp file that cannot be read or written only costs a re-hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from ..atomic_files import atomic_write_text
from ..hashing import sha256_file

__all__ = ["STAMPS_NAME", "default_cache_dir", "folder_sha256", "record_sha256", "stamped_sha256"]

logger = logging.getLogger(__name__)

STAMPS_NAME = "file-sha256.json"

# Files of a Hugging Face folder that decide what the model computes: weights, config, tokenizer.
_WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".gguf"})
_IDENTITY_SUFFIXES = _WEIGHT_SUFFIXES | {".json", ".txt", ".model", ".tiktoken"}

_LOCK = threading.Lock()


def default_cache_dir() -> Path:
    """``$LLM4SBR_CACHE`` if set, else ``~/.cache/llm4sbr_adapter``."""
    env = os.environ.get("LLM4SBR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llm4sbr_adapter"


def _stamps_path(stamps: str | os.PathLike | None) -> Path:
    return Path(stamps) if stamps is not None else default_cache_dir() / STAMPS_NAME


def _file_state(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _read_stamps(stamps: Path) -> dict[str, dict]:
    try:
        data = json.loads(stamps.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _write_stamp(path: Path, entry: dict, target: Path) -> None:
    """Add or replace ``path``'s entry in the stamp file ``target`` (atomic rewrite; errors only logged)."""
    with _LOCK:
        data = {k: v for k, v in _read_stamps(target).items() if os.path.exists(k)}  # forget deleted files
        data[str(path)] = entry
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target, json.dumps(data, indent=1, sort_keys=True))
        except OSError as err:
            logger.debug("cannot write the hash stamp %s (%s); the file will be hashed again", target, err)


def record_sha256(path: str | os.PathLike, digest: str, stamps: str | os.PathLike | None = None) -> None:
    """Stamp ``path`` (as it is now: mtime and size) with a sha256 the caller has just computed."""
    path = Path(path).resolve()
    _write_stamp(path, {**_file_state(path), "sha256": digest}, _stamps_path(stamps))


def stamped_sha256(path: str | os.PathLike, stamps: str | os.PathLike | None = None) -> str:
    """sha256 hex of a file's bytes, read from the stamp when mtime and size still match it.

    Args:
        path: the file.
        stamps: the JSON stamp file; None -> ``<default_cache_dir()>/file-sha256.json``.
    """
    path = Path(path).resolve()
    target = _stamps_path(stamps)
    state = _file_state(path)
    entry = _read_stamps(target).get(str(path))
    if isinstance(entry, dict) and {k: entry.get(k) for k in state} == state:
        digest = entry.get("sha256")
        if isinstance(digest, str) and len(digest) == 64:
            return digest
    logger.info("hashing %s (%.1f MB) to identify the model", path, state["size"] / 1e6)
    digest = sha256_file(path)
    if _file_state(path) == state:  # not rewritten while we read it
        _write_stamp(path, {**state, "sha256": digest}, target)
    return digest


def folder_sha256(folder: str | os.PathLike, stamps: str | os.PathLike | None = None) -> str:
    """sha256 hex over a model folder's weight, config and tokenizer files (top level, by name).

    Raises:
        FileNotFoundError: the folder holds no weight file (``*.safetensors``, ``*.bin``, ...).
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _IDENTITY_SUFFIXES)
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in files):
        raise FileNotFoundError(f"no weight files (*.safetensors, *.bin, ...) in model folder {folder}")
    listing = "".join(f"{p.name}\t{stamped_sha256(p, stamps)}\n" for p in files)
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()
