"""Text files decoded strictly, and split into lines the way files are written.

* :func:`read_text` decodes a whole file; a byte that is not valid in the encoding raises
  :class:`InputFormatError` naming the file, the line, the byte offset and the column, never a
  silently garbled title.
* Every decoded text loses a leading byte-order mark (U+FEFF) and is put in Unicode NFC, so ids and
  titles that differ only by normalisation (``é`` as one code point or as ``e`` + accent) are one.
* A C1 control character (U+0080-U+009F) is refused: in latin-1 text it is a byte 0x80-0x9F, which is
  the Windows-1252 (cp1252) encoding's quotes, dashes and euro sign; the message suggests cp1252.
* :func:`text_lines` splits at ``\\n``, ``\\r\\n`` and ``\\r`` only. ``str.splitlines()`` also splits
  at ``\\x85``, ``\\x1c``-``\\x1e``, ``\\u2028`` and ``\\u2029``, characters that can sit inside a
  title (``\\x85`` is the second byte of a UTF-8 ``å`` read as latin-1).
* :func:`resolve_encoding` picks the encoding of a release whose files are latin-1 (MovieLens 100K
  and 1M): latin-1 unless the bytes are valid UTF-8 with non-ASCII characters, i.e. a copy that was
  re-saved as UTF-8 (decoding those as latin-1 would garble every accented title).
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import re
import unicodedata
from pathlib import Path

from ...errors import Llm4sbrError

__all__ = ["InputFormatError", "read_lines", "read_text", "require_folder", "resolve_encoding", "text_lines"]

logger = logging.getLogger(__name__)


class InputFormatError(Llm4sbrError, ValueError):
    """An input file is malformed; the message names the file, the line and the offending id."""


def require_folder(folder: str | os.PathLike) -> Path:
    """``folder`` as a ``Path``; ``FileNotFoundError`` saying it is missing (or a file, not a folder) otherwise,
    before any search for the files a dataset should hold there reports them as absent instead."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    if folder.exists():
        raise FileNotFoundError(f"{folder}: not a folder (give the folder that holds the dataset's files)")
    missing_parent = "" if folder.parent.is_dir() else f"; its parent {folder.parent} is missing too"
    raise FileNotFoundError(f"data folder not found: {folder.resolve()} (no such folder{missing_parent})")


def read_text(path: str | os.PathLike, encoding: str, hint: str) -> str:
    """The whole file decoded; a bad byte raises :class:`InputFormatError` naming line, byte offset and column.

    ``hint`` ends the message (e.g. which encoding to try).
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise InputFormatError(_decode_error_message(path, data, err, encoding, hint)) from None
    control = _C1.search(text)
    if control is not None:
        line = text.count("\n", 0, control.start()) + 1
        column = control.start() - text.rfind("\n", 0, control.start())
        raise InputFormatError(
            f"{path}: line {line}: control character U+{ord(control.group()):04X} at column {column}, never text: "
            f"the file is probably Windows-1252; {_cp1252_hint(hint)}"
        )
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


_C1 = re.compile("[\x80-\x9f]")


def _cp1252_hint(hint: str) -> str:
    """The caller's hint with cp1252 as the encoding to try."""
    return hint.replace("latin-1", "cp1252") if "latin-1" in hint else f"read it as cp1252 ({hint})"


def _decode_error_message(
    path: str | os.PathLike, data: bytes, err: UnicodeDecodeError, encoding: str, hint: str
) -> str:
    """``<file>: line N: not UTF-8 (byte 0x.. at byte offset O, column C); <hint>`` (1-based line and column)."""
    line_start = data.rfind(b"\n", 0, err.start) + 1
    line = data.count(b"\n", 0, err.start) + 1
    name = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
    byte = data[err.start]
    return (
        f"{path}: line {line}: not {name} (byte 0x{byte:02x} at byte offset {err.start}, "
        f"column {err.start - line_start + 1}); {_cp1252_hint(hint) if 0x80 <= byte <= 0x9F else hint}"
    )


def text_lines(text: str) -> list[str]:
    """Lines of ``text`` split at ``\\n``, ``\\r\\n`` and ``\\r`` only (no line ends kept; a final
    line end does not add an empty line)."""
    return [line.rstrip("\n") for line in io.StringIO(text, newline=None)]


def read_lines(path: str | os.PathLike, encoding: str, hint: str) -> list[str]:
    """:func:`text_lines` of :func:`read_text`; a missing file is a ``FileNotFoundError`` naming it."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"missing input file: {path}")
    return text_lines(read_text(path, encoding, hint))


def resolve_encoding(path: str | os.PathLike, encoding: str | None, release_default: str) -> str:
    """``encoding`` when given; else ``release_default``, except that a latin-1 default gives way to
    UTF-8 when the file is valid UTF-8 and not plain ASCII (logged, as it departs from the release)."""
    if encoding:
        return encoding
    if codecs.lookup(release_default).name != "iso8859-1":
        return release_default
    data = Path(path).read_bytes()
    if data.isascii():
        return release_default
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return release_default
    logger.info("%s: valid UTF-8 with non-ASCII titles, read as UTF-8 (the release itself is latin-1)", path)
    return "utf-8"
