"""Stage one of LLM4SBR end to end: sessions + catalogue -> prompts -> LLM answers -> intent store.

:func:`run_build` calls one function per stage, each usable on its own (each timed in
:attr:`BuildReport.seconds` under the name in the first column):

1. ``read``      :func:`read_inputs`: read and validate the sessions and the catalogue; take the shard's
                 slice. No sessions (an empty or header-only file, every session empty and skipped, an
                 empty shard) is an error here, before any model loads: an empty store is never written.
2. ``render``    :func:`render_prompts`: one prompt per (session, perspective), and the catalogue rows
                 each prompt shows; targets are never shown.
3. ``llm_load``  create the LLM backend (skipped in a dry run).
4. ``answer``    :func:`ask_llm`: :func:`answer_prompts` with the SQLite answer cache: identical prompts
                 are asked once, finished batches are committed at once, so a killed build resumes where
                 it stopped; builds sharing a cache claim their batches, so no prompt is asked by both.
5. ``clean``     :func:`clean_answers`: :func:`clean_answer` on every raw answer; then
                 :func:`query_texts` picks the text each answer is embedded as.
6. ``encode``    (after ``encoder_load``) :func:`encode_texts`: embed the distinct texts with the text
                 encoder (``[n, D]``, L2-normalised).
7. ``catalogue`` :func:`embed_catalogue`: embed every catalogue title (cached on disk by encoder +
                 catalogue hash).
8. ``localize``  :func:`with_session_means` (queries for answers without text), then
                 :func:`localize_intents`: FAISS top-f by cosine, softmax over the f cosines, weighted
                 sum of those f item embeddings (:class:`ItemLocalizer`).
9. ``write``     :func:`store_metadata` and :func:`write_intents` (:func:`write_store`, atomic) with the
                 build's metadata and the top-f explanations.

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

import contextlib
import importlib
import logging
import os
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import setting_hint
from ..store import StoreMetadata, write_store
from .candidates import candidate_lines
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
    Perspective,
    clean_answer,
    item_lines,
    prompt_sha256,
    render_prompt,
    resolve_perspectives,
    uses_candidates,
    visible_items,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TOP_F",
    "BuildConfig",
    "BuildReport",
    "LocalizedIntents",
    "RenderedPrompts",
    "ask_llm",
    "build_intent_store",
    "clean_answers",
    "default_cache_path",
    "embed_catalogue",
    "encode_texts",
    "localize_intents",
    "parse_shard",
    "query_texts",
    "read_inputs",
    "read_session_file",
    "render_prompts",
    "run_build",
    "store_metadata",
    "with_session_means",
    "write_intents",
]


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
            ``sessions_encoding`` and ``on_empty_session``; see :func:`read_sessions`).
        catalogue: a :class:`Catalogue` or a catalogue file (read with ``items_encoding``).
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
    """:func:`build_intent_store` with the settings in a :class:`BuildConfig`: the stages in order."""
    if output is None and not config.dry_run:
        raise ValueError("output is required unless dry_run=True")
    _set_threads(config)
    perspectives = resolve_perspectives(config.perspectives)
    report = BuildReport(perspectives=[p.name for p in perspectives], dry_run=config.dry_run)
    report.shard = f"{config.shard[0]}/{config.shard[1]}" if config.shard else ""
    stage = _stage_timer(report.seconds)
    with stage("read"):
        sess, cat = read_inputs(sessions, catalogue, config)
        report.sessions = len(sess)
        report.untitled_items, report.distinct_items = _count_untitled_items(sess, cat)
    with stage("render"):
        prompts = render_prompts(sess, cat, perspectives, config)
        _record_prompts(report, prompts, config)
    if config.dry_run:
        return report
    output = Path(output)  # type: ignore[arg-type]  # not None outside a dry run (checked above)
    raw = _answer_stage(prompts, config, report, stage, output)
    with stage("clean"):
        cleaned = clean_answers(raw, prompts.session_ids, config.on_empty_answer, prompts.untitled)
        report.empty_answers = _count_empty(cleaned, prompts.untitled)
    with stage("encoder_load"):
        encoder = _resolve_encoder(config.encoder, config.device)
        report.text_encoder = encoder.name
    texts = query_texts(cleaned, raw, config.on_empty_answer)
    with stage("encode"):
        vectors = encode_texts(encoder, texts, config.progress)
    with stage("catalogue"):
        cache_dir = config.item_cache_dir if config.item_cache_dir is not None else output.parent / "llm4sbr_item_cache"
        item_emb = embed_catalogue(encoder, cat, cache_dir)
    with stage("localize"):
        queries = with_session_means(vectors, texts, prompts.shown_rows, item_emb)
        located = localize_intents(queries, item_emb, config, own_rows(sess, cat, config))
        report.zero_intents = located.zero_intents
    with stage("write"):
        meta = store_metadata(
            config,
            perspectives,
            sess,
            cat,
            llm=report.llm,
            encoder=encoder,
            shard=report.shard,
            untitled=prompts.untitled,
        )
        report.output = write_intents(output, sess, cat, located, cleaned, raw, meta, config.dtype)
    logger.info("build finished: %s (%.1f s)", report.output, sum(report.seconds.values()))
    return report


# --------------------------------------------------------------------------- 1. read
def read_inputs(
    sessions: SessionSet | str | os.PathLike, catalogue: Catalogue | str | os.PathLike, config: BuildConfig
) -> tuple[SessionSet, Catalogue]:
    """The sessions (the config's shard of them) and the catalogue, read when given as files.

    Refuses, before any model loads: no sessions, an empty shard, and a ``top_f`` above the catalogue size.
    """
    sess = sessions if isinstance(sessions, SessionSet) else read_session_file(sessions, config)
    _require_sessions(sess)
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
    from .inputs.clicks import looks_like_click_log, read_click_sessions

    fmt, encoding, click = config.sessions_format, config.sessions_encoding, config.click_log
    headerless = click.log_columns is not None
    if fmt == "clicks" or (fmt == "auto" and (headerless or looks_like_click_log(path, encoding))):
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
    return read_sessions(path, fmt, on_empty=config.on_empty_session, encoding=encoding)


# --------------------------------------------------------------------------- 2. render
@dataclass
class RenderedPrompts:
    """One prompt per (perspective, session), and the catalogue rows of the titled items each prompt shows.

    A session without a titled item (``skip_item`` only) has no prompt (``None``) and no rows: it is not asked.
    """

    session_ids: list[Any]
    perspectives: list[Perspective]
    texts: dict[str, list[str | None]]  # perspective -> one prompt per session, in session order
    shown_rows: dict[str, list[list[int]]]  # perspective -> per session, catalogue rows in view
    untitled: set[int] = field(default_factory=set)  # sessions (rows) with no titled item

    def flat(self) -> list[str | None]:
        """Every prompt, perspective by perspective (the order answers come back in); ``None``: not asked."""
        return [text for p in self.perspectives for text in self.texts[p.name]]

    def labels(self) -> list[str]:
        """A name for each prompt of :meth:`flat`, for error messages."""
        return [f"session {sid!r}, perspective {p.name!r}" for p in self.perspectives for sid in self.session_ids]

    def asked(self) -> list[tuple[int, str]]:
        """``(position in flat(), prompt)`` of every prompt that is asked."""
        return [(k, text) for k, text in enumerate(self.flat()) if text is not None]


def render_prompts(
    sessions: SessionSet, catalogue: Catalogue, perspectives: Sequence[Perspective], config: BuildConfig
) -> RenderedPrompts:
    """Render every session for every perspective (targets are never shown)."""
    from tqdm.auto import tqdm

    n, ids = len(sessions), sessions.ids.tolist()
    out = RenderedPrompts(
        ids, list(perspectives), {p.name: [] for p in perspectives}, {p.name: [] for p in perspectives}
    )
    listed = [p for p in perspectives if uses_candidates(p)]
    candidates = candidate_lines(sessions, catalogue, config) if listed else None
    for i in tqdm(range(n), desc="render prompts", unit="session", disable=not config.progress or n < 1000):
        lines, rows = _session_view(sessions, i, ids[i], catalogue, config)
        if not lines:  # only under skip_item: the session is not asked and gets a zero intent
            out.untitled.add(i)
            for p in perspectives:
                out.texts[p.name].append(None)
                out.shown_rows[p.name].append([])
            continue
        for p in perspectives:
            shown = candidates[i] if candidates is not None and p in listed else None
            out.texts[p.name].append(render_prompt(p, lines, config.max_items, shown))
            view = visible_items(rows, p, config.max_items)  # the rows of the lines the prompt lists
            out.shown_rows[p.name].append([r for r in view if r is not None])
    return out


def _session_view(
    sessions: SessionSet, i: int, sid: Any, catalogue: Catalogue, config: BuildConfig
) -> tuple[list[str], list[int | None]]:
    """Session ``i``'s item lines and, aligned with them, each line's catalogue row (``None``: an id-only line)."""
    seq = sessions.sequences[i]
    where = f"{sessions.source}: {sessions.line_label} {sessions.lines[i]}" if sessions.lines else sessions.source
    lines = item_lines(
        seq, catalogue, on_missing_title=config.on_missing_title, session_id=sid, source=where, with_ids=config.item_ids
    )
    rows = [catalogue.row(item) for item in seq]
    if config.on_missing_title == "skip_item":
        rows = [r for r in rows if r is not None]
    return lines, rows


def _record_prompts(report: BuildReport, prompts: RenderedPrompts, config: BuildConfig) -> None:
    """Counts and a few sample prompts into the report; every prompt to ``config.export_prompts`` if set."""
    asked = [text for text in prompts.flat() if text is not None]
    report.prompts_total, report.unique_prompts = len(asked), len(set(asked))
    report.untitled_sessions = len(prompts.untitled)
    for p in prompts.perspectives:
        pairs = [(sid, text) for sid, text in zip(prompts.session_ids, prompts.texts[p.name], strict=True) if text]
        for sid, text in pairs[:2]:
            report.sample_prompts.append({"session_id": sid, "perspective": p.name, "prompt": text})
    if config.export_prompts:
        report.exported_prompts = _export_prompts(Path(config.export_prompts), prompts)
    logger.info("%d prompts (%d distinct)", report.prompts_total, report.unique_prompts)


# --------------------------------------------------------------------------- 3. answer
def ask_llm(
    backend: Any, prompts: RenderedPrompts, config: BuildConfig, cache_path: Path
) -> tuple[dict[str, list[str]], int, int]:
    """Raw answers per perspective (session order), and how many prompts were asked and read from the cache.

    The SQLite cache makes a killed build resume where it stopped; ``batch_size`` is the commit unit (a
    server backend with more connections than that gets several batches in flight at once).
    """
    from .llm.cache import AnswerCache, answer_prompts

    flat, labels, asked = prompts.flat(), prompts.labels(), prompts.asked()
    cache = AnswerCache(cache_path)
    try:
        result = answer_prompts(
            backend,
            [text for _, text in asked],
            config.generation,
            cache,
            batch_size=config.batch_size,
            progress=config.progress,
            labels=[labels[k] for k, _ in asked],
        )
    finally:
        cache.close()
    answers = [""] * len(flat)  # sessions not asked keep ""
    for (k, _), answer in zip(asked, result.answers, strict=True):
        answers[k] = answer
    n = len(prompts.session_ids)
    raw = {p.name: answers[j * n : (j + 1) * n] for j, p in enumerate(prompts.perspectives)}
    return raw, int(result.asked), int(result.cached)


def _answer_stage(
    prompts: RenderedPrompts, config: BuildConfig, report: BuildReport, stage: Any, output: Path
) -> dict[str, list[str]]:
    """Stages ``llm_load`` and ``answer``: make the backend, :func:`ask_llm`, close what was made here."""
    report.cache_path = Path(config.cache_path) if config.cache_path else default_cache_path(output)
    with stage("llm_load"):
        backend, owned = _resolve_llm(
            config.llm, config.device, config.batch_size, config.threads, config.request_timeout
        )
        report.llm = backend.model_id
    try:
        with stage("answer"):
            raw, report.asked, report.cached = ask_llm(backend, prompts, config, report.cache_path)
    finally:
        if owned:
            backend.close()
    return raw


# --------------------------------------------------------------------------- 4. clean
def clean_answers(
    raw: dict[str, list[str]], session_ids: Sequence[Any], on_empty_answer: str, not_asked: Collection[int] = ()
) -> dict[str, list[str]]:
    """:func:`clean_answer` on every raw answer; under ``on_empty_answer="error"`` an empty one stops the
    build (sessions in ``not_asked`` have no answer to clean and are not counted)."""
    cleaned = {name: [clean_answer(a) for a in answers] for name, answers in raw.items()}
    if on_empty_answer == "error":
        for name, answers in cleaned.items():
            empty = [i for i, a in enumerate(answers) if not a and i not in not_asked]
            if empty:
                i = empty[0]
                raise ValueError(
                    f"session {session_ids[i]!r}, perspective {name!r}: the LLM answer {raw[name][i]!r} is empty "
                    f"after cleaning ({setting_hint('on_empty_answer', 'error')})"
                )
    return cleaned


def _count_empty(cleaned: dict[str, list[str]], not_asked: Collection[int]) -> dict[str, int]:
    """Empty answers per perspective among the sessions that were asked."""
    return {
        name: sum(1 for i, a in enumerate(answers) if not a and i not in not_asked) for name, answers in cleaned.items()
    }


def query_texts(cleaned: dict[str, list[str]], raw: dict[str, list[str]], on_empty_answer: str) -> dict[str, list[str]]:
    """The text each answer is embedded as: the cleaned answer or, when that is empty under
    ``on_empty_answer="raw"``, the raw completion (whitespace collapsed); ``""`` = no text (session mean)."""
    if on_empty_answer != "raw":
        return cleaned
    return {
        name: [text or " ".join(full.split()) for text, full in zip(texts, raw[name], strict=True)]
        for name, texts in cleaned.items()
    }


# --------------------------------------------------------------------------- 5. encode
def encode_texts(encoder: Any, texts: dict[str, list[str]], progress: bool = False) -> dict[str, np.ndarray]:
    """``float32 [n, D]`` per perspective: the L2-normalised embedding of each text, zeros where it is empty.

    Each distinct text is embedded once (in first-seen order, perspective by perspective).
    """
    distinct: dict[str, int] = {}
    for column in texts.values():
        for text in column:
            if text:
                distinct.setdefault(text, len(distinct))
    emb = np.zeros((0, encoder.dim), np.float32)
    if distinct:
        emb = encoder.encode(
            list(distinct), batch_size=64, normalize_embeddings=True, show_progress_bar=progress and len(distinct) > 640
        )
    out = {}
    for name, column in texts.items():
        vectors = np.zeros((len(column), encoder.dim), np.float32)
        for i, text in enumerate(column):
            if text:
                vectors[i] = emb[distinct[text]]
        out[name] = vectors
    return out


def embed_catalogue(encoder: Any, catalogue: Catalogue, cache_dir: str | os.PathLike) -> np.ndarray:
    """``[num_items, D]`` title embeddings (cached in ``cache_dir`` by encoder + catalogue hash)."""
    from .encode import catalogue_embeddings

    return catalogue_embeddings(encoder, catalogue.item_ids.tolist(), catalogue.titles, cache_dir=cache_dir)


# --------------------------------------------------------------------------- 6. localize
def with_session_means(
    vectors: dict[str, np.ndarray],
    texts: dict[str, list[str]],
    shown_rows: dict[str, list[list[int]]],
    item_emb: np.ndarray,
) -> dict[str, np.ndarray]:
    """The localisation queries: each answer's embedding, or for an answer without text the re-normalised
    mean of the title embeddings of the items its prompt showed (zeros when it showed none)."""
    out = {}
    for name, column in texts.items():
        queries = vectors[name].copy()
        for i, text in enumerate(column):
            if not text and shown_rows[name][i]:
                mean = item_emb[shown_rows[name][i]].mean(axis=0)
                norm = float(np.linalg.norm(mean))
                if norm > 0:
                    queries[i] = mean / norm
        out[name] = queries
    return out


@dataclass
class LocalizedIntents:
    """Per perspective: intent vectors ``[n, D]``, top-f catalogue rows ``int64 [n, f]`` and weights ``[n, f]``."""

    intents: dict[str, np.ndarray]
    top_items: dict[str, np.ndarray]
    top_weights: dict[str, np.ndarray]
    zero_intents: int = 0  # queries that were all zeros: zero intent, top_items -1


def own_rows(sessions: SessionSet, catalogue: Catalogue, config: BuildConfig) -> list[list[int]] | None:
    """Each session's catalogue rows when ``config.exclude_session_items`` keeps them out of its top f."""
    if not config.exclude_session_items:
        return None
    return [[r for r in (catalogue.row(item) for item in seq) if r is not None] for seq in sessions.sequences]


def localize_intents(
    queries: dict[str, np.ndarray],
    item_emb: np.ndarray,
    config: BuildConfig,
    exclude: Sequence[Sequence[int]] | None = None,
) -> LocalizedIntents:
    """Snap every query to the catalogue (:class:`ItemLocalizer`: top-f by cosine, softmax-weighted sum);
    ``exclude`` (per session, catalogue rows) keeps those items out of a session's top f."""
    from .localize import ItemLocalizer

    localizer = ItemLocalizer(item_emb, index=config.index)
    out = LocalizedIntents({}, {}, {})
    for name, q in queries.items():
        n = len(q)
        vecs, idx, w = localizer.localize(
            np.ascontiguousarray(q), config.top_f, config.softmax_temperature, exclude=exclude
        )
        vecs = np.array(vecs, dtype=np.float32)
        idx = np.array(idx, dtype=np.int64).reshape(n, -1)
        w = np.array(w, dtype=np.float32).reshape(n, -1)
        zero = ~np.any(q != 0, axis=1)
        vecs[zero], idx[zero], w[zero] = 0, -1, 0
        out.zero_intents += int(zero.sum())
        out.intents[name], out.top_items[name], out.top_weights[name] = vecs, idx, w
    return out


# --------------------------------------------------------------------------- 7. write
def store_metadata(
    config: BuildConfig,
    perspectives: Sequence[Perspective],
    sessions: SessionSet,
    catalogue: Catalogue,
    *,
    llm: str,
    encoder: Any,
    shard: str = "",
    untitled: Collection[int] = (),
) -> StoreMetadata:
    """What the store records about its build (every setting too, as ``extra["build_config"]``)."""
    return StoreMetadata(
        perspectives=[p.name for p in perspectives],
        text_dim=int(encoder.dim),
        text_encoder=encoder.name,
        llm=llm,
        top_f=int(config.top_f),
        prompts={p.name: p.template for p in perspectives},
        prompt_sha256=prompt_sha256(perspectives, config.max_items),
        catalogue_sha256=catalogue.sha256,
        sessions_source=sessions.source,
        sessions_sha256=sessions.sha256,
        shard=shard,
        extra={
            "builder": "llm4sbr_adapter.offline",
            "qualifiers": {p.name: p.qualifier for p in perspectives},
            "last_n": {p.name: p.last_n for p in perspectives},
            "max_items": int(config.max_items),
            "generation": config.generation.to_dict(),
            "softmax_temperature": float(config.softmax_temperature),
            "index": config.index,
            "on_missing_title": config.on_missing_title,
            "on_empty_answer": config.on_empty_answer,
            "catalogue_source": catalogue.source,
            "catalogue_html_unescaped": int(catalogue.html_unescaped),
            "untitled_sessions": len(untitled),
            # every setting, loadable with BuildConfig.from_dict (the shard is the field above)
            "build_config": config.replace(shard=None).to_payload(),
        },
    )


def write_intents(
    output: Path,
    sessions: SessionSet,
    catalogue: Catalogue,
    located: LocalizedIntents,
    cleaned: dict[str, list[str]],
    raw: dict[str, list[str]],
    meta: StoreMetadata,
    dtype: str = "float32",
) -> Path:
    """:func:`write_store` (atomic) with the intents, the top-f explanations (when ``top_f > 0``) and the answers."""
    keep_top = meta.top_f > 0
    return write_store(
        output,
        sessions.ids,
        located.intents,
        meta,
        dtype=dtype,
        top_items=located.top_items if keep_top else None,
        top_weights=located.top_weights if keep_top else None,
        item_ids=catalogue.item_ids if keep_top else None,
        answers=cleaned,
        raw_answers=raw,
    )


# --------------------------------------------------------------------------- helpers
def _stage_timer(seconds: dict[str, float]) -> Any:
    """``with stage("name"):`` logs the stage and adds its wall time to ``seconds[name]``."""

    @contextlib.contextmanager
    def stage(name: str) -> Iterator[None]:
        logger.info("stage %s ...", name)
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start

    return stage


def _set_threads(config: BuildConfig) -> None:
    """Cap torch's CPU threads when ``threads`` is set (not in a dry run, which loads no model)."""
    if config.threads and not config.dry_run:
        import torch

        torch.set_num_threads(int(config.threads))


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


def _export_prompts(path: Path, prompts: RenderedPrompts) -> Path:
    """Write every prompt as one JSON line (``session_id``, ``perspective``, ``prompt``, ``prompt_sha256``),
    the format :class:`~llm4sbr_adapter.offline.llm.replay.ReplayBackend` answers files refer to."""
    from .llm.replay import export_prompts

    records = (
        {"session_id": sid, "perspective": p.name, "prompt": prompt}
        for p in prompts.perspectives
        for sid, prompt in zip(prompts.session_ids, prompts.texts[p.name], strict=True)
        if prompt is not None
    )
    out = export_prompts(path, records)
    logger.info("wrote %d prompts to %s", len(prompts.asked()), out)
    return out
