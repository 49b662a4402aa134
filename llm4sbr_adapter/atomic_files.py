"""Atomic file writes: a temporary file in the target's folder, fsync, then one rename over the target.

Every file the library and the examples write (stores, caches, configs, prepared data, results) goes
through :func:`atomic_path` or :func:`atomic_open`, so a crash leaves either the old file or the new one,
never half of it, and the new file gets the permissions of a plain ``open`` (``0o666`` minus the
umask; ``mkstemp`` alone would leave ``0o600``).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path``; write it inside the block.

    On normal exit the file is fsynced, given the usual permissions and renamed over ``path`` (the
    folder is created if needed); on any exception it is removed and ``path`` is left untouched.
    ``suffix`` matters to writers that add an extension themselves (``np.savez`` wants ``.npz``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """``open(path, mode)`` that only replaces ``path`` when the block ends without an exception.

    ``mode`` is ``"w"`` (UTF-8 text, ``\\n`` line ends) or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports mode 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        text = {} if mode == "wb" else {"encoding": "utf-8", "newline": "\n"}
        with open(tmp, mode, **text) as handle:
            yield handle


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
