"""Stage ``read``: the sessions (the config's shard of them) and the catalogue, checked before any model loads."""

from __future__ import annotations

import logging
import os

from ...errors import setting_hint
from ..config import BuildConfig
from ..inputs.catalogue import Catalogue, read_catalogue
from ..inputs.clicks import looks_like_click_log, read_click_sessions
from ..inputs.ids import item_key
from ..inputs.sessions import SessionSet, read_sessions
from ..inputs.text import InputFormatError

logger = logging.getLogger("llm4sbr_adapter.offline.pipeline")

__all__ = ["count_untitled_items", "read_inputs", "read_session_file", "require_sessions"]


def read_inputs(
    sessions: SessionSet | str | os.PathLike, catalogue: Catalogue | str | os.PathLike, config: BuildConfig
) -> tuple[SessionSet, Catalogue]:
    """The sessions (the config's shard of them) and the catalogue, read when given as files.

    Refuses, before any model loads: no sessions, an empty shard, and a ``top_f`` above the catalogue size.
    """
    sess = sessions if isinstance(sessions, SessionSet) else read_session_file(sessions, config)
    require_sessions(sess)
    cat = catalogue
    if not isinstance(cat, Catalogue):
        header = {"auto": None, "yes": True, "no": False}[config.items_header]
        cat = read_catalogue(cat, encoding=config.items_encoding, header=header)
    if config.shard:
        total, sess = len(sess), sess.shard(*config.shard)
        if not len(sess):
            k, n = config.shard
            raise InputFormatError(
                f"{sess.source}: shard {k}/{n} has no sessions ({total} sessions in all): use fewer shards"
            )
    if config.top_f > len(cat):
        raise ValueError(
            f"{setting_hint('top_f', config.top_f)} is larger than the catalogue {cat.source} ({len(cat)} items)"
        )
    logger.info("%d sessions from %s, %d catalogue items from %s", len(sess), sess.source, len(cat), cat.source)
    return sess, cat


def read_session_file(path: str | os.PathLike, config: BuildConfig) -> SessionSet:
    """A sessions file read with the config's settings: a click log (``sessions_format="clicks"``, or one
    detected under ``"auto"``) grouped into sessions as ``config.click_log`` says (column names when they
    are not common ones, ``gap``/``window`` for a log without a session column); any other file one
    session per row."""
    encoding, click = config.sessions_encoding, config.click_log
    if reads_as_click_log(path, config):
        target, on_empty = config.clicks_target, config.on_empty_session
        return read_click_sessions(
            path,
            columns=click.columns(),
            target=target,
            on_empty=on_empty,
            encoding=encoding,
            gap=click.gap,
            window=click.window,
        )
    return read_sessions(path, config.sessions_format, on_empty=config.on_empty_session, encoding=encoding)


def reads_as_click_log(path: str | os.PathLike, config: BuildConfig) -> bool:
    """Whether :func:`read_session_file` reads ``path`` as a click log (given, or detected under ``"auto"``)."""
    fmt = config.sessions_format
    headerless = config.click_log.log_columns is not None
    return fmt == "clicks" or (fmt == "auto" and (headerless or looks_like_click_log(path, config.sessions_encoding)))


def count_untitled_items(sess: SessionSet, cat: Catalogue) -> tuple[int, int]:
    """(distinct session items without a catalogue title, distinct session items)."""
    distinct = {item_key(item) for seq in sess.sequences for item in seq}
    return sum(1 for key in distinct if key not in cat), len(distinct)


def require_sessions(sess: SessionSet) -> None:
    """Refuse a build without sessions (an empty store is never what was meant) before any model loads."""
    if not len(sess):
        raise InputFormatError(
            f"{sess.source}: no sessions to build from (the file is empty, has only a header, or every "
            "session was empty and skipped)"
        )
