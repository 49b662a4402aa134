"""Content identity of files: the one sha256 helper every file hash in the package goes through.

Stores record the sha256 of the sessions file their ids refer to and of the catalogue; model folders,
GGUF files and replayed answers are named by theirs. :func:`sha256_file` reads the file in blocks, so a
multi-gigabyte model is hashed in constant memory; :func:`copy_and_sha256` hashes files while joining
them into one (the default LLM's chunks), so the joined bytes are read once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import IO

__all__ = ["copy_and_sha256", "sha256_file"]

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


def copy_and_sha256(sources: Iterable[str | os.PathLike], out: IO[bytes], chunk: int = 1 << 22) -> tuple[str, int]:
    """Write the files ``sources`` one after another to ``out``; returns (hex sha256, bytes) of what was written."""
    digest, size = hashlib.sha256(), 0
    for source in sources:
        with open(source, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
                out.write(block)
                size += len(block)
    return digest.hexdigest(), size
