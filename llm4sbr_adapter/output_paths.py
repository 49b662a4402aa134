"""One check for every command that writes: an output never replaces an input, and can be written.

:func:`check_writes` runs before any work (before a file is parsed or a model loads) and refuses, in one
line naming the flag as typed:

* an output that is the same file as an input of the same call, or as another output, however it is
  spelled: relative or absolute, with ``..`` or ``.``, through a symbolic link (the target counts), or
  as a hard link of the input (same device and inode);
* an output that is an existing folder, an output whose folder (or a folder above it) is a file, and an
  output whose folder cannot be written (a probe file is created and removed in the nearest folder that
  exists, so root, read-only mounts and ACLs are judged as the write itself will be).

A missing folder above an output is created by the write (as ``mkdir -p``), so it is accepted when the
nearest existing folder above it is writable.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import Llm4sbrError

__all__ = ["OutputPathError", "check_output_folder", "check_writes", "folder_files", "folder_outputs"]

PathArg = str | os.PathLike
Paths = Mapping[str, PathArg | None | Iterable[PathArg]]


class OutputPathError(Llm4sbrError, ValueError):
    """An output path that would replace an input, or that cannot be written."""


def _flatten(paths: Paths) -> list[tuple[str, str]]:
    """``(label, path as typed)`` pairs; a label may carry one path, several or ``None`` (not given)."""
    pairs: list[tuple[str, str]] = []
    for label, value in paths.items():
        if value is None:
            continue
        values = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        pairs.extend((label, os.fspath(v)) for v in values if v is not None and os.fspath(v) != "")
    return pairs


def _identity(path: str) -> tuple[str, tuple[int, int] | None]:
    """The resolved path (symbolic links and ``..`` followed) and, for an existing file, its (device, inode)."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return real, None
    return real, (st.st_dev, st.st_ino)


def _same(a: tuple[str, tuple[int, int] | None], b: tuple[str, tuple[int, int] | None]) -> bool:
    return a[0] == b[0] or (a[1] is not None and a[1] == b[1])


def check_writes(outputs: Paths, inputs: Paths | None = None) -> None:
    """Refuse outputs that would replace an input or another output, or that cannot be written.

    ``outputs`` and ``inputs`` map a label (the flag as the user typed it, e.g. ``"--output"``) to a path,
    several paths or ``None``. Raises :class:`OutputPathError` with one line naming both labels and paths.
    """
    outs = _flatten(outputs)
    ins = [(label, path, _identity(path)) for label, path in _flatten(inputs or {})]
    seen: list[tuple[str, str, tuple[str, tuple[int, int] | None]]] = []
    for label, path in outs:
        ident = _identity(path)
        for in_label, in_path, in_ident in ins:
            if _same(ident, in_ident):
                raise OutputPathError(
                    f"{label} {path} is the same file as {in_label} {in_path}: an output never replaces an "
                    f"input; choose another {label}"
                )
        for other_label, other_path, other_ident in seen:
            if _same(ident, other_ident):
                raise OutputPathError(
                    f"{label} {path} is the same file as {other_label} {other_path}: two outputs of one "
                    f"call must differ; choose another {label}"
                )
        seen.append((label, path, ident))
        _check_writable(label, Path(path))


def check_output_folder(label: str, folder: PathArg) -> None:
    """An output folder (created when missing) must not be a file, and its nearest existing folder writable."""
    folder = Path(os.fspath(folder))
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{label} {folder} is a file, not a folder: give a folder path")
    _check_creatable(label, folder, folder)


def folder_outputs(label: str, folder: PathArg, names: Iterable[str]) -> dict[str, Path]:
    """The files a command writes inside an output folder, labelled ``"<label> (<name>)"`` for :func:`check_writes`."""
    return {f"{label} ({name})": Path(os.fspath(folder)) / name for name in names}


def folder_files(path: PathArg | None) -> list[Path]:
    """The files directly inside ``path`` when it is a folder (an input folder's files), else ``[path]``
    (``[]`` for ``None``: a flag not given)."""
    if path is None:
        return []
    path = Path(os.fspath(path))
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file())
    return [path]


def _check_writable(label: str, path: Path) -> None:
    if path.is_dir():
        raise OutputPathError(f"{label} {path} is a folder: give a file path")
    _check_creatable(label, path, path.parent)


def _check_creatable(label: str, path: Path, folder: Path) -> None:
    """The nearest existing folder at or above ``folder`` is a folder that accepts a new file."""
    probe = Path(os.path.abspath(folder))
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"{label} {path}: {probe} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".llm4sbr-write-check.", dir=probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise OutputPathError(f"{label} {path}: cannot write in folder {probe} ({reason})") from None
    os.close(fd)
    os.unlink(name)
