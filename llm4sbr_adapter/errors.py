"""The package's exception root and the error messages shared by the library and its command lines.

* :class:`Llm4sbrError` is the base of every exception class this package defines; each also keeps
  its built-in base (``ValueError``, ``RuntimeError``, ``ImportError``), so ``except ValueError`` code
  keeps working and ``except Llm4sbrError`` catches all of them.
* :func:`setting_hint` names a config field in the caller's spelling: ``on_missing_title='skip_item'``
  when the library is called from Python, ``--on-missing-title skip_item`` inside a CLI (which runs its
  work under :func:`flag_spelling` with its config's flags, see ``config_cli.hint_flags``). A hint names a
  field, never a flag, so it cannot name a flag the running command does not have: a command without
  that setting gets the Python spelling.
* :class:`CliParser` turns a usage error into one line, ``error: <message>``, exit status 2.
* :func:`run_cli` turns any failure into one line, ``error: <message>``, exit status 1, and prints
  the traceback too only at ``--log-level debug``; an operating-system error names the flag of its
  path instead of ``[Errno N]``; Ctrl-C ends with one line, ``interrupted: kept ...; run again to
  resume: <command>``, exit status 130.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import functools
import logging
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn, ParamSpec

from .cli_context import describe_os_error, interrupted_line, record_command, reset_kept

__all__ = [
    "LOG_LEVELS",
    "CliParser",
    "Llm4sbrError",
    "add_log_level",
    "flag_or_name",
    "flag_spelling",
    "interruptible",
    "one_line",
    "run_cli",
    "setting_hint",
    "setting_name",
]

P = ParamSpec("P")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Llm4sbrError(Exception):
    """Root of every exception class defined by ``llm4sbr_adapter`` (each keeps its built-in base too)."""


# The running command's {config field: flag}; None outside a command line.
_HINT_FLAGS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "llm4sbr_hint_flags", default=None
)

# Failures a user can fix from the message alone; any other exception is named by its type.
_EXPECTED = (ValueError, OSError, LookupError)


def setting_hint(field: str, value: object) -> str:
    """How to set config field ``field`` to ``value``: ``field=value`` (Python spelling), or ``--flag value``
    inside :func:`flag_spelling` when the running command has a flag for ``field``."""
    flags = _HINT_FLAGS.get()
    flag = None if flags is None else flags.get(field)
    return f"{field}={value!r}" if flag is None else f"{flag} {value}"


def setting_name(field: str) -> str:
    """Config field ``field`` as the caller spells it: its flag inside :func:`flag_spelling`, else the name."""
    flags = _HINT_FLAGS.get()
    return (None if flags is None else flags.get(field)) or field


def flag_or_name(param: str, flag: str) -> str:
    """How a message names a parameter that is no config field (an input or output path): ``param`` from
    Python, ``flag`` inside a command line (:func:`flag_spelling`)."""
    return param if _HINT_FLAGS.get() is None else flag


@contextlib.contextmanager
def flag_spelling(flags: Mapping[str, str]) -> Iterator[None]:
    """Within this block :func:`setting_hint` spells the fields of ``flags`` (``{field: flag}``) as flags."""
    token = _HINT_FLAGS.set(flags)
    try:
        yield
    finally:
        _HINT_FLAGS.reset(token)


def one_line(err: BaseException) -> str:
    """An exception as one line: its message (``KeyError`` unquoted), prefixed by its type when unexpected;
    an operating-system error about a file names the flag of that file (:func:`describe_os_error`)."""
    described = describe_os_error(err) if isinstance(err, OSError) else None
    if described is not None:
        return described
    text = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else str(err)
    text = "; ".join(part.strip() for part in str(text).splitlines() if part.strip()) or type(err).__name__
    if isinstance(err, _EXPECTED):
        return text
    return f"{type(err).__name__}: {text} (run with --log-level debug for the traceback)"


class CliParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line: ``error: <message>``, status 2."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """:meth:`argparse.ArgumentParser.parse_known_args`, remembering the command for
        :func:`run_cli`'s last line (the command that resumes, the flag a failing path came from)."""
        parsed, extras = super().parse_known_args(args, namespace)
        record_command(self.prog, args, parsed, self)
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        """Print ``error: <message>`` (and where to find the usage) to stderr and exit with status 2."""
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_log_level(parser: argparse._ActionsContainer, default: str) -> None:
    """Add ``--log-level`` (a :mod:`logging` level name, any case) to a parser or argument group."""
    parser.add_argument(
        "--log-level",
        default=default,
        type=str.upper,
        choices=LOG_LEVELS,
        help=f"logging level, any case (default {default.lower()}); debug also prints the traceback of an error.",
    )


def run_cli(work: Callable[[], int], log_level: str, flags: Mapping[str, str] | None = None) -> int:
    """Run a CLI's ``work``, hints spelled with ``flags`` (``{field: flag}``, see ``config_cli.hint_flags``);
    a failure prints ``error: <message>`` and returns 1.

    The traceback is printed (before the error line) only when ``log_level`` is ``DEBUG``. Ctrl-C prints
    :func:`~llm4sbr_adapter.cli_context.interrupted_line` and returns 130 (128 + SIGINT, as shells do).
    """
    reset_kept()
    with flag_spelling(flags or {}):
        try:
            return work()
        except KeyboardInterrupt:
            print(interrupted_line(), file=sys.stderr)
            return 130
        except Exception as err:  # noqa: BLE001 - every failure becomes one line
            if logging.getLevelName(log_level.upper()) == logging.DEBUG:
                traceback.print_exc(file=sys.stderr)
            print(f"error: {one_line(err)}", file=sys.stderr)
            return 1


def interruptible(main: Callable[P, int]) -> Callable[P, int]:
    """Wrap a command's ``main(argv)`` that does not use :func:`run_cli`: Ctrl-C prints one line (what was
    kept, the command that resumes) and returns 130 instead of a traceback."""

    @functools.wraps(main)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        reset_kept()
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt:
            print(interrupted_line(), file=sys.stderr)
            return 130

    return wrapper
