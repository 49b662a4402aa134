"""Content identity of files: the one sha256 helper every file hash in the package goes through.

Stores record the sha256 of the sessions file their ids refer to and of the catalogue; model folders,
GGUF files and replayed answers are named by theirs. :func:`sha256_file` reads the file in blocks, so a
multi-gigabyte model is hashed in constant memory.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["sha256_file"]

_BLOCK = 1 << 20


def sha256_file(path: str | os.PathLike, chunk: int = _BLOCK) -> str:
    """Hex sha256 of a file's bytes, read ``chunk`` bytes at a time."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 byte, got {chunk}")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
