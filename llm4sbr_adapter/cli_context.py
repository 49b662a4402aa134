"""What a command line knows about itself, for its last words: the command as typed, what it kept.

* :func:`record_command` (called by :class:`~llm4sbr_adapter.errors.CliParser` when it parses) keeps the
  program, its arguments and the parsed flags.
* :func:`note_kept` is called by work that leaves something useful behind even when interrupted (the
  answer cache of a build); :func:`interrupted_line` is the one line printed on Ctrl-C: what was kept and
  the command that resumes.
* :func:`describe_os_error` turns an operating-system error (``[Errno 21] Is a directory: '...'``) into one
  line naming the flag whose path it concerns.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["describe_os_error", "interrupted_line", "note_kept", "record_command", "reset_kept"]

_COMMAND: contextvars.ContextVar[tuple[str, tuple[str, ...], dict[str, str], argparse.Namespace | None] | None] = (
    contextvars.ContextVar("llm4sbr_command", default=None)
)
_KEPT: list[str] = []
# atomic_files' temporary names: .<name>.<8 mkstemp characters><suffix>
_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.[A-Za-z0-9]+$")


def record_command(
    prog: str, argv: Sequence[str] | None, namespace: argparse.Namespace | None, parser: argparse.ArgumentParser
) -> None:
    """Remember the command being run (``argv`` ``None``: ``sys.argv[1:]``) and how it names each value:
    an option by its first flag, a positional argument by its metavar or name."""
    labels = {
        a.dest: a.option_strings[0] if a.option_strings else str(a.metavar or a.dest)
        for a in parser._actions  # argparse keeps its actions only there
    }
    _COMMAND.set((prog, tuple(sys.argv[1:] if argv is None else argv), labels, namespace))


def note_kept(what: str) -> None:
    """Record something that survives an interruption, e.g. ``"the answers so far in out.answers.sqlite3"``."""
    if what not in _KEPT:
        _KEPT.append(what)


def reset_kept() -> None:
    """Forget the notes of an earlier command run in the same process."""
    _KEPT.clear()


def command_line() -> str:
    """The command being run, as a user can paste it again."""
    recorded = _COMMAND.get()
    prog, argv = (recorded[0], recorded[1]) if recorded else ("", tuple(sys.argv[1:]))
    if not prog.startswith("python"):
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        name = spec.name.removesuffix(".__main__") if spec is not None and spec.name else None
        prog = f"python -m {name}" if name else shlex.quote(sys.argv[0])
    return f"{prog} {shlex.join(argv)}".rstrip()


def interrupted_line() -> str:
    """The one line printed on Ctrl-C: what was kept and the command that resumes."""
    kept = "; ".join(_KEPT) if _KEPT else "no output was replaced (files are written whole or not at all)"
    return f"interrupted: kept {kept}; run again to resume: {command_line()}"


def _flag_paths() -> list[tuple[str, str]]:
    """``(flag, path)`` for every string value of the parsed command (lists give one pair per value)."""
    recorded = _COMMAND.get()
    if recorded is None or recorded[3] is None:
        return []
    pairs: list[tuple[str, str]] = []
    for dest, value in vars(recorded[3]).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        flag = recorded[2].get(dest, "--" + dest.replace("_", "-"))
        pairs.extend((flag, v) for v in values if isinstance(v, str) and v)
    return pairs


def _concerns(filename: str, path: str) -> bool:
    """Whether an error about ``filename`` is about the flag value ``path``: the same file, a file inside
    it (a folder flag), or the temporary file a write of it uses."""
    file, target = Path(os.path.abspath(filename)), Path(os.path.abspath(path))
    if file == target or target in file.parents:
        return True
    match = _TEMP.match(file.name)
    return match is not None and file.parent == target.parent and match["name"] == target.name


def describe_os_error(err: OSError) -> str | None:
    """One line for an operating-system error that names a file, naming the flag it came from when one
    did; ``None`` when ``err`` names no file (its own message is then used)."""
    if err.filename is None or not str(err).startswith("[Errno"):
        return None
    filename = os.fsdecode(err.filename)
    reason = err.strerror or type(err).__name__
    for flag, path in _flag_paths():
        if _concerns(filename, path):
            where = "" if os.path.abspath(filename) == os.path.abspath(path) else f" ({filename})"
            return f"{flag} {path}: {reason}{where}"
    return f"{filename}: {reason}"
