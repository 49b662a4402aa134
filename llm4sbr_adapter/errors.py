"""The package's exception root and the error messages shared by the library and its command lines.

* :class:`Llm4sbrError` is the base of every exception class this package defines; each also keeps
  its built-in base (``ValueError``, ``RuntimeError``, ``ImportError``), so ``except ValueError`` code
  keeps working and ``except Llm4sbrError`` catches all of them.
* :func:`option_hint` writes a setting in the caller's spelling: ``on_missing_title='skip_item'``
  when the library is called from Python, ``--on-missing-title skip_item`` inside a CLI (which runs
  its work under :func:`flag_spelling`).
* :class:`CliParser` turns a usage error into one line, ``error: <message>``, exit status 2.
* :func:`run_cli` turns any failure into one line, ``error: <message>``, exit status 1, and prints
  the traceback too only at ``--log-level debug``.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import NoReturn

__all__ = [
    "LOG_LEVELS",
    "CliParser",
    "Llm4sbrError",
    "add_log_level",
    "flag_spelling",
    "one_line",
    "option_hint",
    "run_cli",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Llm4sbrError(Exception):
    """Root of every exception class defined by ``llm4sbr_adapter`` (each keeps its built-in base too)."""


_FLAG_SPELLING: contextvars.ContextVar[bool] = contextvars.ContextVar("llm4sbr_flag_spelling", default=False)

# Failures a user can fix from the message alone; any other exception is named by its type.
_EXPECTED = (ValueError, OSError, LookupError)


def option_hint(param: str, flag: str, value: object) -> str:
    """``param=value`` (Python spelling), or ``flag value`` when called inside :func:`flag_spelling`."""
    return f"{flag} {value}" if _FLAG_SPELLING.get() else f"{param}={value!r}"


@contextlib.contextmanager
def flag_spelling() -> Iterator[None]:
    """Within this block :func:`option_hint` spells settings as command-line flags."""
    token = _FLAG_SPELLING.set(True)
    try:
        yield
    finally:
        _FLAG_SPELLING.reset(token)


def one_line(err: BaseException) -> str:
    """An exception as one line: its message (``KeyError`` unquoted), prefixed by its type when unexpected."""
    text = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else str(err)
    text = "; ".join(part.strip() for part in str(text).splitlines() if part.strip()) or type(err).__name__
    if isinstance(err, _EXPECTED):
        return text
    return f"{type(err).__name__}: {text} (run with --log-level debug for the traceback)"


class CliParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line: ``error: <message>``, status 2."""

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


def run_cli(work: Callable[[], int], log_level: str) -> int:
    """Run a CLI's ``work`` with flag-spelled hints; a failure prints ``error: <message>`` and returns 1.

    The traceback is printed (before the error line) only when ``log_level`` is ``DEBUG``.
    """
    with flag_spelling():
        try:
            return work()
        except Exception as err:  # noqa: BLE001 - every failure becomes one line
            if logging.getLevelName(log_level.upper()) == logging.DEBUG:
                traceback.print_exc(file=sys.stderr)
            print(f"error: {one_line(err)}", file=sys.stderr)
            return 1
