"""Stage one of LLM4SBR end to end: sessions + catalogue -> prompts -> LLM answers -> intent store.

Stages (each timed in :attr:`BuildReport.seconds`):

1. ``read``      read and validate the sessions and the catalogue; take the shard's slice. No
                 sessions (an empty or header-only file, every session empty and skipped, an empty
                 shard) is an error here, before any model loads: an empty store is never written.
2. ``render``    one prompt per (session, perspective); targets are never shown.
3. ``llm_load``  create the LLM backend (skipped in a dry run).
4. ``answer``    :func:`answer_prompts` with the SQLite answer cache: identical prompts are asked once,
                 finished batches are committed at once, so a killed build resumes where it stopped;
                 builds sharing a cache claim their batches, so no prompt is asked by both.
5. ``clean``     :func:`clean_answer` on every raw answer.
6. ``encode``    (after ``encoder_load``) embed the distinct cleaned answers with the text encoder
                 (``[n, D]``, L2-normalised).
7. ``catalogue`` embed every catalogue title (cached on disk by encoder + catalogue hash).
8. ``localize``  snap each answer to the catalogue: FAISS top-f by cosine, softmax over the f
                 cosines, weighted sum of those f item embeddings (:class:`ItemLocalizer`).
9. ``write``     :func:`write_store` (atomic) with the build's metadata and the top-f explanations.

Sessions with no titled item (possible only with ``on_missing_title="skip_item"``, which leaves
untitled items out of the prompt) are not asked: showing the LLM an empty list or bare ids makes it
name items unrelated to the session. They get a zero intent (``top_items = -1``), are counted in
:attr:`BuildReport.untitled_sessions` and in the store metadata (``extra["untitled_sessions"]``);
their ids stay in the store, so a training split's store still covers every row (an enhancer keeps
a zero intent at zero). The dry run reports the count of untitled items already.

Empty answers: when :func:`clean_answer` leaves nothing, the default policy ``"session_mean"``
uses the mean of the L2-normalised title embeddings of the items that perspective's prompt showed
(re-normalised) as the query; ``"raw"`` embeds the raw completion instead (falling back to the
session mean when that is blank too); ``"error"`` stops the build. The count per perspective is in
the report. A query that is still all zeros (no titled item in view) gets a zero intent and
``top_items = -1``.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import option_hint
from ..store import StoreMetadata, write_store
from .config import DEFAULT_TOP_F, BuildConfig, parse_shard
from .inputs.sessions import (
    Catalogue,
    InputFormatError,
    SessionSet,
    item_key,
    read_catalogue,
    read_sessions,
)
from .prompts import (
    DEFAULT_PERSPECTIVES,
    Perspective,
    clean_answer,
    item_lines,
    load_perspectives,
    prompt_sha256,
    render_prompt,
)

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_TOP_F", "BuildConfig", "BuildReport", "build_intent_store", "default_cache_path", "parse_shard"]


def default_cache_path(output: str | os.PathLike) -> Path:
    """The answer cache beside a store: ``<output>.answers.sqlite3``."""
    return Path(str(output) + ".answers.sqlite3")


@dataclass
class BuildReport:
    """What a build did."""

    sessions: int = 0
    perspectives: list[str] = field(default_factory=list)
    prompts_total: int = 0
    unique_prompts: int = 0
    asked: int = 0
    cached: int = 0
    empty_answers: dict[str, int] = field(default_factory=dict)
    zero_intents: int = 0
    untitled_items: int = 0
    distinct_items: int = 0
    untitled_sessions: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    output: Path | None = None
    cache_path: Path | None = None
    exported_prompts: Path | None = None
    shard: str = ""
    dry_run: bool = False
    llm: str = ""
    text_encoder: str = ""
    sample_prompts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("output", "cache_path", "exported_prompts"):
            d[key] = None if d[key] is None else str(d[key])
        return d

    def summary(self) -> str:
        """A short multi-line, human-readable summary."""
        lines = [
            f"sessions:        {self.sessions}" + (f" (shard {self.shard})" if self.shard else ""),
            f"perspectives:    {', '.join(self.perspectives)}",
            f"prompts:         {self.prompts_total} ({self.unique_prompts} distinct)",
        ]
        lines.append(f"untitled items:  {self.untitled_items} of the sessions' {self.distinct_items} distinct items")
        if self.untitled_sessions:
            lines.append(
                f"untitled sessions: {self.untitled_sessions} (no titled item: not asked, zero intent; skip_item)"
            )
        if self.dry_run:
            lines.append("LLM:             not called (dry run)")
        else:
            lines.append(f"LLM answers:     {self.asked} asked, {self.cached} from cache ({self.llm})")
            empty = ", ".join(f"{k}={v}" for k, v in self.empty_answers.items())
            lines.append(f"empty answers:   {sum(self.empty_answers.values())} ({empty})")
            if self.zero_intents:
                lines.append(f"zero intents:    {self.zero_intents} (no answer and no titled item in view)")
            lines.append(f"text encoder:    {self.text_encoder}")
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        lines.append(f"seconds:         {stages} (total {sum(self.seconds.values()):.1f}s)")
        if self.exported_prompts:
            lines.append(f"prompts JSONL:   {self.exported_prompts}")
        if self.cache_path and not self.dry_run:
            lines.append(f"answer cache:    {self.cache_path}")
        lines.append(f"output:          {self.output if self.output else '(none)'}")
        return "\n".join(lines)


class _Timer:
    def __init__(self, seconds: dict[str, float], name: str) -> None:
        self.seconds, self.name = seconds, name

    def __enter__(self) -> _Timer:
        self.start = time.perf_counter()
        logger.info("stage %s ...", self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds[self.name] = self.seconds.get(self.name, 0.0) + time.perf_counter() - self.start


def _warn_unused_timeout(llm: Any, request_timeout: float | None) -> None:
    """Warn when a request timeout is set for an LLM that is not an ``openai:`` spec it applies to."""
    if request_timeout is not None and not (isinstance(llm, str) and llm.startswith("openai:")):
        logger.warning("request_timeout=%s is ignored: it applies to openai: backends only", request_timeout)


def _resolve_llm(
    llm: Any, device: str, batch_size: int = 8, threads: int = 0, request_timeout: float | None = None
) -> tuple[Any, bool]:
    """Return (backend, created_here); ``request_timeout`` (seconds) applies to ``openai:`` specs only."""
    from .llm.base import LLMBackend

    _warn_unused_timeout(llm, request_timeout)
    if isinstance(llm, LLMBackend):
        return llm, False
    if llm.startswith("py:"):
        # "py:module:factory": a zero-argument callable returning an LLMBackend (custom backends).
        try:
            module_name, attr = llm[3:].rsplit(":", 1)
        except ValueError:
            raise ValueError(f"llm spec {llm!r}: expected py:MODULE:FACTORY") from None
        backend = getattr(importlib.import_module(module_name), attr)()
        if not isinstance(backend, LLMBackend):
            raise TypeError(f"{llm}: factory returned {type(backend).__name__}, not an LLMBackend")
        return backend, True
    from .llm import make_backend

    if llm in ("default", "default:int8") or llm.startswith("hf:"):  # lazy: not loaded if all answers are cached
        return make_backend(llm, device=device, batch_size=batch_size, lazy=True), True
    if llm.startswith("llamacpp:"):  # offload every layer when a GPU device is asked for
        return make_backend(llm, n_gpu_layers=0 if device == "cpu" else -1, n_threads=threads or None), True
    if llm.startswith("openai:") and request_timeout is not None:
        return make_backend(llm, timeout=float(request_timeout)), True
    return make_backend(llm), True


def _resolve_encoder(encoder: Any, device: str) -> Any:
    from .encode import TextEncoder

    if encoder is None:
        return TextEncoder(device=device)
    if isinstance(encoder, str):
        return TextEncoder(model_path=encoder, device=device)
    return encoder


def _resolve_perspectives(value: str | Sequence[Perspective] | None) -> list[Perspective]:
    """The default perspectives, those of a JSON file, or the (already checked) list given."""
    if value is None:
        return list(DEFAULT_PERSPECTIVES)
    if isinstance(value, str):
        return load_perspectives(value)
    return list(value)


def build_intent_store(
    sessions: SessionSet | str | os.PathLike,
    catalogue: Catalogue | str | os.PathLike,
    output: str | os.PathLike | None,
    config: BuildConfig | None = None,
    **overrides: Any,
) -> BuildReport:
    """Build an intent store from sessions and item titles (stage one of LLM4SBR).

    Args:
        sessions: a :class:`SessionSet` or a sessions file (read with the config's ``sessions_format``,
            ``sessions_encoding``, ``on_empty_session`` and, for a click log, ``clicks_target``; see
            :func:`read_session_file`).
        catalogue: a :class:`Catalogue` or a catalogue file (read with ``items_encoding`` and ``items_header``).
        output: the store to write (``.safetensors``); may be ``None`` only with ``dry_run``.
        config: the settings (default: :class:`BuildConfig` ``()``); each field is documented there and
            is the command-line flag of the same name.
        overrides: settings replacing those of ``config``, e.g. ``top_f=3``; an unknown name or a bad
            value is a :class:`~llm4sbr_adapter.config.ConfigError` naming it.

    Returns:
        A :class:`BuildReport`; ``report.output`` is the store path (``None`` for a dry run).
    """
    config = config if config is not None else BuildConfig()
    if overrides:
        config = config.replace(**overrides)
    return run_build(sessions, catalogue, output, config)


def run_build(
    sessions: SessionSet | str | os.PathLike,
    catalogue: Catalogue | str | os.PathLike,
    output: str | os.PathLike | None,
    config: BuildConfig,
) -> BuildReport:
    """:func:`build_intent_store` with the settings in a :class:`BuildConfig`."""
    from tqdm.auto import tqdm

    cfg = config
    generation = cfg.generation
    if output is None and not cfg.dry_run:
        raise ValueError("output is required unless dry_run=True")
    if cfg.threads and not cfg.dry_run:
        import torch

        torch.set_num_threads(int(cfg.threads))
    shard = cfg.shard
    persp = _resolve_perspectives(cfg.perspectives)
    report = BuildReport(
        perspectives=[p.name for p in persp], dry_run=cfg.dry_run, shard=f"{shard[0]}/{shard[1]}" if shard else ""
    )
    seconds = report.seconds

    # 1. read ---------------------------------------------------------------------------
    with _Timer(seconds, "read"):
        sess = sessions if isinstance(sessions, SessionSet) else read_session_file(sessions, cfg)
        _require_sessions(sess)
        cat = catalogue
        if not isinstance(cat, Catalogue):
            header = {"auto": None, "yes": True, "no": False}[cfg.items_header]
            cat = read_catalogue(cat, encoding=cfg.items_encoding, header=header)
        if shard:
            total, sess = len(sess), sess.shard(*shard)
            if not len(sess):
                raise InputFormatError(
                    f"{sess.source}: shard {shard[0]}/{shard[1]} has no sessions "
                    f"({total} sessions in all): use fewer shards"
                )
        report.sessions = len(sess)
        report.untitled_items, report.distinct_items = _count_untitled_items(sess, cat)
        if cfg.top_f > len(cat):
            raise ValueError(
                f"{option_hint('top_f', '--top-f', cfg.top_f)} is larger than the catalogue "
                f"{cat.source} ({len(cat)} items)"
            )
        logger.info("%d sessions from %s, %d catalogue items from %s", len(sess), sess.source, len(cat), cat.source)

    # 2. render -------------------------------------------------------------------------
    n = len(sess)
    prompts: dict[str, list[str | None]] = {p.name: [] for p in persp}  # None: an untitled session, not asked
    view_rows: dict[str, list[list[int]]] = {p.name: [] for p in persp}  # catalogue rows shown per prompt
    untitled: set[int] = set()  # sessions with no titled item under skip_item: no prompt, a zero intent
    with _Timer(seconds, "render"):
        ids = sess.ids.tolist()
        for i in tqdm(range(n), desc="render prompts", unit="session", disable=not cfg.progress or n < 1000):
            seq = sess.sequences[i]
            lines = item_lines(
                seq,
                cat,
                on_missing_title=cfg.on_missing_title,
                session_id=ids[i],
                source=f"{sess.source}: {sess.line_label} {sess.lines[i]}" if sess.lines else sess.source,
            )
            if not lines:  # only under skip_item: the session is not asked and gets a zero intent
                untitled.add(i)
                for p in persp:
                    prompts[p.name].append(None)
                    view_rows[p.name].append([])
                continue
            # catalogue rows aligned with ``lines`` (None for an id-only line), truncated the same way
            aligned = [cat.row(item) for item in seq]
            if cfg.on_missing_title == "skip_item":
                aligned = [r for r in aligned if r is not None]
            for p in persp:
                prompts[p.name].append(render_prompt(p, lines, cfg.max_items))
                view = aligned[-cfg.max_items :]
                view = view[-p.last_n :] if p.last_n else view
                view_rows[p.name].append([r for r in view if r is not None])
        flat = [prompts[p.name][i] for p in persp for i in range(n)]
        asked_at = [k for k, prompt in enumerate(flat) if prompt is not None]
        asked_prompts = [prompt for prompt in flat if prompt is not None]  # in the order of asked_at
        report.untitled_sessions = len(untitled)
        report.prompts_total = len(asked_at)
        report.unique_prompts = len(set(asked_prompts))
        for p in persp:
            for i in [i for i in range(n) if i not in untitled][:2]:
                report.sample_prompts.append(
                    {"session_id": ids[i], "perspective": p.name, "prompt": prompts[p.name][i]}
                )
        if cfg.export_prompts:
            report.exported_prompts = _export_prompts(Path(cfg.export_prompts), ids, persp, prompts)
    logger.info("%d prompts (%d distinct)", report.prompts_total, report.unique_prompts)
    if cfg.dry_run:
        return report

    # 3-4. LLM --------------------------------------------------------------------------
    from .llm.cache import AnswerCache, answer_prompts

    output = Path(output)
    report.cache_path = Path(cfg.cache_path) if cfg.cache_path else default_cache_path(output)
    with _Timer(seconds, "llm_load"):
        backend, owned = _resolve_llm(cfg.llm, cfg.device, cfg.batch_size, cfg.threads, cfg.request_timeout)
        report.llm = backend.model_id
    try:
        with _Timer(seconds, "answer"):
            cache = AnswerCache(report.cache_path)
            try:
                # batch_size is the commit unit; a server backend with more connections than that gets
                # several batches in flight at once (answer_prompts), so it is not starved either.
                labels = [f"session {sid!r}, perspective {p.name!r}" for p in persp for sid in ids]
                result = answer_prompts(
                    backend,
                    asked_prompts,
                    generation,
                    cache,
                    batch_size=cfg.batch_size,
                    progress=cfg.progress,
                    labels=[labels[k] for k in asked_at],
                )
            finally:
                close = getattr(cache, "close", None)
                if close:
                    close()
            report.asked, report.cached = int(result.asked), int(result.cached)
    finally:
        if owned:
            backend.close()
    answers = [""] * len(flat)  # untitled sessions keep "" (never asked)
    for k, answer in zip(asked_at, result.answers, strict=True):
        answers[k] = answer
    raw = {p.name: answers[j * n : (j + 1) * n] for j, p in enumerate(persp)}

    # 5. clean --------------------------------------------------------------------------
    with _Timer(seconds, "clean"):
        cleaned = {name: [clean_answer(a) for a in answers] for name, answers in raw.items()}
        report.empty_answers = {
            name: sum(1 for i, a in enumerate(answers) if not a and i not in untitled)
            for name, answers in cleaned.items()
        }
        if cfg.on_empty_answer == "error" and any(report.empty_answers.values()):
            name = next(k for k, v in report.empty_answers.items() if v)
            i = next(i for i, a in enumerate(cleaned[name]) if not a and i not in untitled)
            raise ValueError(
                f"session {ids[i]!r}, perspective {name!r}: the LLM answer {raw[name][i]!r} is empty after cleaning "
                f"({option_hint('on_empty_answer', '--on-empty-answer', 'error')})"
            )

    # 6. encode answers -----------------------------------------------------------------
    with _Timer(seconds, "encoder_load"):
        enc = _resolve_encoder(cfg.encoder, cfg.device)
        report.text_encoder = enc.name
    with _Timer(seconds, "encode"):
        texts: dict[str, int] = {}
        for name in cleaned:
            for i, text in enumerate(cleaned[name]):
                if not text and cfg.on_empty_answer == "raw":
                    text = " ".join(raw[name][i].split())
                if text:
                    texts.setdefault(text, len(texts))
        text_list = list(texts)
        text_emb = (
            enc.encode(
                text_list,
                batch_size=64,
                normalize_embeddings=True,
                show_progress_bar=cfg.progress and len(text_list) > 640,
            )
            if text_list
            else np.zeros((0, enc.dim), np.float32)
        )

    # 7. catalogue embeddings -----------------------------------------------------------
    from .encode import catalogue_embeddings

    with _Timer(seconds, "catalogue"):
        cache_dir = cfg.item_cache_dir if cfg.item_cache_dir is not None else output.parent / "llm4sbr_item_cache"
        item_emb = catalogue_embeddings(enc, cat.item_ids, cat.titles, cache_dir=cache_dir)

    # 8. localize -----------------------------------------------------------------------
    from .localize import ItemLocalizer

    intents: dict[str, np.ndarray] = {}
    top_items: dict[str, np.ndarray] = {}
    top_weights: dict[str, np.ndarray] = {}
    with _Timer(seconds, "localize"):
        localizer = ItemLocalizer(item_emb, index=cfg.index)
        for name in cleaned:
            queries = np.zeros((n, enc.dim), np.float32)
            for i, text in enumerate(cleaned[name]):
                if not text and cfg.on_empty_answer == "raw":
                    text = " ".join(raw[name][i].split())
                if text:
                    queries[i] = text_emb[texts[text]]
                elif view_rows[name][i]:
                    mean = item_emb[view_rows[name][i]].mean(axis=0)
                    norm = float(np.linalg.norm(mean))
                    if norm > 0:
                        queries[i] = mean / norm
            zero = ~np.any(queries != 0, axis=1)
            vecs, idx, w = localizer.localize(np.ascontiguousarray(queries), cfg.top_f, cfg.softmax_temperature)
            vecs = np.array(vecs, dtype=np.float32)
            idx = np.array(idx, dtype=np.int64).reshape(n, -1)
            w = np.array(w, dtype=np.float32).reshape(n, -1)
            if zero.any():
                vecs[zero] = 0
                idx[zero] = -1
                w[zero] = 0
                report.zero_intents += int(zero.sum())
            intents[name], top_items[name], top_weights[name] = vecs, idx, w

    # 9. write --------------------------------------------------------------------------
    with _Timer(seconds, "write"):
        meta = StoreMetadata(
            perspectives=[p.name for p in persp],
            text_dim=int(enc.dim),
            text_encoder=enc.name,
            llm=backend.model_id,
            top_f=int(cfg.top_f),
            prompts={p.name: p.template for p in persp},
            prompt_sha256=prompt_sha256(persp, cfg.max_items),
            catalogue_sha256=cat.sha256,
            sessions_source=sess.source,
            sessions_sha256=sess.sha256,
            shard=report.shard,
            extra={
                "builder": "llm4sbr_adapter.offline",
                "qualifiers": {p.name: p.qualifier for p in persp},
                "last_n": {p.name: p.last_n for p in persp},
                "max_items": int(cfg.max_items),
                "generation": generation.to_dict() if hasattr(generation, "to_dict") else str(generation),
                "softmax_temperature": float(cfg.softmax_temperature),
                "index": cfg.index,
                "on_missing_title": cfg.on_missing_title,
                "on_empty_answer": cfg.on_empty_answer,
                "catalogue_source": cat.source,
                "catalogue_html_unescaped": int(cat.html_unescaped),
                "untitled_sessions": len(untitled),
                # every setting, loadable with BuildConfig.from_dict (the shard is the field above)
                "build_config": cfg.replace(shard=None).to_payload(),
            },
        )
        keep_top = cfg.top_f > 0
        report.output = write_store(
            output,
            sess.ids,
            intents,
            meta,
            dtype=cfg.dtype,
            top_items=top_items if keep_top else None,
            top_weights=top_weights if keep_top else None,
            item_ids=cat.item_ids if keep_top else None,
            answers=cleaned,
            raw_answers=raw,
        )
    logger.info("build finished: %s (%.1f s)", report.output, sum(seconds.values()))
    return report


def read_session_file(
    path: str | os.PathLike, config: BuildConfig, click_columns: dict[str, Any] | None = None, **cut: Any
) -> SessionSet:
    """A sessions file read with the config's settings: a click log (``sessions_format="clicks"``, or one
    detected under ``"auto"``) grouped into sessions, with ``click_columns`` (roles, or ``names`` of a
    headerless log) and ``gap``/``window`` in ``cut`` when its columns do not have common names; any
    other file one session per row."""
    from .inputs.clicks import looks_like_click_log, read_click_sessions

    fmt, encoding = config.sessions_format, config.sessions_encoding
    headerless = (click_columns or {}).get("names") is not None
    if fmt == "clicks" or (fmt == "auto" and (headerless or looks_like_click_log(path, encoding))):
        target, on_empty = config.clicks_target, config.on_empty_session
        return read_click_sessions(
            path, columns=click_columns, target=target, on_empty=on_empty, encoding=encoding, **cut
        )
    return read_sessions(path, fmt, on_empty=config.on_empty_session, encoding=encoding)


def _count_untitled_items(sess: SessionSet, cat: Catalogue) -> tuple[int, int]:
    """(distinct session items without a catalogue title, distinct session items)."""
    distinct = {item_key(item) for seq in sess.sequences for item in seq}
    return sum(1 for key in distinct if key not in cat), len(distinct)


def _require_sessions(sess: SessionSet) -> None:
    """Refuse a build without sessions (an empty store is never what was meant) before any model loads."""
    if not len(sess):
        raise InputFormatError(
            f"{sess.source}: no sessions to build from (the file is empty, has only a header, or every "
            "session was empty and skipped)"
        )


def _export_prompts(path: Path, ids: list, persp: Sequence[Perspective], prompts: dict[str, list[str | None]]) -> Path:
    """Write every prompt as one JSON line (``session_id``, ``perspective``, ``prompt``, ``prompt_sha256``),
    the format :class:`~llm4sbr_adapter.offline.llm.replay.ReplayBackend` answers files refer to."""
    from .llm.replay import export_prompts

    records = (
        {"session_id": sid, "perspective": p.name, "prompt": prompt}
        for p in persp
        for sid, prompt in zip(ids, prompts[p.name], strict=True)
        if prompt is not None
    )
    out = export_prompts(path, records)
    logger.info("wrote %d prompts to %s", sum(p is not None for v in prompts.values() for p in v), out)
    return out
