"""Stages ``llm_load``, ``answer`` and ``clean``: make the backend, ask it through the answer cache, clean.

:func:`resolve_llm` turns the config's ``llm`` (a spec, parsed by
:meth:`~llm4sbr_adapter.offline.llm.default_model.BackendSpec.parse`, or an :class:`LLMBackend`) into a backend;
:func:`ask_llm` answers every prompt through the SQLite cache (a killed build resumes, concurrent builds claim
their batches); :func:`clean_answers` and :func:`query_texts` pick the text each answer is embedded as.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from ...cli_context import note_kept
from ...errors import setting_hint
from ...progress import bars_enabled
from ..config import BuildConfig
from ..llm.answers_file import seed_cache
from ..llm.base import LLMBackend
from ..llm.cache import AnswerCache, answer_prompts
from ..llm.default_model import BackendSpec, make_backend, warn_unused_parallel, warn_unused_timeout
from ..prompts import clean_answer
from ..report import BuildReport, StageTimer, default_cache_path
from .render import RenderedPrompts

logger = logging.getLogger("llm4sbr_adapter.offline.pipeline")

__all__ = ["answer_stage", "ask_llm", "clean_answers", "count_empty", "query_texts", "resolve_llm"]


def resolve_llm(
    llm: str | LLMBackend,
    device: str,
    batch_size: int = 8,
    threads: int = 0,
    request_timeout: float | None = None,
    parallel: int = 1,
) -> tuple[LLMBackend, bool]:
    """Return (backend, created_here): an :class:`LLMBackend` as given, or the backend of a spec made by
    :func:`make_backend` with the options :meth:`BackendSpec.build_options` gives this build
    (``request_timeout``, in seconds, applies to ``openai:`` specs only, ``parallel`` to ``llamacpp:``)."""
    if isinstance(llm, LLMBackend):
        warn_unused_timeout(None, request_timeout)
        warn_unused_parallel(None, parallel)
        return llm, False
    spec = BackendSpec.parse(llm)
    options = spec.build_options(
        device=device, batch_size=batch_size, threads=threads, request_timeout=request_timeout, parallel=parallel
    )
    return make_backend(spec, **options), True


def ask_llm(
    backend: LLMBackend, prompts: RenderedPrompts, config: BuildConfig, cache_path: Path
) -> tuple[dict[str, list[str]], int, int]:
    """Raw answers per perspective (session order), and how many prompts were asked and read from the cache.

    The SQLite cache makes a killed build resume where it stopped; ``batch_size`` is the commit unit (a
    server backend with more connections than that gets several batches in flight at once).
    """
    flat, labels, asked = prompts.flat(), prompts.labels(), prompts.asked()
    cache = AnswerCache(cache_path)
    try:
        if config.seed_answers:
            texts = [text for _, text in asked]
            added = seed_cache(cache, config.seed_answers, backend.model_id, config.generation, texts)
            logger.info("%d answers taken from %s into the cache", added, config.seed_answers)
        result = answer_prompts(
            backend,
            [text for _, text in asked],
            config.generation,
            cache,
            batch_size=config.batch_size,
            progress=bars_enabled(config.progress),
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


def answer_stage(
    prompts: RenderedPrompts, config: BuildConfig, report: BuildReport, stage: StageTimer, output: Path
) -> dict[str, list[str]]:
    """Stages ``llm_load`` and ``answer``: make the backend, :func:`ask_llm`, close what was made here."""
    report.cache_path = Path(config.cache_path) if config.cache_path else default_cache_path(output)
    note_kept(f"every LLM answer received so far, in {report.cache_path}")
    with stage("llm_load"):
        backend, owned = resolve_llm(
            config.llm, config.device, config.batch_size, config.threads, config.request_timeout, config.llm_parallel
        )
        report.llm = backend.model_id
    loaded_before = "load_seconds" in getattr(backend, "__dict__", {})
    try:
        with stage("answer"):
            raw, report.asked, report.cached = ask_llm(backend, prompts, config, report.cache_path)
        if not loaded_before:
            _count_lazy_load_as_loading(report.seconds, backend)
    finally:
        if owned:
            backend.close()
    return raw


def _count_lazy_load_as_loading(seconds: dict[str, float], backend: Any) -> None:
    """A lazy backend (the default LLM) loads, or converts a GGUF, on its first prompt, inside ``answer``:
    move the ``load_seconds`` it reports to ``llm_load``, so that the summary counts loading as loading."""
    loaded = getattr(backend, "__dict__", {}).get("load_seconds")
    if isinstance(loaded, (int, float)) and loaded > 0:
        moved = min(float(loaded), seconds.get("answer", 0.0))
        seconds["answer"] = seconds.get("answer", 0.0) - moved
        seconds["llm_load"] = seconds.get("llm_load", 0.0) + moved


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


def count_empty(cleaned: dict[str, list[str]], not_asked: Collection[int]) -> dict[str, int]:
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
