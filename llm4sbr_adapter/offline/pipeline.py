"""Stage one of LLM4SBR end to end: sessions + catalogue -> prompts -> LLM answers -> intent store.

:func:`run_build` calls one function per stage, each usable on its own and living in
:mod:`llm4sbr_adapter.offline.stages` (each timed in :attr:`BuildReport.seconds` under the name in the
first column):

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

import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..progress import bars_enabled, progress_policy
from .build_paths import check_build_paths, item_cache_dir
from .config import DEFAULT_TOP_F, BuildConfig, parse_shard
from .inputs.catalogue import Catalogue
from .inputs.sessions import SessionSet
from .prompts import resolve_perspectives
from .report import BuildReport, default_cache_path, stage_timer
from .stages.answer import answer_stage, ask_llm, clean_answers, count_empty, query_texts, resolve_llm
from .stages.embed import embed_catalogue, encode_texts, resolve_encoder, with_session_means
from .stages.localize import LocalizedIntents, localize_intents, own_rows
from .stages.read import count_untitled_items, read_inputs, read_session_file
from .stages.render import RenderedPrompts, record_prompts, render_prompts
from .stages.write import store_metadata, write_intents

logger = logging.getLogger(__name__)

# The stage functions are importable from here too (the names this module has always offered).
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
    "own_rows",
    "parse_shard",
    "query_texts",
    "read_inputs",
    "read_session_file",
    "render_prompts",
    "resolve_encoder",
    "resolve_llm",
    "run_build",
    "store_metadata",
    "with_session_means",
    "write_intents",
]


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
    with progress_policy(config.progress):  # bars only when asked and on a terminal, everywhere below
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
    check_build_paths(sessions, catalogue, output, config, None if output is None else default_cache_path(output))
    _set_threads(config)
    perspectives = resolve_perspectives(config.perspectives)
    report = BuildReport(perspectives=[p.name for p in perspectives], dry_run=config.dry_run)
    report.shard = f"{config.shard[0]}/{config.shard[1]}" if config.shard else ""
    stage = stage_timer(report.seconds)
    with stage("read"):
        sess, cat = read_inputs(sessions, catalogue, config)
        report.sessions = len(sess)
        report.untitled_items, report.distinct_items = count_untitled_items(sess, cat)
    with stage("render"):
        prompts = render_prompts(sess, cat, perspectives, config)
        record_prompts(report, prompts, config)
    if config.dry_run:
        return report
    output = Path(output)  # type: ignore[arg-type]  # not None outside a dry run (checked above)
    raw = answer_stage(prompts, config, report, stage, output)
    with stage("clean"):
        cleaned = clean_answers(raw, prompts.session_ids, config.on_empty_answer, prompts.untitled)
        report.empty_answers = count_empty(cleaned, prompts.untitled)
    with stage("encoder_load"):
        encoder = resolve_encoder(config.encoder, config.device)
        report.text_encoder = encoder.name
    texts = query_texts(cleaned, raw, config.on_empty_answer)
    with stage("encode"):
        vectors = encode_texts(encoder, texts, bars_enabled(config.progress))
    with stage("catalogue"):
        cache_dir = item_cache_dir(config, output)
        item_emb = embed_catalogue(encoder, cat, cache_dir, progress=bars_enabled(config.progress))
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


def _set_threads(config: BuildConfig) -> None:
    """Cap torch's CPU threads when ``threads`` is set (not in a dry run, which loads no model)."""
    if config.threads and not config.dry_run:
        torch.set_num_threads(int(config.threads))
