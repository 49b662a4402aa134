"""Atomic file writes: a temporary file in the target's folder, fsync, then one rename over the target.

Every file the library and the examples write (stores, caches, configs, prepared data, results) goes
through :func:`atomic_path` or :func:`atomic_open`, so a crash leaves either the old file or the new one,
never half of it, and the new file gets the permissions of a plain ``open`` (``0o666`` minus the
umask; ``mkstemp`` alone would leave ``0o600``).

A write killed midway (SIGKILL, power loss) leaves its hidden temporary file ``.<name>.XXXXXXXX<suffix>``
beside the target; the next write to the same target removes such leftovers
(:func:`remove_stale_temp_files`), never the file of a writer that is still running.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # not POSIX: stale temp files are recognised by age alone
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# A temp file younger than this is never removed: it may belong to a writer that has created it but not
# yet locked it (a few microseconds). Leftovers of a killed write go on the next write after that.
STALE_AFTER_S = 60.0


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
    remove_stale_temp_files(path, suffix)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    tmp = Path(name)
    try:
        _try_lock(fd)  # held until the rename: tells other writers' cleanup that this file is live
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def temp_name_pattern(path: str | os.PathLike, suffix: str = ".tmp") -> re.Pattern[str]:
    """The names :func:`atomic_path` gives temporary files of ``path``: ``.<name>.`` + 8 mkstemp characters + suffix.

    mkstemp's random part never holds a dot, so the pattern cannot match the temporary file of another
    target (``.a.json.XXXXXXXX.tmp`` is not one of ``a``'s).
    """
    return re.compile(rf"\.{re.escape(Path(path).name)}\.[a-z0-9_]{{8}}{re.escape(suffix)}")


def remove_stale_temp_files(
    path: str | os.PathLike, suffix: str = ".tmp", min_age_s: float = STALE_AFTER_S
) -> list[Path]:
    """Delete temporary files that killed writes of ``path`` left beside it; return the removed paths.

    Only regular files whose name matches :func:`temp_name_pattern` for this target are considered, and only
    when older than ``min_age_s`` and not locked by a live writer (:func:`atomic_path` holds a lock on its
    temporary file until the rename, so two processes writing the same file keep each other's).
    """
    path = Path(path)
    pattern = temp_name_pattern(path, suffix)
    try:
        entries = [e for e in os.scandir(path.parent) if pattern.fullmatch(e.name)]
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            old = time.time() - entry.stat(follow_symlinks=False).st_mtime >= min_age_s
            if old and _remove_unless_locked(entry.path):
                removed.append(Path(entry.path))
        except OSError as err:
            logger.warning("could not remove stale temporary file %s: %s", entry.path, err)
    if removed:
        logger.info("removed %d stale temporary file(s) of %s: %s", len(removed), path, [p.name for p in removed])
    return removed


def _try_lock(fd: int) -> None:
    """Best effort exclusive lock on a fresh temporary file; a filesystem without locks only loses the
    protection of :func:`remove_stale_temp_files` for files younger than :data:`STALE_AFTER_S`."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        logger.debug("no lock on temporary file (fd %d): %s", fd, err)


def _remove_unless_locked(name: str) -> bool:
    """Unlink ``name`` unless a live writer holds its lock; True when removed."""
    fd = os.open(name, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))  # RDWR: NFS emulates flock with fcntl locks
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        os.unlink(name)
        return True
    except FileNotFoundError:  # another cleanup was faster
        return False
    finally:
        os.close(fd)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """``open(path, mode)`` that only replaces ``path`` when the block ends without an exception.

    ``mode`` is ``"w"`` (UTF-8 text, ``\\n`` line ends) or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports mode 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        if mode == "wb":
            with open(tmp, "wb") as binary:
                yield binary
        else:
            with open(tmp, "w", encoding="utf-8", newline="\n") as text:
                yield text


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
