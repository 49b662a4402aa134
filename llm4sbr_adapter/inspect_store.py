"""Look inside an intent store: ``python -m llm4sbr_adapter.inspect_store STORE [--session ID]``.

Prints counts and the build metadata; for one session its items (with ``--sessions``), the LLM's
raw and cleaned answers per perspective and the top-f catalogue items (titles with ``--items``)
with their softmax weights. :func:`inspect_store` returns the same information as a dict.

Errors are one line, ``error: <message>`` on stderr (exit status 2 for usage, 1 for a failure;
``--log-level debug`` also prints the traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from .config import ConfigBase, ConfigError, setting
from .config_cli import add_config_arguments, config_from_args, hint_flags
from .errors import CliParser, add_log_level, flag_or_name, run_cli
from .offline.inputs.catalogue import Catalogue, read_catalogue
from .offline.inputs.clicks import looks_like_click_log, read_click_sessions
from .offline.inputs.ids import PICKLE_WARNING, item_key
from .offline.inputs.sessions import SessionSet, read_sessions
from .provenance import check_beside_store
from .store import IntentStore

__all__ = ["InspectConfig", "inspect_store", "answer_statistics", "format_report", "main"]


@dataclasses.dataclass
class InspectConfig(ConfigBase):
    """The settings of ``python -m llm4sbr_adapter.inspect_store`` (besides the store); its flags come from these."""

    FORMAT: ClassVar[str] = "llm4sbr_inspect_config"

    session: str | None = setting(None, "a session id to explain (row index for SR-GNN pickles).", metavar="ID")
    sessions: str | None = setting(
        None, "the sessions file the store was built from (shows the session's items).", metavar="PATH"
    )
    sessions_format: Literal["auto", "pickle", "tsv", "csv", "jsonl", "clicks"] = setting(
        "auto",
        "format of --sessions (auto: by extension; a pickle header is trusted only in .pkl/.pickle/.txt files).",
    )
    sessions_encoding: str = setting("utf-8", "text encoding of a TSV/CSV/JSONL --sessions file.", metavar="ENCODING")
    items: str | None = setting(None, "the item catalogue (shows titles next to item ids).", metavar="PATH")
    items_encoding: str = setting("utf-8", "text encoding of --items.")
    as_json: bool = setting(False, "print the information as JSON instead of text.", flag="--json")
    allow_mismatch: bool = setting(
        False,
        "show --sessions/--items even when they are not the files the store was built from (one warning line "
        "instead of an error).",
    )


def _read_sessions(path: str | os.PathLike, fmt: str, encoding: str) -> SessionSet:
    """A session-per-row file or pickle, or a click log (format ``clicks`` or detected from its header)."""
    if fmt == "clicks" or (fmt == "auto" and looks_like_click_log(path, encoding)):
        return read_click_sessions(path, on_empty="skip", encoding=encoding)
    return read_sessions(path, fmt, on_empty="skip", encoding=encoding)


def _parse_session_id(store: IntentStore, text: str | int) -> int | str:
    if store.metadata.id_kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{store.path} has integer session ids; {text!r} is not an integer") from None
    return str(text)


def inspect_store(
    path: str | os.PathLike,
    session_id: int | str | None = None,
    *,
    sessions: SessionSet | str | os.PathLike | None = None,
    items: Catalogue | str | os.PathLike | None = None,
    items_encoding: str = "utf-8",
    sessions_format: str = "auto",
    sessions_encoding: str = "utf-8",
    allow_mismatch: bool = False,
) -> dict[str, Any]:
    """Summary of a store and, with ``session_id``, that session's answers and top-f items.

    A ``sessions`` file is read by :func:`read_sessions` with ``sessions_format`` and
    ``sessions_encoding`` (a pickle can run code: only open pickles from a trusted source), or as a
    click log (``"clicks"``, or detected; columns by their common spellings, the last click held out as
    the builder's default does); its empty sessions are skipped, as a build with ``on_empty="skip"`` does.

    Returns a dict with ``path``, ``num_sessions``, ``perspectives``, ``text_dim``, ``metadata`` (the
    build metadata without the long prompt templates, which are under ``prompts``), ``empty_answers``
    per perspective, ``intent_norms`` (mean L2 norm per perspective) and, for a session, ``session``:
    ``{"id", "items": [{"item_id", "title"}] (when ``sessions`` is given), "perspectives": {name:
    {"answer", "raw_answer", "top_items": [{"item_id", "title", "weight"}]}}}``.

    ``sessions`` and ``items`` must be the files the store was built from (its ``sessions_sha256`` and
    ``catalogue_sha256``); others are an error, or one warning line with ``allow_mismatch=True``.
    """
    store = IntentStore.open(path)
    cat = items if isinstance(items, Catalogue) or items is None else read_catalogue(items, encoding=items_encoding)
    _check_beside(store, cat, "catalogue", allow_mismatch)
    arrays = store.to_arrays()
    info = _store_summary(store, arrays)
    sess = None
    if sessions is not None:
        sess = (
            sessions
            if isinstance(sessions, SessionSet)
            else _read_sessions(sessions, sessions_format, sessions_encoding)
        )
        _check_beside(store, sess, "sessions", allow_mismatch)
        info["answer_stats"] = answer_statistics(store, sess, arrays)
    if session_id is None:
        return info
    info["session"] = _explain_session(store, _parse_session_id(store, session_id), sess, cat)
    return info


def _check_beside(store: IntentStore, shown: Catalogue | SessionSet | None, what: str, allow_mismatch: bool) -> None:
    """A catalogue or sessions file shown beside ``store`` must be the one it was built from (by sha256)."""
    if shown is None:
        return
    recorded = store.metadata.catalogue_sha256 if what == "catalogue" else store.metadata.sessions_sha256
    label = flag_or_name("items", "--items") if what == "catalogue" else flag_or_name("sessions", "--sessions")
    check_beside_store(
        store.path, recorded, shown.sha256, what=what, label=label, source=shown.source, allow_mismatch=allow_mismatch
    )


def _store_summary(store: IntentStore, arrays: dict[str, Any]) -> dict[str, Any]:
    """The store's shape, metadata and prompts, empty answers and mean intent norm per perspective."""
    meta = store.metadata
    info: dict[str, Any] = {
        "path": str(store.path),
        "num_sessions": store.num_sessions,
        "perspectives": store.perspectives,
        "text_dim": store.text_dim,
        "prompts": dict(meta.prompts),
        "metadata": {k: v for k, v in meta.__dict__.items() if k != "prompts"},
        "empty_answers": {},
        "intent_norms": {},
    }
    for name in store.perspectives:
        answers = arrays["answers"].get(name)
        if answers is not None:
            info["empty_answers"][name] = sum(1 for a in answers if not a)
        vecs = np.asarray(store.vectors(name), dtype=np.float32)
        info["intent_norms"][name] = float(np.linalg.norm(vecs, axis=1).mean()) if len(vecs) else 0.0
    return info


def _explain_session(
    store: IntentStore, sid: int | str, sess: SessionSet | None, cat: Catalogue | None
) -> dict[str, Any]:
    """One session: its items (with ``sess``) and per perspective its answers and titled top-f items."""
    explained = store.explain(sid)  # raises KeyError naming the store when absent
    entry: dict[str, Any] = {"id": sid, "perspectives": {}}
    if sess is not None:
        keys = [item_key(i) for i in sess.ids.tolist()]
        if item_key(sid) not in keys:
            raise KeyError(f"session {sid!r} is not in sessions file {sess.source}")
        seq = sess.sequences[keys.index(item_key(sid))]
        entry["items"] = [{"item_id": it, "title": cat.lookup(it) if cat else None} for it in seq]
    for name, ex in explained.items():
        tops = [
            {"item_id": it, "title": cat.lookup(it) if cat else None, "weight": float(w)}
            for it, w in zip(
                ex.get("top_items", []), ex.get("top_weights", [None] * len(ex.get("top_items", []))), strict=True
            )
        ]
        entry["perspectives"][name] = {
            "answer": ex.get("answer"),
            "raw_answer": ex.get("raw_answer"),
            "top_items": tops,
        }
    return entry


def answer_statistics(store: IntentStore, sessions: SessionSet, arrays: dict[str, Any] | None = None) -> dict[str, Any]:
    """How the LLM's snapped answers relate to the sessions they came from, per perspective.

    For the sessions of ``sessions`` that are in the store: ``in_session`` is the share whose top-1
    catalogue item is one of the session's own items (the LLM repeated something it was shown),
    ``last_item`` the share whose top-1 item is the session's last item, ``distinct_top1`` the number
    of different top-1 items; ``same_top1_all_perspectives`` the share of sessions whose perspectives
    all snapped to the same top-1 item. Empty when the store has no top-f items (``top_f = 0``).
    """
    arrays = arrays if arrays is not None else store.to_arrays()
    item_ids = arrays["item_ids"]
    if item_ids is None or not arrays["top_items"]:
        return {}
    rows, found = store.rows(sessions.ids)
    present = [sessions.sequences[i] for i in np.flatnonzero(found)]
    seqs = [set(map(item_key, seq)) for seq in present]
    last = [item_key(seq[-1]) if len(seq) else None for seq in present]
    rows = np.asarray(rows)[found]
    keys = np.array([item_key(x) for x in item_ids.tolist()], dtype=object)
    out: dict[str, Any] = {"sessions": int(found.sum()), "perspectives": {}}
    top1 = {}
    for name, tops in arrays["top_items"].items():
        idx = np.asarray(tops)[rows, 0]
        top1[name] = [keys[i] if i >= 0 else None for i in idx]
        n = max(1, len(rows))
        out["perspectives"][name] = {
            "in_session": sum(t in sq for t, sq in zip(top1[name], seqs, strict=True)) / n,
            "last_item": sum(t is not None and t == lt for t, lt in zip(top1[name], last, strict=True)) / n,
            "distinct_top1": len({t for t in top1[name] if t is not None}),
        }
    if len(top1) > 1:
        per_session = list(zip(*top1.values(), strict=True))
        out["same_top1_all_perspectives"] = sum(len(set(ts)) == 1 for ts in per_session) / max(1, len(per_session))
    return out


def format_report(info: dict[str, Any]) -> str:
    """Human-readable text for :func:`inspect_store`'s dict."""
    meta = info["metadata"]
    lines = [
        f"store:          {info['path']}",
        f"sessions:       {info['num_sessions']} ({meta.get('id_kind')} ids, from {meta.get('sessions_source') or '?'}"
        f"{', shard ' + meta['shard'] if meta.get('shard') else ''})",
        f"perspectives:   {', '.join(info['perspectives'])}  (dim {info['text_dim']}, {meta.get('dtype')})",
        f"text encoder:   {meta.get('text_encoder')}",
        f"llm:            {meta.get('llm')}",
        f"top_f:          {meta.get('top_f')}",
        f"prompt_sha256:  {meta.get('prompt_sha256')}",
        f"catalogue:      sha256 {meta.get('catalogue_sha256')}",
        f"sessions file:  sha256 {meta.get('sessions_sha256')}",
        f"created:        {meta.get('created_at')}",
        f"empty answers:  {info['empty_answers']}",
        "mean |intent|:  " + ", ".join(f"{k}={v:.3f}" for k, v in info["intent_norms"].items()),
    ]
    stats = info.get("answer_stats")
    if stats:
        lines.append(f"answers vs the {stats['sessions']} sessions (top-1 snapped item):")
        for name, st in stats["perspectives"].items():
            lines.append(
                f"  {name}: one of the session's items {100 * st['in_session']:.1f} %, its last item "
                f"{100 * st['last_item']:.1f} %, {st['distinct_top1']} distinct items"
            )
        if "same_top1_all_perspectives" in stats:
            lines.append(f"  same top-1 item in every perspective: {100 * stats['same_top1_all_perspectives']:.1f} %")
    extra = meta.get("extra") or {}
    if extra:
        lines.append(f"build settings: {json.dumps(extra, ensure_ascii=False, sort_keys=True)}")
    session = info.get("session")
    if session:
        lines.append("")
        lines.append(f"session {session['id']!r}")
        if "items" in session:
            lines.append("  items (oldest first):")
            for it in session["items"]:
                lines.append(f"    {it['item_id']}  {it['title'] if it['title'] is not None else ''}".rstrip())
        for name, ex in session["perspectives"].items():
            lines.append(f"  [{name}]")
            lines.append(f"    raw answer:     {ex['raw_answer']!r}")
            lines.append(f"    cleaned answer: {ex['answer']!r}")
            if ex["top_items"]:
                lines.append("    top items (weight  id  title):")
                for t in ex["top_items"]:
                    w = "" if t["weight"] is None else f"{t['weight']:.3f}"
                    lines.append(f"      {w:>6}  {t['item_id']}  {t['title'] or ''}".rstrip())
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m llm4sbr_adapter.inspect_store``."""
    p = CliParser(
        prog="python -m llm4sbr_adapter.inspect_store",
        description="Show an intent store's counts and build metadata, and for one session its answers "
        "and the top-f catalogue items its intents were snapped to.",
        epilog=f"Security: {PICKLE_WARNING}. --sessions unpickles only a .pkl/.pickle file, a .txt file that "
        "starts with a pickle header (SR-GNN's train.txt/test.txt) or a file given with --sessions-format "
        "pickle. Errors are one line, 'error: <message>' on stderr (exit status 2 for usage, 1 for a failure).",
    )
    p.add_argument("store", help="intent store (.safetensors) to inspect.")
    add_config_arguments(p, InspectConfig)
    add_log_level(p, "WARNING")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1: a failure; usage errors exit with status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level)
    try:
        config = config_from_args(InspectConfig, args)
    except ConfigError as err:
        parser.error(str(err))
    return run_cli(lambda: _inspect(args.store, config), args.log_level, hint_flags(InspectConfig))


def _inspect(store: str, config: InspectConfig) -> int:
    """Print the report (or JSON) for the store and the session of ``config``."""
    info = inspect_store(
        store,
        config.session,
        sessions=config.sessions,
        items=config.items,
        items_encoding=config.items_encoding,
        sessions_format=config.sessions_format,
        sessions_encoding=config.sessions_encoding,
        allow_mismatch=config.allow_mismatch,
    )
    if config.as_json:
        print(json.dumps(info, ensure_ascii=False, indent=2, default=str))
    else:
        print(format_report(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
